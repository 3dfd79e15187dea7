"""The store file's schema: forward-only migrations, and refusing files that are not ours to open.

A file is refused (a clear :class:`StoreError`, the file byte-identical) when it is not SQLite, is corrupt,
is an SQLite database tracemend did not create, or has a schema newer than this version understands.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from tracemend.errors import StoreError

APPLICATION_ID = 0x746D6E64  # "tmnd": marks a SQLite file as ours, so a foreign one is never migrated
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
_T = TypeVar("_T")

# Forward-only migrations; index i brings the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE traces (
        trace_id     TEXT PRIMARY KEY,
        start_us     INTEGER NOT NULL,
        end_us       INTEGER,
        status       TEXT NOT NULL,
        entry_point  TEXT NOT NULL,
        name         TEXT NOT NULL,
        project      TEXT NOT NULL,
        environment  TEXT NOT NULL,
        code_commit  TEXT,
        code_dirty   INTEGER NOT NULL DEFAULT 0,
        config_hash  TEXT,
        error_type   TEXT,
        body         TEXT NOT NULL
    );
    CREATE INDEX traces_time ON traces(start_us);
    CREATE INDEX traces_status_time ON traces(status, start_us);
    CREATE INDEX traces_entry_time ON traces(entry_point, start_us);
    CREATE INDEX traces_commit_time ON traces(code_commit, start_us);
    CREATE TABLE spans (
        trace_id   TEXT NOT NULL,
        span_id    TEXT NOT NULL,
        parent_id  TEXT,
        name       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        start_us   INTEGER NOT NULL,
        end_us     INTEGER,
        has_error  INTEGER NOT NULL DEFAULT 0,
        body       TEXT NOT NULL,
        PRIMARY KEY (trace_id, span_id)
    );
    CREATE TABLE configs (
        config_hash TEXT PRIMARY KEY,
        body        TEXT NOT NULL
    );
    CREATE TABLE writers (
        writer_id   TEXT PRIMARY KEY,
        pid         INTEGER NOT NULL,
        started_us  INTEGER NOT NULL,
        updated_us  INTEGER NOT NULL,
        written     INTEGER NOT NULL DEFAULT 0,
        dropped     INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: scores (online judges' verdicts, people's feedback) and the judges' spending per rule and day.
    """
    CREATE TABLE scores (
        score_id    TEXT PRIMARY KEY,
        trace_id    TEXT NOT NULL,
        span_id     TEXT,
        source      TEXT NOT NULL,
        name        TEXT NOT NULL,
        rule_key    TEXT,
        verdict     TEXT NOT NULL,
        category    TEXT,
        created_us  INTEGER NOT NULL,
        model_calls INTEGER NOT NULL DEFAULT 0,
        cost        REAL NOT NULL DEFAULT 0,
        body        TEXT NOT NULL
    );
    CREATE INDEX scores_trace ON scores(trace_id, source, name, rule_key);
    CREATE INDEX scores_name ON scores(source, name, verdict);
    CREATE TABLE judge_usage (
        day           TEXT NOT NULL,
        rule          TEXT NOT NULL,
        judged        INTEGER NOT NULL DEFAULT 0,
        model_calls   INTEGER NOT NULL DEFAULT 0,
        cache_hits    INTEGER NOT NULL DEFAULT 0,
        cost          REAL NOT NULL DEFAULT 0,
        max_call_cost REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (day, rule)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def check_file(path: Path) -> None:
    """Refuse a file that is not ours before anything writes to it (a foreign file stays byte-identical).

    Foreign: not SQLite; another application's id; or, without our id, any table or a ``user_version`` (a
    table-less file someone versioned is someone's). Only an empty SQLite file is adopted.
    """
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a trace store file.")
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"Cannot read the trace store at {path}: {exc.strerror or exc}") from exc
    if header != SQLITE_HEADER:
        raise StoreError(f"{path} is not a tracemend store (not an SQLite database); it was left untouched.")
    try:
        app_id, version, tables, check = retry_busy(lambda: _inspect(path))
    except sqlite3.OperationalError as exc:
        if "unable to open" in str(exc):
            raise StoreError(f"Cannot read the trace store at {path}: {exc}") from exc
        raise StoreError(f"{path} is corrupt ({exc}); it was left untouched.") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is corrupt ({exc}); it was left untouched.") from exc
    if check != "ok":
        raise StoreError(f"{path} is corrupt ({check}); it was left untouched.")
    if app_id != APPLICATION_ID and (tables or version or app_id):
        raise StoreError(
            f"{path} is an SQLite database that tracemend did not create; it was left untouched. "
            "Point TRACEMEND_DB at another file."
        )
    # Checked here, before the read-write connection switches the journal mode of a newer store.
    if app_id == APPLICATION_ID and version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this tracemend understands "
            f"({SCHEMA_VERSION}). Upgrade tracemend; the file was left untouched."
        )


def connect_read_only(path: Path, timeout: float = BUSY_TIMEOUT_MS / 1000) -> sqlite3.Connection:
    """A read-only connection that writes nothing to the file.

    A WAL-mode file in a folder the process cannot write, without its ``-shm`` companion, cannot be opened
    read-only the usual way; it is then opened as immutable (nobody can be writing it there).
    """
    uri = f"file:{quote(str(path))}"
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA schema_version").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise
    return sqlite3.connect(
        f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )


def _inspect(path: Path) -> tuple[int, int, int, str]:
    ro = connect_read_only(path)
    try:
        # One read transaction: another process may be creating the store right now, and separate
        # statements could see the tables of its commit but the application id from before it.
        ro.execute("BEGIN")
        app_id = ro.execute("PRAGMA application_id").fetchone()[0]
        version = ro.execute("PRAGMA user_version").fetchone()[0]
        tables = ro.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        # quick_check reports most damage as rows rather than raising; anything but "ok" is corrupt.
        check = ro.execute("PRAGMA quick_check(1)").fetchone()[0]
        ro.execute("COMMIT")
        return app_id, version, tables, check
    finally:
        ro.close()


def is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def retry_busy(action: Callable[[], _T]) -> _T:
    """Run ``action``, retrying while another process holds a lock SQLite will not wait for.

    SQLite returns "database is locked" at once, without its busy handler, where waiting could deadlock:
    switching to WAL while another connection reads, or several processes creating one store together.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`, inside the write transaction the caller holds."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this tracemend "
            f"understands ({SCHEMA_VERSION}). Upgrade tracemend."
        )
    for index in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[index].split(";"):
            if statement.strip():
                conn.execute(statement)
    if version < SCHEMA_VERSION:
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
