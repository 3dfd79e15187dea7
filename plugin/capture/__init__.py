"""The recorder: ``@track``, the span context, the background writer, config snapshots, redaction, ingest taps.

Modules: ``state`` (the process-wide recorder state; standard library only), ``decorator`` (``track``),
``context`` (``update_current_*``, ``current_*_id``), ``control`` (``configure``, ``flush``, ``stats``,
``reset_recorder``), ``feedback`` (a person's score of a trace, written by a thread of its own), ``writer``
(the background thread's work), ``encode`` / ``redact`` / ``errorinfo`` / ``config`` (turning what was
recorded into stored data), ``opik_tap`` (``@opik.track`` traces in).
"""

from __future__ import annotations

# Explicit re-exports (``name as name``): the root package lists the public API in its ``__all__``.
from tracemend.capture.context import current_span_id as current_span_id
from tracemend.capture.context import current_trace_id as current_trace_id
from tracemend.capture.context import update_current_span as update_current_span
from tracemend.capture.context import update_current_trace as update_current_trace
from tracemend.capture.control import configure as configure
from tracemend.capture.control import flush as flush
from tracemend.capture.control import shutdown as shutdown
from tracemend.capture.control import stats as stats
from tracemend.capture.decorator import track as track
from tracemend.capture.feedback import feedback as feedback
from tracemend.capture.state import add_config_type as add_config_type
