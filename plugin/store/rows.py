"""Rows and times as the store keeps them: microseconds since the epoch, and the row tuples of a trace."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracemend.records import Trace


def to_us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


@dataclass(frozen=True)
class TraceRow:
    """The indexed columns of a trace, for scans that do not need the body."""

    trace_id: str
    start_us: int
    status: str
    entry_point: str
    code_commit: str | None
    error_type: str | None


@dataclass(frozen=True)
class UsageRow:
    """Tokens and cost summed over spans: per model, per entry point or per trace (``key``).

    ``calls`` counts spans that recorded a model, a usage or a cost; ``cost`` is None when none did.
    """

    key: str | None
    traces: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None


@dataclass(frozen=True)
class WriterStats:
    writer_id: str
    pid: int
    started: datetime
    updated: datetime
    written: int
    dropped: int


def trace_to_rows(trace: Trace) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], tuple[str, str] | None]:
    """The rows that store one trace record (used for imports; the writer builds rows directly)."""
    body = trace.model_dump_json(exclude={"spans"})
    t_row = (
        trace.trace_id,
        to_us(trace.start_time),
        to_us(trace.end_time) if trace.end_time else None,
        trace.status,
        trace.entry_point,
        trace.name,
        trace.project,
        trace.environment,
        trace.code_version.commit,
        int(trace.code_version.dirty),
        trace.config_hash,
        trace.error.type if trace.error else None,
        body,
    )
    s_rows = [
        (
            s.trace_id,
            s.span_id,
            s.parent_id,
            s.name,
            s.kind,
            to_us(s.start_time),
            to_us(s.end_time) if s.end_time else None,
            int(s.error is not None),
            s.model_dump_json(),
        )
        for s in trace.spans
    ]
    config = (trace.config_hash, json.dumps(trace.config)) if trace.config_hash and trace.config else None
    return t_row, s_rows, config
