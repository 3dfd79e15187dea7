"""Token and cost accounting: totals for the process, and for any block (``with track_usage()``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from tracemend.llm.response import ModelResponse


@dataclass
class UsageTotals:
    calls: int = 0
    scripted_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
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


def account(response: ModelResponse | None, purpose: str, *, retries: int = 0, failed: bool = False) -> None:
    """Count one finished call (``response``) or one that failed for good, with the retries it took."""
    with _lock:
        for totals in (_process_totals, *_trackers):
            totals.retries += retries
            if failed:
                totals.failed_calls += 1
            elif response is not None:
                totals.add(response, purpose)


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
