"""Starting the writer thread, and not losing what is queued at exit or across a fork.

The first root span starts the thread; the thread imports the writer (pydantic, sqlite3, ...) itself, so
that the first traced call stays cheap while records queue up meanwhile.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

from tracemend.capture.state import STATE, internal_error

_hooks_installed = False
# Set once the writer thread has imported the writer, successfully or not.
_writer_imported = threading.Event()


def start_writer() -> None:
    with STATE.lock:
        if STATE.started:
            return
        STATE.started = True
    if not _hooks_installed:
        _install_hooks()
    _flush_in_multiprocessing_child()
    threading.Thread(target=_writer_main, name="tracemend-writer", daemon=True).start()


def _writer_main() -> None:
    # Importing the writer can meet the main thread importing it too (exit hook, flush()), and the
    # import machinery may then hand this thread a partially initialised module for a moment: retry.
    for attempt in range(20):
        try:
            from tracemend.capture.writer import run_forever
        except ImportError:
            time.sleep(0.01 * (attempt + 1))
            continue
        except Exception:
            break
        finally:
            _writer_imported.set()
        run_forever()
        return
    internal_error("writer start")
    with STATE.lock:
        STATE.started = False  # the next root span tries again


def _flush_in_multiprocessing_child() -> None:
    # A multiprocessing child started by fork ends with os._exit(), which skips atexit: without this
    # every span it recorded but had not written yet is lost. Its own exit function runs finalizers.
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    try:
        if mp.parent_process() is not None:
            from multiprocessing import util

            util.Finalize(None, _flush_at_exit, exitpriority=100)
    except Exception:
        internal_error("multiprocessing exit hook")


def _install_hooks() -> None:
    global _hooks_installed
    _hooks_installed = True
    atexit.register(_flush_at_exit)
    os.register_at_fork(before=_before_fork, after_in_child=STATE.forget_parent)


def _before_fork() -> None:
    # A fork while the writer thread is importing would give the child half-imported modules that
    # nothing will ever finish (that thread does not exist there): the child could never write.
    # Wait for the import, once per process and only if a fork happens in the first moments.
    if STATE.started and not _writer_imported.is_set():
        _writer_imported.wait(10)


def _flush_at_exit() -> None:
    # Also when the queue is empty: the writer thread may hold a batch it has not committed yet.
    if STATE.queue or STATE.started:
        try:
            from tracemend.capture.writer import flush

            flush()
        except Exception:
            internal_error("flush at exit")
