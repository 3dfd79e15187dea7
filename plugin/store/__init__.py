"""The embedded trace store: one SQLite file in WAL mode, safe for several writing processes.

Modules: ``sqlite`` (the :class:`Store`), ``scores`` (judges' verdicts, people's feedback, what judging
cost), ``schema`` (migrations; refusing foreign, corrupt or newer files), ``rows`` (row tuples and
microsecond times), ``paths`` (where the file is).
"""

from __future__ import annotations

from tracemend.errors import StoreError
from tracemend.store.paths import resolve_db_path
from tracemend.store.rows import TraceRow, WriterStats, from_us, to_us, trace_to_rows
from tracemend.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tracemend.store.scores import JudgeUsage, ScoreRow, utc_day
from tracemend.store.sqlite import Store, TraceFilter

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "JudgeUsage",
    "ScoreRow",
    "Store",
    "StoreError",
    "TraceFilter",
    "TraceRow",
    "WriterStats",
    "from_us",
    "resolve_db_path",
    "to_us",
    "trace_to_rows",
    "utc_day",
]
