"""Backdated traffic for analyzer tests: a week of baseline and a window, as real Trace records."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from tracemend.records import CodeVersion, ErrorInfo, Frame, Trace

OLD = "1" * 40
NEW = "2" * 40

# Recurring failures of a tool-using agent: (type, message maker, module, function).
FAILURES = [
    (
        "litellm.RateLimitError",
        lambda r: (
            f"Rate limit reached for gpt-4o in organization org-{r.randrange(16**6):06x} on tokens per min (TPM): Limit 30000, Used {r.randrange(20000, 30000)}, Requested {r.randrange(100, 5000)}. Please try again in {r.randrange(1, 60)}.{r.randrange(100)}s."
        ),
        "agent.llm",
        "complete",
    ),
    (
        "httpx.ReadTimeout",
        lambda r: (
            f"timed out after {r.randrange(5, 60)}s calling https://api.weather.example.com/v1/forecast?city={r.choice(['paris', 'rome', 'oslo'])}&req=req_{r.randrange(16**8):08x}"
        ),
        "agent.tools",
        "weather",
    ),
    (
        "json.decoder.JSONDecodeError",
        lambda r: (
            f"Expecting ',' delimiter: line {r.randrange(1, 9)} column {r.randrange(1, 200)} (char {r.randrange(1, 2000)})"
        ),
        "agent.parse",
        "parse_tool_args",
    ),
]
REGRESSION = ("KeyError", lambda r: f"'{r.choice(['uk', 'gb'])}'", "agent.tools", "refund_policy")


def make_failure(rng: random.Random, spec: tuple, start: datetime, commit: str) -> Trace:
    etype, message, module, function = spec
    error = ErrorInfo(
        type=etype,
        message=message(rng),
        frames=[
            Frame(
                file="agent/main.py",
                line=rng.randrange(10, 99),
                function="run",
                module="agent.main",
                in_app=True,
            ),
            Frame(
                file=f"{module.replace('.', '/')}.py",
                line=rng.randrange(10, 99),
                function=function,
                module=module,
                in_app=True,
            ),
        ],
    )
    return _trace(rng, start, commit, "error", error)


def _trace(rng: random.Random, start: datetime, commit: str, status: str, error: ErrorInfo | None) -> Trace:
    return Trace(
        trace_id=f"{rng.getrandbits(128):032x}",
        entry_point="agent.main:run",
        name="run",
        input={"message": "where is my refund?"},
        status=status,  # type: ignore[arg-type]
        error=error,
        start_time=start,
        end_time=start + timedelta(milliseconds=40),
        code_version=CodeVersion(commit=commit),
    )


def traffic(
    *,
    deploy: datetime,
    per_hour: int = 60,
    failure_rate: float = 0.03,
    regression_rate: float = 0.0,
    window_minutes: int = 60,
    baseline_hours: int = 168,
    seed: int = 1,
) -> Iterator[Trace]:
    """A week of OLD traffic before ``deploy`` and ``window_minutes`` of NEW traffic after it."""
    rng = random.Random(seed)
    start = deploy - timedelta(hours=baseline_hours)
    total_minutes = baseline_hours * 60 + window_minutes
    n = int(per_hour * total_minutes / 60)
    for i in range(n):
        t = start + timedelta(minutes=total_minutes * (i + rng.random()) / n)
        commit = OLD if t < deploy else NEW
        if t < deploy:
            t = min(t, deploy - timedelta(microseconds=1))
        u = rng.random()
        if t >= deploy and u < regression_rate:
            yield make_failure(rng, REGRESSION, t, commit)
        elif u < regression_rate + failure_rate if t >= deploy else u < failure_rate:
            yield make_failure(rng, rng.choice(FAILURES), t, commit)
        else:
            yield _trace(rng, t, commit, "ok", None)


def deploy_time() -> datetime:
    return datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
