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
from typing import Any, Literal, Unpack

from tracemend.errors import StoreError
from tracemend.records import Span, Trace
from tracemend.store.filters import TraceFilter
from tracemend.store.filters import where as _where
from tracemend.store.inserts import insert_rows
from tracemend.store.parse import DamagedRow, DamageLog, failure_parts, parse
from tracemend.store.paths import resolve_db_path
from tracemend.store.rows import TraceRow, UsageRow, WriterStats, from_us, to_us, trace_to_rows
from tracemend.store.schema import (
    BUSY_TIMEOUT_MS,
    SCHEMA_VERSION,
    check_file,
    connect_read_only,
    migrate,
    retry_busy,
)
from tracemend.store.scores import ScoreMethods

_SQLITE_READONLY, _SQLITE_CANTOPEN = 8, 14
CACHE_KIB = 32 * 1024


def _cannot_write(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (_SQLITE_READONLY, _SQLITE_CANTOPEN) or "readonly" in str(exc)


class Store(ScoreMethods):
    """A connection to one store file. Thread-safe; open one per process (connections do not survive fork).

    A store the process cannot write (a read-only file, folder or mount) opens read-only: reads work,
    ``read_only`` is true and writes raise :class:`StoreError`. ``read_only=True`` asks for that anyway.
    Rows that cannot be read back are skipped by the reads and listed in ``damaged``.
    """

    def __init__(
        self, path: Path | str | None = None, *, create: bool = True, read_only: bool = False
    ) -> None:
        self.path = resolve_db_path(path)
        if not self.path.exists() and (not create or read_only):
            raise StoreError(f"No trace store at {self.path}. Record traces with @tracemend.track first.")
        check_file(self.path)
        self.read_only = read_only
        self._damage = DamageLog()
        self._lock = threading.RLock()
        if not read_only:
            self._open_read_write()
        if self.read_only:
            self._open_read_only()

    def _open_read_write(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder for the trace store at {self.path}: {exc}") from exc
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
            )
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            retry_busy(lambda: self._conn.execute("PRAGMA journal_mode=WAL"))
            self._conn.execute("PRAGMA synchronous=NORMAL")
            # A batch updates index pages all over a large store (trace ids are random below their time
            # bits, and imported ones fully random); a cache that holds them (up to 32 MiB, used only as the
            # store grows) halves the writer's SQLite time there.
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            retry_busy(self._migrate)
        except sqlite3.DatabaseError as exc:
            if hasattr(self, "_conn"):
                self._conn.close()
            if self.path.exists() and self.path.stat().st_size and _cannot_write(exc):
                self.read_only = True  # not ours to write: read it as it is
                return
            raise StoreError(f"Cannot open the trace store at {self.path}: {exc}") from exc
        except StoreError:
            self._conn.close()
            raise

    def _open_read_only(self) -> None:
        try:
            self._conn = connect_read_only(self.path)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Cannot read the trace store at {self.path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            self._conn.close()
            raise StoreError(
                f"The trace store at {self.path} is read-only and has schema version {version}, not "
                f"{SCHEMA_VERSION}; open it once where it can be written, or upgrade tracemend."
            )

    @property
    def damaged(self) -> list[DamagedRow]:
        """Rows the reads skipped because they could not be read back (each also logged once)."""
        return list(self._damage.rows)

    # --- lifecycle -------------------------------------------------------------------------------

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"The trace store at {self.path} is read-only.")
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

    def release_wal(self) -> None:
        """Move this connection's WAL into its database file and empty the WAL file.

        For a store file that was replaced under the connection: the WAL file at the path is still this
        connection's, and a new connection would read its frames as if they were the new file's.
        """
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass

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
                insert_rows(conn, "INSERT OR REPLACE INTO spans VALUES ", spans, 9)
            if traces:
                insert_rows(conn, "INSERT OR REPLACE INTO traces VALUES ", traces, 13)
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
        sql = (
            f"SELECT trace_id, CAST(body AS BLOB) FROM traces{where} "
            f"ORDER BY start_us {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for trace_id, body in self._stream(sql, params):
            trace = self._parse_trace(trace_id, body)
            if trace is not None:
                yield self._with_spans(trace, with_spans)

    def _parse_trace(self, trace_id: str, body: bytes) -> Trace | None:
        trace, reason = parse(Trace, body)
        if trace is None:
            self._damage.note("traces", trace_id, reason or "unreadable", str(self.path))
        return trace

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
            "SELECT trace_id, CAST(body AS BLOB) FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
            (trace_id, trace_id + "\U0010ffff"),
        )
        if len(rows) != 1:
            if len(rows) > 1:
                raise StoreError(f"Trace id prefix {trace_id!r} is ambiguous; give more characters.")
            return None
        trace = self._parse_trace(*rows[0])
        if trace is None:
            reason = next(d.reason for d in self._damage.rows if d.row_id == rows[0][0])
            raise StoreError(f"Trace {rows[0][0]} in {self.path} is damaged and cannot be read ({reason}).")
        return self._with_spans(trace, with_spans)

    def _with_spans(self, trace: Trace, with_spans: bool) -> Trace:
        if with_spans:
            trace.spans = self.spans_of(trace.trace_id)
        return trace

    def spans_of(self, trace_id: str) -> list[Span]:
        rows = self._all(
            "SELECT span_id, CAST(body AS BLOB) FROM spans WHERE trace_id = ? ORDER BY start_us", (trace_id,)
        )
        spans = []
        for span_id, body in rows:
            span, reason = parse(Span, body)
            if span is None:
                self._damage.note("spans", f"{trace_id}/{span_id}", reason or "unreadable", str(self.path))
            else:
                spans.append(span)
        return spans

    def config(self, config_hash: str) -> dict[str, Any] | None:
        row = self._one("SELECT CAST(body AS BLOB) FROM configs WHERE config_hash = ?", (config_hash,))
        if not row:
            return None
        try:
            return json.loads(row[0].decode("utf-8", "replace"))
        except ValueError as exc:
            self._damage.note("configs", config_hash, str(exc), str(self.path))
            return None

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

    # --- tokens and cost (update_current_span's model, usage, cost) ----------------------------------

    def usage_totals(
        self, by: Literal["model", "entry_point"], **filters: Unpack[TraceFilter]
    ) -> list[UsageRow]:
        """Tokens and cost of the matching traces' spans, per model or per entry point, costliest first.

        Per entry point, every matching trace is counted (``traces``), with or without model calls.
        """
        where, params = _where(**filters)
        if by == "model":
            key, source = "json_extract(a, '$.model')", _attributes("s.trace_id", f"IN (SELECT trace_id FROM traces{where})")
        else:
            key = "t.entry_point"
            source = (
                f"{_attributes('s.trace_id', f'IN (SELECT trace_id FROM traces{where})')} "
                "JOIN traces t ON t.trace_id = u.trace_id"
            )
        calls = {
            row[0]: row
            for row in self._all(
                f"SELECT {key}, count(DISTINCT u.trace_id), count(*), {_USAGE_SUMS} FROM {source} GROUP BY 1",
                params,
            )
        }
        if by == "entry_point":
            traces = self._all(f"SELECT entry_point, count(*) FROM traces{where} GROUP BY 1", params)
        else:
            traces = [(k, row[1]) for k, row in calls.items()]
        rows = []
        for name, n_traces in traces:
            row = calls.get(name) or (name, 0, 0, None, None, None, None)
            rows.append(UsageRow(name, n_traces, row[2], *(_int(v) for v in row[3:6]), row[6]))
        return sorted(rows, key=lambda r: (-(r.cost or 0.0), -r.total_tokens, str(r.key)))

    def usage_by_trace(self, trace_ids: Sequence[str]) -> dict[str, UsageRow]:
        """Tokens and cost of each given trace's spans (traces without model calls are left out)."""
        if not trace_ids:
            return {}
        marks = ",".join("?" * len(trace_ids))
        rows = self._all(
            f"SELECT u.trace_id, 1, count(*), {_USAGE_SUMS} FROM {_attributes('s.trace_id', f'IN ({marks})')} "
            "GROUP BY 1",
            list(trace_ids),
        )
        return {r[0]: UsageRow(r[0], 1, r[2], *(_int(v) for v in r[3:6]), r[6]) for r in rows}

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
        done: set[str] = set()
        try:
            for row in self._stream(sql, params, size=2000):
                done.add(row[0])
                yield row  # type: ignore[misc]
            return
        except sqlite3.OperationalError:
            pass  # a body SQLite cannot read (malformed JSON, invalid text): go on row by row
        slow = (
            "SELECT trace_id, start_us, status, entry_point, code_commit, error_type, CAST(body AS BLOB) "
            f"FROM traces{where} ORDER BY start_us"
        )
        for trace_id, t_us, status, entry, commit, error_type, body in self._stream(slow, params, size=500):
            if trace_id in done:
                continue
            data = failure_parts(body)
            if data is None:
                self._damage.note("traces", trace_id, "body is not JSON", str(self.path))
                continue
            error, metadata, output = data
            if error_type is not None:
                yield trace_id, t_us, status, entry, commit, error, None, None
            else:
                yield trace_id, t_us, status, entry, commit, None, metadata, output


def _attributes(column: str, condition: str) -> str:
    """The spans matching ``column condition`` that recorded a model, a usage or a cost, as rows
    ``u(trace_id, a)`` with ``a`` their attributes. Each span body is parsed once: the LIMIT keeps SQLite
    from merging this into the outer query, which would parse the body again for every field read."""
    return (
        "(SELECT trace_id, a FROM (SELECT s.trace_id AS trace_id, json_extract(s.body, '$.attributes') AS a "
        f"FROM spans s WHERE {column} {condition} AND {_MAY_USE_A_MODEL} LIMIT -1) "
        "WHERE json_extract(a, '$.model') IS NOT NULL OR json_extract(a, '$.usage') IS NOT NULL "
        "OR json_extract(a, '$.cost') IS NOT NULL) u"
    )


# A cheap test on the raw text before parsing it: a body without these words recorded no model call.
_MAY_USE_A_MODEL = "(instr(s.body, '\"model\"') OR instr(s.body, '\"usage\"') OR instr(s.body, '\"cost\"'))"
_PROMPT = "coalesce(json_extract(a, '$.usage.prompt_tokens'), json_extract(a, '$.usage.input_tokens'))"
_COMPLETION = "coalesce(json_extract(a, '$.usage.completion_tokens'), json_extract(a, '$.usage.output_tokens'))"
_USAGE_SUMS = (
    f"sum({_PROMPT}), sum({_COMPLETION}), "
    f"sum(coalesce(json_extract(a, '$.usage.total_tokens'), coalesce({_PROMPT}, 0) + coalesce({_COMPLETION}, 0))), "
    "sum(json_extract(a, '$.cost'))"
)


def _int(value: Any) -> int:
    return int(value or 0)
