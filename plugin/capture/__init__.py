"""The recorder: ``@track``, the span context, the background writer, config snapshots, redaction, ingest taps.

Modules: ``state`` (the process-wide recorder state; standard library only), ``decorator`` (``track``),
``context`` (``update_current_*``, ``current_*_id``), ``control`` (``configure``, ``flush``, ``stats``,
``reset_recorder``), ``writer`` (the background thread's work), ``encode`` / ``redact`` / ``errorinfo`` /
``config`` (turning what was recorded into stored data), ``opik_tap`` (``@opik.track`` traces in).
"""

from __future__ import annotations

from tracemend.capture.context import (
    current_span_id,
    current_trace_id,
    update_current_span,
    update_current_trace,
)
from tracemend.capture.control import configure, flush, shutdown, stats
from tracemend.capture.decorator import track
from tracemend.capture.state import add_config_type

__all__ = [
    "add_config_type",
    "configure",
    "current_span_id",
    "current_trace_id",
    "flush",
    "shutdown",
    "stats",
    "track",
    "update_current_span",
    "update_current_trace",
]
