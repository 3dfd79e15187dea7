"""A fork waits until the writer is out of SQLite.

SQLite keeps process-wide mutexes (its allocator, its file-lock table). A process that forks while the
store thread holds one gives the child a mutex that nothing will ever release, and the child's first
store call then hangs: a pool worker started while the parent's writer was committing never returned.
The writer does its SQLite work under :data:`IN_SQLITE`; a fork takes that lock first, so the child starts
with SQLite idle. A commit usually lasts well under a second; one waiting on another process's write lock
can last longer, and after 10 s the fork goes ahead without the lock rather than wait on.
"""

from __future__ import annotations

import os
import threading

IN_SQLITE = threading.Lock()
_held_for_fork = False


def _before_fork() -> None:
    global _held_for_fork
    # A timeout, not a wait without end: a fork must never hang on tracemend's account.
    _held_for_fork = IN_SQLITE.acquire(timeout=10)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        IN_SQLITE.release()


def _after_fork_in_child() -> None:
    global IN_SQLITE, _held_for_fork
    IN_SQLITE = threading.Lock()  # the parent's store thread does not exist here
    _held_for_fork = False


def guard() -> threading.Lock:
    """The lock to hold around SQLite work (looked up on each use: a child replaces it)."""
    return IN_SQLITE


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
