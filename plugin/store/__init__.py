"""The embedded trace store: one SQLite file in WAL mode, safe for several writing processes.

Modules: ``sqlite`` (the :class:`Store`), ``scores`` (judges' verdicts, people's
feedback, what judging cost), ``source`` (the trace source every stage reads through: the
local store, or ``phoenix``/``opik_source`` on a server, with ``openinference`` and ``tracebacks`` mapping
their spans; ``remote`` what the servers share), ``schema`` (migrations; refusing foreign, corrupt or newer
files), ``parse`` (reading rows back, damaged ones skipped), ``rows`` (row tuples and microsecond times),
``filters`` (the WHERE clause of trace queries), ``paths`` (where the file is).
"""

from __future__ import annotations

from tracemend.errors import StoreError
from tracemend.store.filters import TraceFilter
from tracemend.store.parse import DamagedRow
from tracemend.store.paths import resolve_db_path
from tracemend.store.rows import TraceRow, UsageRow, WriterStats, from_us, to_us, trace_to_rows
from tracemend.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tracemend.store.scores import JudgeUsage, ScoreRow, utc_day
from tracemend.store.source import LocalSource, TraceSource, open_source, where
from tracemend.store.sqlite import Store

__all__ = [
    "APPLICATION_ID",
    "DamagedRow",
    "LocalSource",
    "SCHEMA_VERSION",
    "JudgeUsage",
    "ScoreRow",
    "Store",
    "StoreError",
    "TraceSource",
    "TraceFilter",
    "TraceRow",
    "UsageRow",
    "WriterStats",
    "from_us",
    "open_source",
    "resolve_db_path",
    "to_us",
    "trace_to_rows",
    "where",
    "utc_day",
]
