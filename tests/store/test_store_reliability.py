"""The store never loses or corrupts a trace: real processes, real SQLite files, real signals."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracemend.records import CodeVersion, ErrorInfo, Span, Trace
from tracemend.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError

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


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(path: Path) -> list[Path]:
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()]


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
from tracemend import capture, store

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
print(produced, stats["dropped"], stats["queued"], capture.STATE.max_queue, flush=True)
release.set()
"""


def test_producer_faster_than_writer_never_blocks_and_drops_are_counted(tmp_path: Path) -> None:
    db = tmp_path / "flood.db"
    # A deadlock here (a producer waiting on the stalled writer) would show as a timeout.
    proc = run_python(FLOOD, env={"TRACEMEND_DB": str(db), "TRACEMEND_QUEUE_SIZE": "8"}, timeout=60)
    produced, dropped_before_exit, queued, max_queue = map(int, proc.stdout.split())
    assert max_queue == 8 and queued <= 8
    assert dropped_before_exit >= produced - 2 * 8 - 1
    with Store(db) as store:
        written = store.count()
        (writer,) = store.writer_stats()
    assert writer.written == written
    assert writer.written + writer.dropped == produced
    assert writer.dropped == dropped_before_exit


# --- files that are not (usable) stores --------------------------------------------------------------------


def _make_store(path: Path, n: int = 50) -> None:
    with Store(path) as store:
        store.add_traces(synthetic(n))


def test_corrupt_store_gives_clear_error_and_stays_untouched(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    _make_store(db, 300)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 4 * page] = bytes((i * 37 + 11) % 256 for i in range(2 * page))
    db.write_bytes(bytes(data))
    before = digest(db)
    with pytest.raises(StoreError, match=r"(?s)corrupt.*left untouched"):
        Store(db)
    assert digest(db) == before
    # A WAL-mode file gets its (empty) -wal/-shm companions from any reader; nothing is written to it.
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0

    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(bytes(data[: 3 * page]))
    before = digest(truncated)
    with pytest.raises(StoreError, match="corrupt|Cannot open"):
        Store(truncated)
    assert digest(truncated) == before


def test_foreign_files_give_clear_error_and_stay_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are my notes, not a database\n" * 100)
    before = digest(text)
    with pytest.raises(StoreError, match="not a tracemend store"):
        Store(text)
    assert digest(text) == before

    foreign = tmp_path / "app.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    before = digest(foreign)
    with pytest.raises(StoreError, match="did not create"):
        Store(foreign)
    assert digest(foreign) == before and sidecars(foreign) == []


def test_unusable_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        Store(blocker / "sub" / "traces.db")
    assert blocker.read_text() == "x"


def test_newer_schema_gives_clear_error_and_stays_untouched(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    _make_store(db, 5)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = digest(db)
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer"):
        Store(db)
    assert digest(db) == before and sidecars(db) == []


def test_migrations_from_an_empty_file_and_a_missing_path(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    missing = tmp_path / "deep" / "er" / "traces.db"
    with pytest.raises(StoreError, match="No trace store"):
        Store(missing, create=False)
    for path in (empty, missing):
        with Store(path) as store:
            store.add_traces(synthetic(3))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"traces_time", "traces_status_time", "traces_entry_time", "traces_commit_time"} <= indexes
        conn.close()
        # Reopening an up-to-date store migrates nothing and keeps the data.
        with Store(path) as store:
            assert store.count() == 3


# --- the read API --------------------------------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def synthetic(n: int, start: datetime = T0) -> list[Trace]:
    """Backdated traces spread over hours, statuses, entry points and commits."""
    out = []
    for i in range(n):
        at = start + timedelta(minutes=7 * i)
        status = ("ok", "ok", "error", "failed_assertion")[i % 4]
        trace_id = f"{i:04x}" + "ab" * 14
        error = ErrorInfo(type="KeyError", message=str(i)) if status == "error" else None
        out.append(
            Trace(
                trace_id=trace_id,
                entry_point=("app.agent:run", "app.agent:other")[i % 2],
                name="run",
                input={"i": i},
                status=status,
                error=error,
                start_time=at,
                end_time=at + timedelta(milliseconds=20),
                code_version=CodeVersion(commit=("aaaa1111" if i < n // 2 else "bbbb2222") + "0" * 32),
                spans=[
                    Span(span_id=f"{i:016x}", trace_id=trace_id, name="run", start_time=at),
                    Span(
                        span_id=f"{i + 1:016x}"[::-1],
                        trace_id=trace_id,
                        parent_id=f"{i:016x}",
                        name="tool",
                        start_time=at,
                    ),
                ],
            )
        )
    return out


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "read.db")
    assert store.add_traces(synthetic(40)) == 40
    yield store
    store.close()


def test_read_filters(filled: Store) -> None:
    store = filled
    all_ = list(store.iter_traces())
    assert [t.input["i"] for t in all_] == list(range(40))
    hour = T0 + timedelta(hours=1)
    in_hour = list(store.iter_traces(since=hour, until=hour + timedelta(hours=1)))
    assert [t.input["i"] for t in in_hour] == [
        i for i in range(40) if hour <= T0 + timedelta(minutes=7 * i) < hour + timedelta(hours=1)
    ]
    assert {t.status for t in store.iter_traces(status="error")} == {"error"}
    assert store.count(status=["error", "failed_assertion"]) == 20
    assert store.count(entry_point="app.agent:other") == 20
    assert store.count(revision="aaaa") == 20 and store.count(revision="bbbb2222") == 20
    assert store.count(revision="cccc") == 0
    assert store.count(status="error", entry_point="app.agent:run", revision="aaaa") == len(
        [i for i in range(20) if i % 4 == 2 and i % 2 == 0]
    )
    newest = list(store.iter_traces(limit=3, newest_first=True))
    assert [t.input["i"] for t in newest] == [39, 38, 37]
    rows = list(store.iter_rows(status="error"))
    assert [r.error_type for r in rows] == ["KeyError"] * 10 and rows[0].entry_point == "app.agent:run"
    with_spans = next(store.iter_traces(with_spans=True))
    assert [s.name for s in with_spans.spans] == ["run", "tool"]
    assert store.status_counts() == {"ok": 20, "error": 10, "failed_assertion": 10}
    versions = store.code_versions()
    assert [(c[:8], n) for c, _, _, n in versions] == [("aaaa1111", 20), ("bbbb2222", 20)]
    assert store.time_range() == (T0, T0 + timedelta(minutes=7 * 39))


def test_count_by_hour(filled: Store) -> None:
    counts = filled.count_by_hour()
    assert sum(n for _, n in counts) == 40
    expected: dict[datetime, int] = {}
    for i in range(40):
        at = T0 + timedelta(minutes=7 * i)
        h = at.replace(minute=0, second=0, microsecond=0)
        expected[h] = expected.get(h, 0) + 1
    assert counts == sorted(expected.items())
    assert all(h.tzinfo is not None for h, _ in counts)
    failing = filled.count_by_hour(status="error")
    assert sum(n for _, n in failing) == 10


def test_streaming_is_lazy_and_survives_concurrent_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "stream.db")
    store.add_traces(synthetic(1200))
    stream = store.iter_traces()
    first = next(stream)
    assert first.input["i"] == 0
    # A writer in between reads does not break or corrupt the stream.
    other = Store(tmp_path / "stream.db")
    other.add_traces(synthetic(10, start=T0 + timedelta(days=30)))
    rest = list(stream)
    assert [t.input["i"] for t in rest[:1199]] == list(range(1, 1200))
    other.close()
    store.close()


def test_get_trace_by_prefix(filled: Store) -> None:
    full = filled.get_trace("0003" + "ab" * 14)
    assert full is not None and full.input == {"i": 3} and len(full.spans) == 2
    assert filled.get_trace("0003ab").trace_id == full.trace_id
    assert filled.get_trace("  0003AB ").trace_id == full.trace_id
    assert filled.get_trace("ffff") is None
    with pytest.raises(StoreError, match="ambiguous"):
        filled.get_trace("000")
    assert filled.get_trace(full.trace_id, with_spans=False).spans == []


def test_add_traces_is_idempotent(filled: Store) -> None:
    filled.add_traces(synthetic(5))
    assert filled.count() == 40 and filled.span_count() == 80


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
