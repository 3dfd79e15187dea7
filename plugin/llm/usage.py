"""Token and cost accounting: totals for the process, for any block (``with track_usage()``), and across
processes (``with usage_log(path)``).

Every attempt is counted — a request that was retried, or that failed for good, reached the server too —
so ``attempts`` is what the server saw. :func:`usage_log` makes every process started inside the block (it
inherits ``TRACEMEND_USAGE_FILE``) append one line per call to a file, which :func:`read_usage_log` sums:
how a command that runs reruns and pytest in subprocesses reports the calls all of them made.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracemend.llm.response import ModelResponse


@dataclass
class UsageTotals:
    calls: int = 0
    scripted_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    # Every request sent: answered calls, failed ones and all their retries.
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    by_purpose: dict[str, int] = field(default_factory=dict)

    def add(self, response: ModelResponse, purpose: str) -> None:
        self.calls += 1
        self.scripted_calls += int(response.scripted)
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        self.cost += response.cost
        key = purpose or "-"
        self.by_purpose[key] = self.by_purpose.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_tokens"] = self.prompt_tokens + self.completion_tokens
        return out


_lock = threading.Lock()
_process_totals = UsageTotals()
_trackers: list[UsageTotals] = []


USAGE_FILE_VAR = "TRACEMEND_USAGE_FILE"


def account(
    response: ModelResponse | None,
    purpose: str,
    *,
    retries: int = 0,
    failed: bool = False,
    attempts: int | None = None,
) -> None:
    """Count one finished call (``response``) or one that failed for good, with the retries it took.

    ``attempts`` is the number of requests sent (default ``retries + 1``; 0 for a call refused before any
    request went out)."""
    sent = retries + 1 if attempts is None else attempts
    with _lock:
        for totals in (_process_totals, *_trackers):
            totals.retries += retries
            totals.attempts += sent
            if failed:
                totals.failed_calls += 1
            elif response is not None:
                totals.add(response, purpose)
    log = os.environ.get(USAGE_FILE_VAR)
    if log:
        _append(Path(log), response, purpose, retries=retries, failed=failed, attempts=sent)


def _append(
    path: Path, response: ModelResponse | None, purpose: str, *, retries: int, failed: bool, attempts: int
) -> None:
    line = {
        "purpose": purpose or "-",
        "attempts": attempts,
        "retries": retries,
        "failed": failed,
        "scripted": bool(response is not None and response.scripted),
        "prompt_tokens": response.usage.prompt_tokens if response is not None else 0,
        "completion_tokens": response.usage.completion_tokens if response is not None else 0,
        "cost": response.cost if response is not None else 0.0,
    }
    try:
        # One short line per write in append mode: lines from concurrent processes never interleave.
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    except OSError:
        pass  # accounting never breaks a call


def read_usage_log(path: Path | str) -> UsageTotals:
    """The totals of the calls logged to ``path`` (by any process); empty when there is no file."""
    totals = UsageTotals()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return totals
    for text in lines:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        totals.attempts += int(line.get("attempts", 1))
        totals.retries += int(line.get("retries", 0))
        if line.get("failed"):
            totals.failed_calls += 1
            continue
        totals.calls += 1
        totals.scripted_calls += int(bool(line.get("scripted")))
        totals.prompt_tokens += int(line.get("prompt_tokens", 0))
        totals.completion_tokens += int(line.get("completion_tokens", 0))
        totals.cost += float(line.get("cost", 0.0))
        key = str(line.get("purpose") or "-")
        totals.by_purpose[key] = totals.by_purpose.get(key, 0) + 1
    return totals


@contextlib.contextmanager
def usage_log(path: Path | str) -> Iterator[Path]:
    """Inside the block, this process and every process it starts log each model call to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get(USAGE_FILE_VAR)
    os.environ[USAGE_FILE_VAR] = str(target)
    try:
        yield target
    finally:
        if saved is None:
            os.environ.pop(USAGE_FILE_VAR, None)
        else:
            os.environ[USAGE_FILE_VAR] = saved


def usage_totals() -> dict[str, Any]:
    """This process's totals: calls, scripted_calls, failed_calls, retries, tokens, cost (USD)."""
    with _lock:
        return _process_totals.as_dict()


@contextlib.contextmanager
def track_usage() -> Iterator[UsageTotals]:
    """Sum the calls made inside the block (from any thread), e.g. per CLI command."""
    totals = UsageTotals()
    with _lock:
        _trackers.append(totals)
    try:
        yield totals
    finally:
        with _lock:
            _trackers.remove(totals)
