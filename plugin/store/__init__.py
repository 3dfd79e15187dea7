"""The embedded trace store: one SQLite file in WAL mode, safe for several writing processes.

Traces and spans are stored as JSON bodies beside the indexed columns that queries filter on. Reads
stream through cursors, so nothing here loads a whole store into memory.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tracemend.capture.settings import resolve_db_path
from tracemend.errors import StoreError
from tracemend.records import Span, Trace

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
]
SCHEMA_VERSION = len(MIGRATIONS)


def to_us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


@dataclass(frozen=True)
class TraceRow:
    """The indexed columns of a trace, for scans that do not need the body."""

    trace_id: str
    start_us: int
    status: str
    entry_point: str
    code_commit: str | None
    error_type: str | None


@dataclass(frozen=True)
class WriterStats:
    writer_id: str
    pid: int
    started: datetime
    updated: datetime
    written: int
    dropped: int


def _check_file(path: Path) -> None:
    """Refuse a file that is not ours before anything writes to it (a foreign file stays byte-identical)."""
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
        app_id, version, tables, check = _retry_busy(lambda: _inspect(path))
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is corrupt ({exc}); it was left untouched.") from exc
    if check != "ok":
        raise StoreError(f"{path} is corrupt ({check}); it was left untouched.")
    if app_id != APPLICATION_ID and tables:
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


def _inspect(path: Path) -> tuple[int, int, int, str]:
    ro = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
    )
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


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _retry_busy(action: Callable[[], _T]) -> _T:
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
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


class Store:
    """A connection to one store file. Thread-safe; open one per process (connections do not survive fork)."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self.path = resolve_db_path(path)
        if not self.path.exists() and not create:
            raise StoreError(f"No trace store at {self.path}. Record traces with @tracemend.track first.")
        _check_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder for the trace store at {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
            )
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _retry_busy(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            _retry_busy(self._migrate)
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_conn"):
                self._conn.close()
            raise StoreError(f"Cannot open the trace store at {self.path}: {exc}") from exc
        except StoreError:
            self._conn.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute(
                "BEGIN IMMEDIATE"
            )  # outside the try: if it fails there is nothing to roll back
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path} has schema version {version}, newer than this tracemend "
                        f"understands ({SCHEMA_VERSION}). Upgrade tracemend."
                    )
                for index in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[index].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                if version < SCHEMA_VERSION:
                    self._conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------

    def write_rows(
        self,
        traces: Sequence[tuple[Any, ...]],
        spans: Sequence[tuple[Any, ...]],
        configs: Sequence[tuple[str, str]] = (),
        writer: tuple[str, int, int, int, int] | None = None,
    ) -> None:
        """Write prepared rows in one transaction (the background writer's path)."""
        with self._lock:
            self._conn.execute(
                "BEGIN IMMEDIATE"
            )  # outside the try: if it fails there is nothing to roll back
            try:
                if configs:
                    self._conn.executemany("INSERT OR IGNORE INTO configs VALUES (?, ?)", configs)
                if spans:
                    self._conn.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?)", spans)
                if traces:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", traces
                    )
                if writer is not None:
                    writer_id, pid, now_us, written, dropped = writer
                    self._conn.execute(
                        "INSERT INTO writers VALUES (?,?,?,?,?,?) ON CONFLICT(writer_id) DO UPDATE SET "
                        "updated_us=excluded.updated_us, written=excluded.written, dropped=excluded.dropped",
                        (writer_id, pid, now_us, now_us, written, dropped),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def add_traces(self, traces: Iterable[Trace], batch_size: int = 1000) -> int:
        """Store complete traces (imports, backfills, tests). Returns how many were written."""
        count = 0
        t_rows: list[tuple[Any, ...]] = []
        s_rows: list[tuple[Any, ...]] = []
        c_rows: list[tuple[str, str]] = []
        for trace in traces:
            t_row, spans, config = trace_to_rows(trace)
            t_rows.append(t_row)
            s_rows.extend(spans)
            if config:
                c_rows.append(config)
            count += 1
            if len(t_rows) >= batch_size:
                self.write_rows(t_rows, s_rows, c_rows)
                t_rows, s_rows, c_rows = [], [], []
        if t_rows:
            self.write_rows(t_rows, s_rows, c_rows)
        return count

    # --- reading ---------------------------------------------------------------------------------

    def _where(
        self,
        since: datetime | None,
        until: datetime | None,
        status: str | Sequence[str] | None,
        entry_point: str | None,
        revision: str | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("start_us >= ?")
            params.append(to_us(since))
        if until is not None:
            clauses.append("start_us < ?")
            params.append(to_us(until))
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        if entry_point is not None:
            clauses.append("entry_point = ?")
            params.append(entry_point)
        if revision is not None:
            # A revision may be given abbreviated, as git prints it.
            clauses.append("code_commit LIKE ?")
            params.append(revision.replace("%", "") + "%")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _stream(self, sql: str, params: Sequence[Any], size: int = 500) -> Iterator[tuple[Any, ...]]:
        # A cursor of its own per stream, read in chunks; the lock is held only while fetching.
        with self._lock:
            cursor = self._conn.execute(sql, params)
        try:
            while True:
                with self._lock:
                    rows = cursor.fetchmany(size)
                if not rows:
                    return
                yield from rows
        finally:
            cursor.close()

    def iter_traces(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        entry_point: str | None = None,
        revision: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        with_spans: bool = False,
    ) -> Iterator[Trace]:
        """Traces matching every given filter, streamed in time order (``with_spans`` adds their spans)."""
        where, params = self._where(since, until, status, entry_point, revision)
        sql = f"SELECT body FROM traces{where} ORDER BY start_us {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for (body,) in self._stream(sql, params):
            trace = Trace.model_validate_json(body)
            if with_spans:
                trace.spans = self.spans_of(trace.trace_id)
            yield trace

    def iter_rows(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        entry_point: str | None = None,
        revision: str | None = None,
    ) -> Iterator[TraceRow]:
        """Indexed columns only, for fast scans over many traces."""
        where, params = self._where(since, until, status, entry_point, revision)
        sql = (
            "SELECT trace_id, start_us, status, entry_point, code_commit, error_type "
            f"FROM traces{where} ORDER BY start_us"
        )
        for row in self._stream(sql, params, size=5000):
            yield TraceRow(*row)

    def count(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        entry_point: str | None = None,
        revision: str | None = None,
    ) -> int:
        where, params = self._where(since, until, status, entry_point, revision)
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM traces{where}", params).fetchone()[0]

    def count_by_hour(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        entry_point: str | None = None,
        revision: str | None = None,
    ) -> list[tuple[datetime, int]]:
        """Trace counts per UTC hour (hours with no trace are left out)."""
        where, params = self._where(since, until, status, entry_point, revision)
        sql = f"SELECT start_us / 3600000000 AS h, count(*) FROM traces{where} GROUP BY h ORDER BY h"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [(from_us(h * 3_600_000_000), n) for h, n in rows]

    def get_trace(self, trace_id: str, *, with_spans: bool = True) -> Trace | None:
        """A trace by id or by an unambiguous id prefix (as the CLI prints them)."""
        trace_id = trace_id.strip().lower()
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
                (trace_id, trace_id + "\U0010ffff"),
            ).fetchall()
        if len(rows) != 1:
            if len(rows) > 1:
                raise StoreError(f"Trace id prefix {trace_id!r} is ambiguous; give more characters.")
            return None
        trace = Trace.model_validate_json(rows[0][0])
        if with_spans:
            trace.spans = self.spans_of(trace.trace_id)
        return trace

    def spans_of(self, trace_id: str) -> list[Span]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM spans WHERE trace_id = ? ORDER BY start_us", (trace_id,)
            ).fetchall()
        return [Span.model_validate_json(body) for (body,) in rows]

    def config(self, config_hash: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM configs WHERE config_hash = ?", (config_hash,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def code_versions(self) -> list[tuple[str, datetime, datetime, int]]:
        """Each commit seen with its first and last trace time and trace count, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT code_commit, min(start_us), max(start_us), count(*) FROM traces "
                "WHERE code_commit IS NOT NULL GROUP BY code_commit ORDER BY min(start_us)"
            ).fetchall()
        return [(c, from_us(a), from_us(b), n) for c, a, b, n in rows]

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, count(*) FROM traces GROUP BY status").fetchall()
        return dict(rows)

    def time_range(self) -> tuple[datetime, datetime] | None:
        with self._lock:
            lo, hi = self._conn.execute("SELECT min(start_us), max(start_us) FROM traces").fetchone()
        return None if lo is None else (from_us(lo), from_us(hi))

    def writer_stats(self) -> list[WriterStats]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM writers ORDER BY updated_us DESC").fetchall()
        return [WriterStats(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5]) for r in rows]

    def span_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM spans").fetchone()[0]

    # --- analyzer reads (tracemend.analyze) --------------------------------------------------------

    def count_bins(
        self,
        *,
        since: datetime,
        until: datetime,
        bin_seconds: float,
        status: str | Sequence[str] | None = None,
    ) -> list[int]:
        """Trace counts in consecutive bins of ``bin_seconds`` from ``since`` (empty bins included)."""
        start_us = to_us(since)
        bin_us = max(1, int(bin_seconds * 1_000_000))
        n_bins = max(0, -(-(to_us(until) - start_us) // bin_us))
        if n_bins <= 2000:
            # One index range count per bin beats a GROUP BY over every row of a large store.
            where, params = self._where(from_us(start_us), from_us(start_us + bin_us), status, None, None)
            sql = f"SELECT count(*) FROM traces{where}"
            out = []
            with self._lock:
                for b in range(n_bins):
                    lo = start_us + b * bin_us
                    params[0], params[1] = lo, min(lo + bin_us, to_us(until))
                    out.append(self._conn.execute(sql, params).fetchone()[0])
            return out
        where, params = self._where(since, until, status, None, None)
        sql = f"SELECT (start_us - ?) / ? AS b, count(*) FROM traces{where} GROUP BY b"
        with self._lock:
            rows = self._conn.execute(sql, [start_us, bin_us, *params]).fetchall()
        out = [0] * n_bins
        for b, n in rows:
            if 0 <= b < n_bins:
                out[b] = n
        return out

    def first_trace_by_revision(self) -> list[tuple[str, datetime]]:
        """Each code version with the time of its first trace, oldest first (skips through the index,
        so it costs one lookup per revision, not a scan of every trace)."""
        sql = (
            "WITH RECURSIVE c(x) AS (SELECT min(code_commit) FROM traces UNION ALL "
            "SELECT (SELECT min(code_commit) FROM traces WHERE code_commit > x) FROM c WHERE x IS NOT NULL) "
            "SELECT x, (SELECT min(start_us) FROM traces WHERE code_commit = x) FROM c WHERE x IS NOT NULL"
        )
        with self._lock:
            rows = self._conn.execute(sql).fetchall()
        return sorted(((c, from_us(t)) for c, t in rows), key=lambda r: r[1])

    def iter_failures(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, int, str, str, str | None, str | None, str | None, str | None]]:
        """Failing traces as (trace_id, start_us, status, entry_point, code_commit, error JSON,
        metadata JSON, output JSON), in time order, without parsing whole trace bodies."""
        where, params = self._where(since, until, ("error", "failed_assertion"), None, None)
        sql = (
            "SELECT trace_id, start_us, status, entry_point, code_commit, "
            "CASE WHEN error_type IS NOT NULL THEN json_extract(body, '$.error') END, "
            "CASE WHEN error_type IS NULL THEN json_extract(body, '$.metadata') END, "
            "CASE WHEN error_type IS NULL THEN json_extract(body, '$.output') END "
            f"FROM traces{where} ORDER BY start_us"
        )
        yield from self._stream(sql, params, size=2000)  # type: ignore[misc]


def trace_to_rows(trace: Trace) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], tuple[str, str] | None]:
    """The rows that store one trace record (used for imports; the writer builds rows directly)."""
    body = trace.model_dump_json(exclude={"spans"})
    t_row = (
        trace.trace_id,
        to_us(trace.start_time),
        to_us(trace.end_time) if trace.end_time else None,
        trace.status,
        trace.entry_point,
        trace.name,
        trace.project,
        trace.environment,
        trace.code_version.commit,
        int(trace.code_version.dirty),
        trace.config_hash,
        trace.error.type if trace.error else None,
        body,
    )
    s_rows = [
        (
            s.trace_id,
            s.span_id,
            s.parent_id,
            s.name,
            s.kind,
            to_us(s.start_time),
            to_us(s.end_time) if s.end_time else None,
            int(s.error is not None),
            s.model_dump_json(),
        )
        for s in trace.spans
    ]
    config = (trace.config_hash, json.dumps(trace.config)) if trace.config_hash and trace.config else None
    return t_row, s_rows, config
