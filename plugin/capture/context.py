"""Reading and annotating the span and trace being recorded in this context, from inside a traced call."""

from __future__ import annotations

from typing import Any

from tracemend.capture.state import current_span

TRACE_STATUSES = ("ok", "error", "failed_assertion")


def update_current_span(
    *,
    name: str | None = None,
    model: str | None = None,
    usage: Any = None,
    cost: float | None = None,
    metadata: dict[str, Any] | None = None,
    **attributes: Any,
) -> None:
    """Add model, token usage, cost (USD), metadata or other attributes to the span that is running."""
    rec = current_span.get()
    if rec is None:
        return
    attrs = getattr(rec, "attrs", None)
    if attrs is None:
        attrs = rec.attrs = {}
    if name is not None:
        attrs["__name__"] = name
    if model is not None:
        attrs["model"] = model
    if usage is not None:
        attrs["usage"] = usage
    if cost is not None:
        attrs["cost"] = attrs.get("cost", 0.0) + float(cost)
    if metadata:
        attrs.setdefault("metadata", {}).update(metadata)
    attrs.update(attributes)


def update_current_trace(
    *,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    status: str | None = None,
    error_message: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
) -> None:
    """Add tags or metadata to the running trace, or mark it failed without an exception.

    ``status="failed_assertion"`` or ``status="error"`` with an ``error_message`` records a failure that
    the analyzer groups like an exception. ``session_id`` groups the traces of one conversation (an Opik
    thread, a Langfuse or Phoenix session) and ``user_id`` names the end user; both are kept as
    given (up to 200 characters; redacted only when shaped like a secret) and ``tracemend traces
    --session/--user`` filters on them.
    """
    rec = current_span.get()
    if rec is None:
        return
    root = rec.root
    attrs = getattr(root, "trace_attrs", None)
    if attrs is None:
        attrs = root.trace_attrs = {}
    if tags:
        attrs.setdefault("tags", []).extend(tags)
    if metadata:
        attrs.setdefault("metadata", {}).update(metadata)
    if status is not None:
        if status not in TRACE_STATUSES:
            raise ValueError(f"status must be ok, error or failed_assertion; got {status!r}")
        attrs["status"] = status
    if error_message is not None:
        attrs["error_message"] = error_message
    if session_id is not None:
        attrs["session_id"] = str(session_id)
    if user_id is not None:
        attrs["user_id"] = str(user_id)


def current_trace_id() -> str | None:
    """The id of the trace being recorded in this context, as stored (32 hex digits)."""
    rec = current_span.get()
    return None if rec is None else f"{rec.trace_id:032x}"


def current_span_id() -> str | None:
    """The id of the span being recorded in this context, as stored (16 hex digits)."""
    rec = current_span.get()
    return None if rec is None else f"{rec.span_id:016x}"
