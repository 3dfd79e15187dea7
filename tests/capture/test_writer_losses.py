"""Nothing vanishes silently and nothing is left half: a full queue drops whole traces (no orphan spans), and
spans the store cannot take are counted as lost, apart from queue-full drops, and logged once."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tracemend
from tracemend.store import Store

from helpers.spine import read_traces, run_python

UNITS = """
import threading
import tracemend
from tracemend import store

release = threading.Event()
blocked = threading.Event()
original = store.Store.write_rows

def stalled_write(self, *args, **kwargs):
    # The writer stalls on its first batch while the app records far more than the queue holds.
    if not release.is_set():
        blocked.set()
        release.wait()
    return original(self, *args, **kwargs)

store.Store.write_rows = stalled_write

@tracemend.track
def leaf(k):
    return k

@tracemend.track
def root(i):
    for k in range(3):
        leaf(k)
    return i

root(-1)
assert blocked.wait(10), "the writer never took a batch"
for i in range(3000):
    root(i)
release.set()
tracemend.flush()
stats = tracemend.stats()
print(4 * 3001, stats["written"], stats["dropped"], flush=True)
"""


def test_a_full_queue_drops_whole_traces_and_leaves_no_orphan_spans(tmp_path: Path) -> None:
    db = tmp_path / "units.db"
    proc = run_python(UNITS, env={"TRACEMEND_DB": str(db), "TRACEMEND_QUEUE_SIZE": "10"}, timeout=120)
    produced, written, dropped = map(int, proc.stdout.split())
    assert dropped > 0 and written + dropped == produced
    with sqlite3.connect(db) as conn:
        per_trace = conn.execute(
            "SELECT t.trace_id, count(s.span_id) FROM traces t LEFT JOIN spans s USING (trace_id) GROUP BY 1"
        ).fetchall()
        orphans = conn.execute(
            "SELECT count(*) FROM spans WHERE trace_id NOT IN (SELECT trace_id FROM traces)"
        ).fetchone()[0]
    assert orphans == 0
    assert per_trace and {n for _, n in per_trace} == {4}
    assert 4 * len(per_trace) == written
    with Store(db) as store:
        (writer,) = store.writer_stats()
    assert (writer.written, writer.dropped) == (written, dropped)


def test_store_errors_are_counted_as_lost_not_as_a_full_queue(
    spine_store: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    @tracemend.track
    def work(x: int) -> int:
        return x

    work(0)
    tracemend.flush()
    original = Store.write_rows

    def failing(self: Store, *args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "write_rows", failing)
    with caplog.at_level(logging.ERROR, logger="tracemend"):
        for i in range(1, 4):
            work(i)
            tracemend.flush()
    monkeypatch.setattr(Store, "write_rows", original)
    work(4)
    stored = [t.input["x"] for t in read_traces(spine_store)]
    stats = tracemend.stats()
    assert stored == [0, 4]
    assert stats["lost"] == 3 and stats["dropped"] == 0 and stats["written"] == 2
    messages = [r.getMessage() for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(messages) == 1 and "disk I/O error" in messages[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_fork_waits_until_the_writer_is_out_of_sqlite_and_the_child_starts_unlocked() -> None:
    """A pool worker forked while the parent's store thread was inside SQLite inherited SQLite's held
    mutexes and hung at its first write; the fork now waits for the store thread to finish."""
    from tracemend.capture import forkguard

    held, left_sqlite = threading.Event(), threading.Event()

    def store_thread() -> None:
        with forkguard.guard():
            held.set()
            time.sleep(0.3)  # inside SQLite, as far as a fork can tell
            left_sqlite.set()

    thread = threading.Thread(target=store_thread)
    thread.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: the lock is its own and free
        os._exit(0 if forkguard.guard().acquire(blocking=False) else 1)
    assert left_sqlite.is_set(), "the fork went ahead while the store thread was inside SQLite"
    _, status = os.waitpid(pid, 0)
    thread.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert forkguard.guard().acquire(blocking=False)  # released in the parent after the fork
    forkguard.guard().release()
