"""Before/after comparison of reruns: what changed for each input, and the overall verdict.

Per input (paired by source trace id):

- a failing input whose rerun succeeds is ``fixed``; one that still fails with the same exception type is
  ``still_failing``, with another type (or a timeout / crash) ``new_error``;
- a passing input that now fails ``broke``; one that still succeeds is ``unchanged_ok`` when its output
  is the same and ``changed_ok`` otherwise.

Verdict: ``regressed_elsewhere`` if any passing input broke, else ``fixed`` if every failing input was
fixed, ``partially_fixed`` if some were, ``not_fixed`` if none; ``unchanged`` when there was no failing
input and nothing broke (a what-if over passing inputs).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from tracemend.records import Comparison, InputComparison, RerunResult, Trace

__all__ = ["compare", "output_diff", "span_tree", "span_tree_diff"]

_FAILED = ("error", "failed_assertion", "timeout", "crashed")


def _json_lines(value: Any) -> list[str]:
    text = json.dumps(value, indent=2, sort_keys=True, default=repr, ensure_ascii=False)
    return [line + "\n" for line in text.splitlines()]


def output_diff(before: Any, after: Any) -> str:
    """Unified diff of the two outputs as indented JSON (empty when equal)."""
    return "".join(difflib.unified_diff(_json_lines(before), _json_lines(after), "before", "after"))


def span_tree(trace: Trace | None) -> list[str]:
    """The trace's spans as indented lines ``name [kind]`` (and the error type of a failed span)."""
    if trace is None:
        return []
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in trace.children(parent):
            mark = f"  ✗ {span.error.type}" if span.error is not None else ""
            lines.append(f"{'  ' * depth}{span.name} [{span.kind}]{mark}")
            if depth < 50:
                walk(span.span_id, depth + 1)

    walk(None, 0)
    return lines


def span_tree_diff(before: Trace | None, after: Trace | None) -> str:
    a = [line + "\n" for line in span_tree(before)]
    b = [line + "\n" for line in span_tree(after)]
    return "".join(difflib.unified_diff(a, b, "before", "after"))


def _failed(result: RerunResult) -> bool:
    return result.status in _FAILED


def _error_type(result: RerunResult) -> str | None:
    if result.status in ("timeout", "crashed"):
        return result.status
    return result.error.type if result.error is not None else result.status


def _classify(was_failing: bool, before: RerunResult, after: RerunResult) -> str:
    if was_failing:
        if not _failed(after):
            return "fixed"
        if _failed(before) and _error_type(before) == _error_type(after):
            return "still_failing"
        return "new_error"
    if _failed(after):
        return "broke"
    return "unchanged_ok" if before.output == after.output else "changed_ok"


def compare(before: Sequence[RerunResult], after: Sequence[RerunResult], failing_ids: set[str]) -> Comparison:
    """Pair ``before`` and ``after`` by source trace id (in ``after``'s order) and judge each input."""
    by_id = {r.source_trace_id: r for r in before}
    items: list[InputComparison] = []
    for result in after:
        prior = by_id.get(result.source_trace_id)
        if prior is None:
            continue
        was_failing = result.source_trace_id in failing_ids
        items.append(
            InputComparison(
                source_trace_id=result.source_trace_id,
                was_failing=was_failing,
                before=prior,
                after=result,
                change=_classify(was_failing, prior, result),  # type: ignore[arg-type]
                output_diff=output_diff(prior.output, result.output),
                span_diff=span_tree_diff(prior.trace, result.trace),
            )
        )
    return Comparison(items=items, verdict=_verdict(items))


def _verdict(items: Sequence[InputComparison]) -> str:
    if any(item.change == "broke" for item in items):
        return "regressed_elsewhere"
    failing = [item for item in items if item.was_failing]
    fixed = sum(item.change == "fixed" for item in failing)
    if not failing:
        return "unchanged"
    if fixed == len(failing):
        return "fixed"
    return "partially_fixed" if fixed else "not_fixed"
