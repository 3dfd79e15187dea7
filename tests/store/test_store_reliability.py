"""The store never loses or corrupts a trace: real processes, real SQLite files, real signals.

Files that are not usable stores are in ``test_store_files.py``; the read API in ``test_store_reads.py``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracemend.records import Span, Trace
from tracemend.store import Store

from helpers.spine import REPO, run_python

pytestmark = pytest.mark.integration


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def validate_every_row(path: Path) -> list[Trace]:
    """Every trace and span body parses as its record (read straight from SQLite, not via the store)."""
    conn = sqlite3.connect(path)
    try:
        traces = [Trace.model_validate_json(b) for (b,) in conn.execute("SELECT body FROM traces")]
        spans = [Span.model_validate_json(b) for (b,) in conn.execute("SELECT body FROM spans")]
    finally:
        conn.close()
    by_trace: dict[str, list[Span]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    for t in traces:
        t.spans = by_trace.get(t.trace_id, [])
    return traces


PRODUCER = """
import os, sys, time
from pathlib import Path
import tracemend

proc = int(sys.argv[1]); n = int(sys.argv[2]); gate = Path(sys.argv[3])

@tracemend.track(kind="tool")
def child(i):
    return {"square": i * i}

@tracemend.track(kind="agent")
def root(proc, i):
    return child(i)

while not gate.exists():  # start together, so the writes really overlap
    time.sleep(0.001)
for i in range(n):
    root(proc, i)
    if i % 25 == 0:
        time.sleep(0.001)
"""


@pytest.mark.slow  # eight interpreters; ~1-2 s on an idle machine
def test_eight_processes_write_concurrently(tmp_path: Path) -> None:
    db, gate, n = tmp_path / "shared.db", tmp_path / "go", 150
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    env = {
        **os.environ,
        "TRACEMEND_DB": str(db),
        "TRACEMEND_CODE_VERSION": "c0ffee",
        "TRACEMEND_PROJECT_ROOT": str(REPO),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(p), str(n), str(gate)], env=env, stderr=subprocess.PIPE
        )
        for p in range(8)
    ]
    time.sleep(0.3)
    gate.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"tracemend" not in err, err.decode()
    assert integrity(db) == "ok"
    traces = validate_every_row(db)
    assert len(traces) == 8 * n
    assert sorted((t.input["proc"], t.input["i"]) for t in traces) == [
        (p, i) for p in range(8) for i in range(n)
    ]
    for t in traces:
        assert t.status == "ok" and t.output == {"square": t.input["i"] ** 2}
        assert sorted(s.name for s in t.spans) == ["child", "root"]
    with Store(db) as store:
        stats = store.writer_stats()
        assert len(stats) == 8 and {w.written for w in stats} == {2 * n} and {w.dropped for w in stats} == {0}
        assert store.count(revision="c0f") == 8 * n


KILLED = """
import sys
import tracemend

@tracemend.track
def step(i):
    return [i] * 3

@tracemend.track
def run(i):
    return step(i)

i = 0
while True:
    run(i)
    i += 1
    if i % 40 == 0:
        tracemend.flush()
        print(i, flush=True)  # everything up to i is committed
"""


def test_sigkill_mid_stream_keeps_every_committed_trace(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    env = {**os.environ, "TRACEMEND_DB": str(db), "TRACEMEND_PROJECT_ROOT": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    committed = 0
    try:
        assert proc.stdout is not None
        while committed < 800:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            committed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(db) as store:  # opens (and recovers the WAL) after the crash
        assert store.count() >= committed
    assert integrity(db) == "ok"
    traces = validate_every_row(db)
    inputs = {t.input["i"] for t in traces}
    assert set(range(committed)) <= inputs
    for t in traces:
        # A trace row is only written with its spans, in one transaction: never half a trace.
        assert sorted(s.name for s in t.spans) == ["run", "step"]
        assert t.output == [t.input["i"]] * 3


FLOOD = """
import threading
import tracemend
from tracemend import store
from tracemend.capture.state import STATE

release = threading.Event()
blocked = threading.Event()
original = store.Store.write_rows

def stalled_write(self, *args, **kwargs):
    # The writer thread stalls on its first batch: the producer must not wait for it.
    if not release.is_set():
        blocked.set()
        release.wait()
    return original(self, *args, **kwargs)

store.Store.write_rows = stalled_write

@tracemend.track
def f(i):
    return i

f(-1)
assert blocked.wait(10), "the writer never took a batch"
produced = 1
for i in range(20000):
    f(i)
    produced += 1
stats = tracemend.stats()
print(produced, stats["dropped"], stats["queued"], STATE.max_queue, flush=True)
release.set()
"""


def test_producer_faster_than_writer_never_blocks_and_drops_are_counted(tmp_path: Path) -> None:
    db = tmp_path / "flood.db"
    # A deadlock here (a producer waiting on the stalled writer) would show as a timeout.
    proc = run_python(FLOOD, env={"TRACEMEND_DB": str(db), "TRACEMEND_QUEUE_SIZE": "8"}, timeout=60)
    produced, dropped_before_exit, queued, max_queue = map(int, proc.stdout.split())
    assert max_queue == 8 and queued <= 8
    # Held while the store stalls: the queue, the batch being serialised and three batches at the store
    # thread (one running, two waiting); everything else was dropped, and counted.
    assert dropped_before_exit >= produced - 5 * 8 - 1
    with Store(db) as store:
        written = store.count()
        (writer,) = store.writer_stats()
    assert writer.written == written
    assert writer.written + writer.dropped == produced
    assert writer.dropped == dropped_before_exit


def test_store_file_created_by_tracing_is_valid(spine_store: Path) -> None:
    run_python(
        """
        import tracemend

        @tracemend.track
        def f(x):
            return x

        f(1)
        """,
        env={"TRACEMEND_DB": str(spine_store)},
    )
    assert integrity(spine_store) == "ok"
    (trace,) = validate_every_row(spine_store)
    assert trace.input == {"x": 1} and len(trace.spans) == 1


MULTIPROCESSING = """
import multiprocessing as mp
import sys

import tracemend


@tracemend.track
def f(i):
    return i


def work(k):
    for i in range(40):
        f(i)


if __name__ == "__main__":
    f(-1)  # the parent records first: its writer thread is starting up when the children fork
    ctx = mp.get_context(sys.argv[1])
    procs = [ctx.Process(target=work, args=(k,)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    pool = ctx.Pool(2)
    pool.map(work, range(2))
    pool.close()
    pool.join()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_children_lose_nothing(tmp_path: Path, method: str) -> None:
    # fork children end with os._exit (no atexit), and may fork while the parent's writer starts.
    script = tmp_path / "mp_agent.py"
    script.write_text(MULTIPROCESSING)
    db = tmp_path / "mp.db"
    env = {**os.environ, "TRACEMEND_DB": str(db), "TRACEMEND_CODE_VERSION": "mp"}
    proc = subprocess.run(
        [sys.executable, str(script), method], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "tracemend" not in proc.stderr, proc.stderr
    with Store(db) as store:
        assert store.count() == 1 + 5 * 40
        stats = store.writer_stats()
    # The parent, three processes and one or two pool workers (one worker may take both tasks).
    assert len(stats) in (5, 6) and sum(w.written for w in stats) == 1 + 5 * 40
    assert sum(w.dropped for w in stats) == 0
