"""A bad day for the store: lone surrogates, damaged rows, a store deleted or replaced while the app runs,
a read-only store, a foreign file. Nothing is lost silently, one bad row never breaks a command for the
rest, and a file that is not ours is never written to."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import tracemend
from tracemend.store import DamagedRow, Store, StoreError

from helpers.spine import read_traces, synthetic

pytestmark = pytest.mark.integration


def tm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


class _Sink(BaseHTTPRequestHandler):
    posts = 0

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[HTTPServer]:
    _Sink.posts = 0
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- text is valid UTF-8; one bad row never breaks a command -------------------------------------------


def test_a_lone_surrogate_is_stored_escaped_and_every_command_keeps_working(
    spine_store: Path, sink: HTTPServer
) -> None:
    @tracemend.track
    def echo(text: str, extra: dict[str, str]) -> str:
        return text

    echo("a\ud800b", {"k\udcff": json.loads('"\\ud83d"')})  # as JSON and surrogateescape produce them
    echo("plain", {})
    traces = read_traces(spine_store)
    assert [t.input["text"] for t in traces] == ["a\\ud800b", "plain"]
    assert traces[0].input["extra"] == {"k\\udcff": "\\ud83d"}
    with sqlite3.connect(spine_store) as conn:  # every body is valid UTF-8
        for (body,) in conn.execute("SELECT CAST(body AS BLOB) FROM traces UNION ALL SELECT body FROM spans"):
            (body if isinstance(body, bytes) else body.encode()).decode("utf-8")
    listed = tm("traces", "--db", str(spine_store))
    assert listed.returncode == 0 and "echo" in listed.stdout, listed.stderr
    shown = tm("show", traces[0].trace_id[:12], "--db", str(spine_store))
    assert shown.returncode == 0 and "ud800" in shown.stdout, shown.stderr
    sent = tm(
        "export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(spine_store)
    )
    assert sent.returncode == 0 and _Sink.posts >= 1, sent.stdout + sent.stderr


def _insert_raw(path: Path, trace_id: str, body: str, *, status: str = "ok") -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (trace_id, 1_767_610_000_000_000, None, status, "app.agent:run", "run", "p", "development", None, 0,
             None, "KeyError" if status == "error" else None, body),
        )  # fmt: skip


def test_damaged_rows_are_skipped_named_and_the_rest_still_read(tmp_path: Path, sink: HTTPServer) -> None:
    db = tmp_path / "traces.db"
    with Store(db) as store:
        store.add_traces(synthetic(4))
    broken = "dead" + "0" * 28
    # Written by an earlier version: the surrogate escaped in JSON, which pydantic refuses to read.
    old = "01d0" + "0" * 28
    old_body = json.dumps(
        {"trace_id": old, "entry_point": "app.agent:run", "name": "run", "input": {"q": "a\ud800"},
         "start_time": "2026-01-05T10:00:00+00:00"}
    )  # fmt: skip
    _insert_raw(db, broken, '{"trace_id": "dead', status="error")
    _insert_raw(db, old, old_body)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?)",
            (old, "f" * 16, None, "run", "general", 1, 2, 0, "{"),
        )

    with Store(db) as store:
        ids = [t.trace_id for t in store.iter_traces(with_spans=True)]
        assert len(ids) == 5 and broken not in ids and old in ids
        assert store.get_trace(old).input == {"q": "a\\ud800"}  # type: ignore[union-attr]
        with pytest.raises(StoreError, match="damaged"):
            store.get_trace(broken)
        failures = [row[0] for row in store.iter_failures()]
        assert broken not in failures and len(failures) == 2
        damaged = store.damaged
        assert DamagedRow("traces", broken, damaged[0].reason) in damaged
        assert any(d.table == "spans" and d.row_id.startswith(old) for d in damaged)

    listed = tm("traces", "--db", str(db), "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    assert f"trace {broken} in {db} is damaged" in listed.stderr
    assert tm("show", broken, "--db", str(db)).returncode == 2
    sent = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(db))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    analyzed = tm("analyze", "--db", str(db), "--json")
    assert analyzed.returncode in (0, 1), analyzed.stderr


# --- the store deleted or replaced while the app runs --------------------------------------------------


def test_a_deleted_store_is_recreated_and_that_is_logged_once(
    tmp_path: Path, spine_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "app" / ".tracemend"
    db = folder / "traces.db"
    tracemend.configure(db_path=db)

    @tracemend.track
    def work(x: int) -> int:
        return x

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        work(1)
        tracemend.flush()
        shutil.rmtree(folder)  # as `rm -rf .tracemend` does while the app runs
        work(2)
        work(3)
        tracemend.flush()
        assert [t.input["x"] for t in read_traces(db)] == [2, 3]
        shutil.rmtree(folder)
        work(4)
        tracemend.flush()
        assert [t.input["x"] for t in read_traces(db)] == [4]
    notices = [r for r in caplog.records if "deleted or replaced" in r.getMessage()]
    assert len(notices) == 1
    stats = tracemend.stats()
    assert stats["written"] == 4 and stats["lost"] == stats["dropped"] == 0


def test_a_replaced_store_is_followed_and_a_foreign_replacement_counts_as_lost(
    tmp_path: Path, spine_store: Path
) -> None:
    db = tmp_path / "traces.db"
    tracemend.configure(db_path=db)

    @tracemend.track
    def work(x: int) -> int:
        return x

    work(1)
    tracemend.flush()
    other = tmp_path / "other.db"
    with Store(other) as store:
        store.add_traces(synthetic(2))
    os.replace(other, db)  # another store moved into place: written to from now on
    work(2)
    tracemend.flush()
    assert sorted(str(t.input) for t in read_traces(db)) == ["{'i': 0}", "{'i': 1}", "{'x': 2}"]

    db.unlink()
    db.write_text("not a store\n")
    work(3)
    tracemend.flush()
    assert db.read_text() == "not a store\n"
    stats = tracemend.stats()
    assert stats["lost"] == 1 and stats["dropped"] == 0
    assert "not a tracemend store" in (stats["store_error"] or "")


# --- read-only stores open read-only ----------------------------------------------------------------------


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[Path]:
    """A store in a folder that cannot be written: chmod for a user, ``chattr +i`` for root (root ignores
    permissions). The store was closed cleanly, so it has no -wal/-shm beside it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "traces.db"
    with Store(db) as store:
        store.add_traces(synthetic(6))
    assert sorted(p.name for p in folder.iterdir()) == ["traces.db"]
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(db), str(folder)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"cannot make a read-only file as root here: {made.stderr.decode().strip()}")
        undo = ["chattr", "-i", str(db), str(folder)]
    else:
        db.chmod(0o444)
        folder.chmod(0o555)
        undo = ["chmod", "-R", "u+w", str(folder)]
    try:
        yield db
    finally:
        subprocess.run(undo, check=False)


def test_a_read_only_store_opens_read_only_for_reading_commands(read_only_store: Path) -> None:
    before = digest(read_only_store)
    with Store(read_only_store) as store:
        assert store.read_only
        assert store.count() == 6 and len(list(store.iter_traces(with_spans=True))) == 6
        with pytest.raises(StoreError, match="read-only"):
            store.add_traces(synthetic(1))
    for command in (["traces"], ["status"], ["analyze", "--json"]):
        done = tm(*command, "--db", str(read_only_store))
        assert done.returncode in (0, 1), (command, done.stderr)
        assert "corrupt" not in done.stderr
    assert digest(read_only_store) == before


def test_the_recorder_reports_a_read_only_store_as_read_only(
    read_only_store: Path, spine_store: Path
) -> None:
    before = digest(read_only_store)
    tracemend.configure(db_path=read_only_store)

    @tracemend.track
    def work(x: int) -> int:
        return x

    assert [work(i) for i in range(3)] == [0, 1, 2]
    tracemend.flush()
    stats = tracemend.stats()
    assert stats["lost"] == 3 and stats["dropped"] == 0
    assert "read-only" in (stats["store_error"] or "") and "corrupt" not in (stats["store_error"] or "")
    assert digest(read_only_store) == before


# --- refused files are never written to -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pragmas",
    [
        ("PRAGMA user_version=7",),
        ("PRAGMA application_id=1234",),
        ("PRAGMA user_version=3", "PRAGMA page_size=1024"),
    ],
    ids=["user_version", "application_id", "page_size"],
)
def test_a_foreign_table_less_file_is_refused_byte_for_byte(tmp_path: Path, pragmas: tuple[str, ...]) -> None:
    foreign = tmp_path / "app.db"
    conn = sqlite3.connect(foreign)
    for pragma in pragmas:
        conn.execute(pragma)
    conn.execute("VACUUM")  # the header is written even without a table
    conn.close()
    before = foreign.read_bytes()
    assert before[:16] == b"SQLite format 3\x00"
    with pytest.raises(StoreError, match="did not create"):
        Store(foreign)
    assert foreign.read_bytes() == before
    assert not Path(f"{foreign}-wal").exists() and not Path(f"{foreign}-shm").exists()
