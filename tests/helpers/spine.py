"""Helpers for the trace-spine tests (the fixtures are in ``helpers.fixtures``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import tracemend
from tracemend.capture.control import reset_recorder  # noqa: F401  (re-exported for the fixtures)
from tracemend.records import Trace
from tracemend.store import Store

REPO = Path(__file__).resolve().parents[2]
CODE_VERSION = "0123456789abcdef0123456789abcdef01234567"




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
