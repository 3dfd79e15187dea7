"""Helpers for the trace-spine tests (the fixtures are in ``helpers.fixtures``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tracemend
from tracemend.capture.control import reset_recorder  # noqa: F401  (re-exported for the fixtures)
from tracemend.records import CodeVersion, ErrorInfo, Span, Trace
from tracemend.store import Store

REPO = Path(__file__).resolve().parents[2]
CODE_VERSION = "0123456789abcdef0123456789abcdef01234567"
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def read_traces(path: Path) -> list[Trace]:
    """Every trace in the store (with spans), oldest first, after flushing this process's queue."""
    tracemend.flush()
    if not path.exists():
        return []
    with Store(path) as store:
        return list(store.iter_traces(with_spans=True))


def only_trace(path: Path) -> Trace:
    traces = read_traces(path)
    assert len(traces) == 1, [t.name for t in traces]
    return traces[0]


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this venv; raises with its output when it fails."""
    full_env = {**os.environ, "TRACEMEND_PROJECT_ROOT": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def span_by_name(trace: Trace, name: str) -> Any:
    matches = [s for s in trace.spans if s.name == name]
    assert len(matches) == 1, (name, [s.name for s in trace.spans])
    return matches[0]


def synthetic(n: int, start: datetime = T0) -> list[Trace]:
    """Backdated traces spread over hours, statuses, entry points and commits."""
    out = []
    for i in range(n):
        at = start + timedelta(minutes=7 * i)
        status = ("ok", "ok", "error", "failed_assertion")[i % 4]
        trace_id = f"{i:04x}" + "ab" * 14
        error = ErrorInfo(type="KeyError", message=str(i)) if status == "error" else None
        out.append(
            Trace(
                trace_id=trace_id,
                entry_point=("app.agent:run", "app.agent:other")[i % 2],
                name="run",
                input={"i": i},
                status=status,
                error=error,
                start_time=at,
                end_time=at + timedelta(milliseconds=20),
                code_version=CodeVersion(commit=("aaaa1111" if i < n // 2 else "bbbb2222") + "0" * 32),
                spans=[
                    Span(span_id=f"{i:016x}", trace_id=trace_id, name="run", start_time=at),
                    Span(
                        span_id=f"{i + 1:016x}"[::-1],
                        trace_id=trace_id,
                        parent_id=f"{i:016x}",
                        name="tool",
                        start_time=at,
                    ),
                ],
            )
        )
    return out
