"""Joining the app's OpenTelemetry trace, so that the app's spans and tracemend's nest as one tree.

Runs only when ``opentelemetry.trace`` is already imported (the decorator checks ``sys.modules``): an app
without OpenTelemetry pays one dict lookup per call and nothing else.

When a tracked root call starts inside an active OTel span, the trace notes the app's ids in its metadata,
in hex as OTel prints them (``otel.trace_id``, ``otel.parent_span_id``); the OTLP export then files every
span of the trace under the app's span. And while a tracked call of such a trace runs, OTel's current span
is a non-recording span carrying that call's ids (the app's trace id, the tracemend span id, the app's
sampling flags): a span that an auto-instrumented client (httpx, openai, ...) starts there is a child of
the tracked call's exported span. Nothing is recorded or exported by OTel for the non-recording span
itself; it only carries ids.

A trace started outside any OTel span is not joined, and neither are its child calls (their exported ids
would not be those of an OTel trace).
"""

from __future__ import annotations

import sys
from typing import Any

from tracemend.capture.state import SpanRecord, internal_error

_modules = sys.modules
# The OTel API, looked up once: (get_current_span, TrackedSpan, set_span_in_context, attach, detach).
_api: tuple[Any, ...] | None = None


def _otel() -> tuple[Any, ...]:
    global _api
    if _api is None:
        trace = _modules["opentelemetry.trace"]
        context = _modules["opentelemetry.context"]  # imported by opentelemetry.trace itself
        span_context = trace.SpanContext

        class TrackedSpan(trace.NonRecordingSpan):
            """OTel's view of a tracked call: a non-recording span with the call's ids. Its SpanContext
            is built only when something asks for it (a child span starting), not on every call."""

            def __init__(self, trace_id: int, span_id: int, flags: Any, state: Any) -> None:
                self._context = None
                self.ids = (trace_id, span_id, flags, state)

            def get_span_context(self) -> Any:
                if self._context is None:
                    trace_id, span_id, flags, state = self.ids
                    self._context = span_context(trace_id, span_id, False, flags, state)
                return self._context

        _api = (
            trace.get_current_span,
            TrackedSpan,
            trace.set_span_in_context,
            context.attach,
            context.detach,
        )
    return _api


def join_otel(rec: SpanRecord, parent: SpanRecord | None) -> None:
    """Make ``rec`` OTel's current span if its trace runs inside an OTel trace (``rec.otel``: the
    non-recording span and the attach token, or None)."""
    try:
        get_current_span, tracked_span, in_context, attach, _ = _otel()
        if parent is None:
            ctx = get_current_span().get_span_context()
            if not ctx.is_valid:  # no OTel span is active
                rec.otel = None
                return
            trace_id, flags, state = ctx.trace_id, ctx.trace_flags, ctx.trace_state
            rec.trace_attrs = {
                "metadata": {
                    "otel.trace_id": f"{trace_id:032x}",
                    "otel.parent_span_id": f"{ctx.span_id:016x}",
                }
            }
        else:
            joined = getattr(parent, "otel", None)  # unset: the parent started before OTel was imported
            if joined is None:
                rec.otel = None
                return
            trace_id, _, flags, state = joined[0].ids
        span = tracked_span(trace_id, rec.span_id, flags, state)
        rec.otel = [span, attach(in_context(span))]
    except Exception:
        rec.otel = None
        internal_error("joining the OpenTelemetry trace")


def enter_otel(rec: SpanRecord) -> None:
    """Make a joined span OTel's current span again (a generator resuming)."""
    joined = getattr(rec, "otel", None)
    if joined is None or joined[1] is not None:
        return
    try:
        _, _, in_context, attach, _ = _otel()
        joined[1] = attach(in_context(joined[0]))
    except Exception:
        internal_error("entering the OpenTelemetry context")


def leave_otel(rec: SpanRecord) -> None:
    """Give OTel back the context it had before the span (the span ends, or a generator pauses)."""
    joined = getattr(rec, "otel", None)
    if joined is None or joined[1] is None:
        return
    token, joined[1] = joined[1], None
    try:
        _otel()[4](token)
    except Exception:
        internal_error("leaving the OpenTelemetry context")
