"""Files that are not (usable) stores: a clear :class:`StoreError`, and the file left byte-identical."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tracemend.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError

from helpers.spine import synthetic

pytestmark = pytest.mark.integration


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(path: Path) -> list[Path]:
    return [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")) if p.exists()]


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
