"""The embedded trace store: one SQLite file in WAL mode, safe for several writing processes.

Modules: ``sqlite`` (the :class:`Store`), ``schema`` (migrations; refusing foreign, corrupt or newer
files), ``rows`` (row tuples and microsecond times), ``filters`` (the WHERE clause of trace queries), ``paths`` (where the file is).
"""

from __future__ import annotations

from tracemend.errors import StoreError
from tracemend.store.filters import TraceFilter
from tracemend.store.paths import resolve_db_path
from tracemend.store.rows import TraceRow, UsageRow, WriterStats, from_us, to_us, trace_to_rows
from tracemend.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tracemend.store.sqlite import Store

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "TraceFilter",
    "TraceRow",
    "UsageRow",
    "WriterStats",
    "from_us",
    "resolve_db_path",
    "to_us",
    "trace_to_rows",
]
