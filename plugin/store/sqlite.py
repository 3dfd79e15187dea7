"""The :class:`Store`: one SQLite file in WAL mode, safe for several writing processes.

Traces and spans are stored as JSON bodies beside the indexed columns that queries filter on. Reads
stream through cursors, so nothing here loads a whole store into memory.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from tracemend.errors import StoreError
from tracemend.records import Span, Trace
from tracemend.store.paths import resolve_db_path
from tracemend.store.rows import TraceRow, WriterStats, from_us, to_us, trace_to_rows
from tracemend.store.schema import (
    BUSY_TIMEOUT_MS,
    check_file,
    migrate,
    retry_busy,
)
from tracemend.store.scores import ScoreMethods, score_clause


class Store(ScoreMethods):
    """A connection to one store file. Thread-safe; open one per process (connections do not survive fork)."""

    def __init__(self, path: Path | str | None = None, *, create: bool = True) -> None:
        self.path = resolve_db_path(path)
        if not self.path.exists() and not create:
            raise StoreError(f"No trace store at {self.path}. Record traces with @tracemend.track first.")
        check_file(self.path)
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
            retry_busy(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            retry_busy(self._migrate)
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_conn"):
                self._conn.close()
            raise StoreError(f"Cannot open the trace store at {self.path}: {exc}") from exc
        except StoreError:
            self._conn.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------------

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            # Outside the try: if BEGIN fails there is nothing to roll back (and retry_busy may try again).
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        with self._write_transaction() as conn:
            migrate(conn, self.path)

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
        with self._write_transaction() as conn:
            if configs:
                conn.executemany("INSERT OR IGNORE INTO configs VALUES (?, ?)", configs)
            if spans:
                conn.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?)", spans)
            if traces:
                conn.executemany("INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", traces)
            if writer is not None:
                writer_id, pid, now_us, written, dropped = writer
                conn.execute(
                    "INSERT INTO writers VALUES (?,?,?,?,?,?) ON CONFLICT(writer_id) DO UPDATE SET "
                    "updated_us=excluded.updated_us, written=excluded.written, dropped=excluded.dropped",
                    (writer_id, pid, now_us, now_us, written, dropped),
                )

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

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

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
        limit: int | None = None,
        newest_first: bool = False,
        with_spans: bool = False,
        **filters: Unpack[TraceFilter],
    ) -> Iterator[Trace]:
        """Traces matching every given filter, streamed in time order (``with_spans`` adds their spans)."""
        where, params = _where(**filters)
        sql = f"SELECT body FROM traces{where} ORDER BY start_us {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for (body,) in self._stream(sql, params):
            yield self._with_spans(Trace.model_validate_json(body), with_spans)

    def iter_rows(self, **filters: Unpack[TraceFilter]) -> Iterator[TraceRow]:
        """Indexed columns only, for fast scans over many traces."""
        where, params = _where(**filters)
        sql = (
            "SELECT trace_id, start_us, status, entry_point, code_commit, error_type "
            f"FROM traces{where} ORDER BY start_us"
        )
        for row in self._stream(sql, params, size=5000):
            yield TraceRow(*row)

    def count(self, **filters: Unpack[TraceFilter]) -> int:
        where, params = _where(**filters)
        return self._one(f"SELECT count(*) FROM traces{where}", params)[0]

    def count_by_hour(self, **filters: Unpack[TraceFilter]) -> list[tuple[datetime, int]]:
        """Trace counts per UTC hour (hours with no trace are left out)."""
        where, params = _where(**filters)
        sql = f"SELECT start_us / 3600000000 AS h, count(*) FROM traces{where} GROUP BY h ORDER BY h"
        return [(from_us(h * 3_600_000_000), n) for h, n in self._all(sql, params)]

    def get_trace(self, trace_id: str, *, with_spans: bool = True) -> Trace | None:
        """A trace by id or by an unambiguous id prefix (as the CLI prints them)."""
        trace_id = trace_id.strip().lower()
        rows = self._all(
            "SELECT body FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
            (trace_id, trace_id + "\U0010ffff"),
        )
        if len(rows) != 1:
            if len(rows) > 1:
                raise StoreError(f"Trace id prefix {trace_id!r} is ambiguous; give more characters.")
            return None
        return self._with_spans(Trace.model_validate_json(rows[0][0]), with_spans)

    def _with_spans(self, trace: Trace, with_spans: bool) -> Trace:
        if with_spans:
            trace.spans = self.spans_of(trace.trace_id)
        return trace

    def spans_of(self, trace_id: str) -> list[Span]:
        rows = self._all("SELECT body FROM spans WHERE trace_id = ? ORDER BY start_us", (trace_id,))
        return [Span.model_validate_json(body) for (body,) in rows]

    def config(self, config_hash: str) -> dict[str, Any] | None:
        row = self._one("SELECT body FROM configs WHERE config_hash = ?", (config_hash,))
        return json.loads(row[0]) if row else None

    def code_versions(self) -> list[tuple[str, datetime, datetime, int]]:
        """Each commit seen with its first and last trace time and trace count, oldest first."""
        rows = self._all(
            "SELECT code_commit, min(start_us), max(start_us), count(*) FROM traces "
            "WHERE code_commit IS NOT NULL GROUP BY code_commit ORDER BY min(start_us)"
        )
        return [(c, from_us(a), from_us(b), n) for c, a, b, n in rows]

    def status_counts(self) -> dict[str, int]:
        return dict(self._all("SELECT status, count(*) FROM traces GROUP BY status"))

    def time_range(self) -> tuple[datetime, datetime] | None:
        lo, hi = self._one("SELECT min(start_us), max(start_us) FROM traces")
        return None if lo is None else (from_us(lo), from_us(hi))

    def writer_stats(self) -> list[WriterStats]:
        rows = self._all("SELECT * FROM writers ORDER BY updated_us DESC")
        return [WriterStats(r[0], r[1], from_us(r[2]), from_us(r[3]), r[4], r[5]) for r in rows]

    def span_count(self) -> int:
        return self._one("SELECT count(*) FROM spans")[0]

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
            where, params = _where(since=from_us(start_us), until=from_us(start_us + bin_us), status=status)
            sql = f"SELECT count(*) FROM traces{where}"
            out = []
            with self._lock:
                for b in range(n_bins):
                    lo = start_us + b * bin_us
                    params[0], params[1] = lo, min(lo + bin_us, to_us(until))
                    out.append(self._conn.execute(sql, params).fetchone()[0])
            return out
        where, params = _where(since=since, until=until, status=status)
        sql = f"SELECT (start_us - ?) / ? AS b, count(*) FROM traces{where} GROUP BY b"
        out = [0] * n_bins
        for b, n in self._all(sql, [start_us, bin_us, *params]):
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
        return sorted(((c, from_us(t)) for c, t in self._all(sql)), key=lambda r: r[1])

    def iter_failures(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[str, int, str, str, str | None, str | None, str | None, str | None]]:
        """Failing traces as (trace_id, start_us, status, entry_point, code_commit, error JSON,
        metadata JSON, output JSON), in time order, without parsing whole trace bodies."""
        where, params = _where(since=since, until=until, status=("error", "failed_assertion"))
        sql = (
            "SELECT trace_id, start_us, status, entry_point, code_commit, "
            "CASE WHEN error_type IS NOT NULL THEN json_extract(body, '$.error') END, "
            "CASE WHEN error_type IS NULL THEN json_extract(body, '$.metadata') END, "
            "CASE WHEN error_type IS NULL THEN json_extract(body, '$.output') END "
            f"FROM traces{where} ORDER BY start_us"
        )
        yield from self._stream(sql, params, size=2000)  # type: ignore[misc]


class TraceFilter(TypedDict, total=False):
    """The filters every trace query takes; a trace matches when it matches each one given."""

    since: datetime | None
    until: datetime | None
    status: str | Sequence[str] | None
    entry_point: str | None
    revision: str | None
    # (name, verdict): traces with a score of that name and verdict; None in either place matches any.
    score: tuple[str | None, str | None] | None


def _where(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | Sequence[str] | None = None,
    entry_point: str | None = None,
    revision: str | None = None,
    score: tuple[str | None, str | None] | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters; ``since`` and ``until``, when given, are the first two."""
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
    if score is not None:
        clause, score_params = score_clause(*score)
        clauses.append(clause)
        params.extend(score_params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
