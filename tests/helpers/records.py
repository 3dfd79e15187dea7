"""Builders for records used across tests (plain data, no fakes of behaviour)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tracemend.records import CodeVersion, ErrorInfo, Frame, Span, Trace


def make_trace(
    *,
    start: datetime | None = None,
    status: str = "ok",
    entry_point: str = "app.agent:run",
    commit: str = "a" * 40,
    error_type: str = "KeyError",
    message: str = "'uk'",
    seed: int | None = None,
) -> Trace:
    rng = random.Random(seed)
    start = start or datetime.now(UTC)
    trace_id = f"{rng.getrandbits(128):032x}"
    root_id = f"{rng.getrandbits(64):016x}"
    error = None
    if status != "ok":
        error = ErrorInfo(
            type=error_type,
            message=message,
            frames=[Frame(file="app/tools.py", line=12, function="refund_policy", module="app.tools", in_app=True)],
        )
    end = start + timedelta(milliseconds=5)
    span = Span(
        span_id=root_id, trace_id=trace_id, name="run", kind="agent", start_time=start, end_time=end, error=error
    )
    return Trace(
        trace_id=trace_id,
        entry_point=entry_point,
        name="run",
        input={"message": "hi"},
        status=status,  # type: ignore[arg-type]
        error=error,
        start_time=start,
        end_time=end,
        code_version=CodeVersion(commit=commit),
        spans=[span],
    )
