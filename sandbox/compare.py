"""Comparison of reruns: what changed for each input in each tree, and the overall verdict.

A comparison has two columns — ``before`` (the tree a change is applied to) and ``after`` (with the change)
— or three, with ``prior``: the revision before the suspect change. Each input may have run several times
per tree (agents are not deterministic); a tree's verdict for the input is its pass rate (it passes in at
least half of its runs), never a single run. Whether one run passed is a predicate over its
:class:`RerunResult`; the default, :func:`rerun_passed`, is "returned without raising", and a judge of the
output can take its place.

Per input (paired by source trace id):

- a failing input that already failed in ``prior`` is ``pre_existing`` (shown apart; the verdict is not
  about it); one that passes in ``before`` as well is ``not_reproduced``; otherwise it is ``fixed`` when it
  passes ``after``, ``still_failing`` when it fails with the same exception type as ``before``, and
  ``new_error`` with another (or a timeout / crash);
- a passing input that fails ``after`` but passed ``before`` ``broke``; one that still succeeds is
  ``unchanged_ok`` when its output is the same and ``changed_ok`` otherwise.

Verdict, about the regression — the failing inputs that are neither pre-existing nor unreproduced:
``regressed_elsewhere`` if any passing input broke, else ``fixed`` if every one was fixed,
``partially_fixed`` if some were, ``not_fixed`` if none; ``not_reproduced`` when there is no such input;
``unchanged`` when there was no failing input and nothing broke (a what-if over passing inputs).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from tracemend.records import Comparison, InputComparison, RerunResult, Tally, Trace

__all__ = [
    "Passed",
    "compare",
    "output_diff",
    "pooled",
    "rerun_passed",
    "shown",
    "span_tree",
    "span_tree_diff",
    "tally",
    "wilson",
]

_FAILED = ("error", "failed_assertion", "timeout", "crashed", "setup_error")


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


Passed = Callable[[RerunResult], bool]


def rerun_passed(result: RerunResult) -> bool:
    """The default predicate: the call returned (no error, timeout, crash or setup error)."""
    return result.status not in _FAILED


def wilson(passed: int, runs: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (95 % with the default ``z``): honest at 0/n and n/n, where
    the normal approximation collapses to a point."""
    if runs <= 0:
        return 0.0, 1.0
    p = passed / runs
    denom = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denom
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pooled(tallies: Sequence[Tally | None]) -> Tally:
    """The runs of several inputs in one tree as one tally (the regression's pass rate in that tree)."""
    return Tally(
        runs=sum(t.runs for t in tallies if t is not None), passed=sum(t.passed for t in tallies if t is not None)
    )


def tally(results: Sequence[RerunResult], passed: Passed = rerun_passed) -> Tally:
    return Tally(runs=len(results), passed=sum(1 for r in results if passed(r)))


def shown(results: Sequence[RerunResult], passed: Passed = rerun_passed) -> RerunResult:
    """The run to show for a tree: its first failing run, else its first."""
    return next((r for r in results if not passed(r)), results[0])


def _error_type(result: RerunResult) -> str | None:
    if result.status in ("timeout", "crashed"):
        return result.status
    return result.error.type if result.error is not None else result.status


def _group(results: Sequence[RerunResult]) -> dict[str, list[RerunResult]]:
    out: dict[str, list[RerunResult]] = {}
    for result in results:
        out.setdefault(result.source_trace_id, []).append(result)
    return out


def _classify(
    was_failing: bool,
    prior: Tally | None,
    before: Tally,
    after: Tally,
    shown_before: RerunResult,
    shown_after: RerunResult,
) -> str:
    if was_failing:
        if prior is not None and prior.passes is False:
            return "pre_existing"
        if after.passes and before.passes:
            return "not_reproduced"
        if after.passes:
            return "fixed"
        if not before.passes and _error_type(shown_before) == _error_type(shown_after):
            return "still_failing"
        return "new_error"
    if not after.passes:
        return "broke" if before.passes else "still_failing"
    return "unchanged_ok" if shown_before.output == shown_after.output else "changed_ok"


def compare(
    before: Sequence[RerunResult],
    after: Sequence[RerunResult],
    failing_ids: set[str],
    *,
    prior: Sequence[RerunResult] | None = None,
    passed: Passed = rerun_passed,
    prior_revision: str | None = None,
    head_revision: str | None = None,
) -> Comparison:
    """Pair the runs of each tree by source trace id (in ``after``'s order) and judge each input.

    ``prior`` (with ``prior_revision``) makes the comparison three-way. A prior run that could not be set
    up (the entry point did not exist before the suspect change) counts as passing: the failure is new.
    """
    before_by, after_by = _group(before), _group(after)
    prior_by = _group(prior) if prior is not None else {}
    items: list[InputComparison] = []
    for tid, after_runs in after_by.items():
        before_runs = before_by.get(tid)
        if not before_runs:
            continue
        prior_runs = prior_by.get(tid)
        prior_tally = None
        if prior_runs:
            prior_tally = Tally(
                runs=len(prior_runs),
                passed=sum(1 for r in prior_runs if r.status == "setup_error" or passed(r)),
            )
        b, a = shown(before_runs, passed), shown(after_runs, passed)
        before_tally, after_tally = tally(before_runs, passed), tally(after_runs, passed)
        was_failing = tid in failing_ids
        items.append(
            InputComparison(
                source_trace_id=tid,
                was_failing=was_failing,
                before=b,
                after=a,
                change=_classify(was_failing, prior_tally, before_tally, after_tally, b, a),  # type: ignore[arg-type]
                output_diff=output_diff(b.output, a.output),
                span_diff=span_tree_diff(b.trace, a.trace),
                prior=shown(prior_runs, passed) if prior_runs else None,
                prior_runs=prior_tally,
                before_runs=before_tally,
                after_runs=after_tally,
            )
        )
    runs = max(
        [t.runs for i in items for t in (i.prior_runs, i.before_runs, i.after_runs) if t is not None] or [1]
    )
    return Comparison(
        items=items,
        verdict=_verdict(items),  # type: ignore[arg-type]
        prior_revision=prior_revision if prior is not None else None,
        head_revision=head_revision,
        runs=runs,
    )


def _verdict(items: Sequence[InputComparison]) -> str:
    if any(item.change == "broke" for item in items):
        return "regressed_elsewhere"
    failing = [item for item in items if item.was_failing]
    if not failing:
        return "unchanged"
    regression = [item for item in failing if item.change not in ("pre_existing", "not_reproduced")]
    if not regression:
        return "not_reproduced"
    fixed = sum(item.change == "fixed" for item in regression)
    if fixed == len(regression):
        return "fixed"
    return "partially_fixed" if fixed else "not_fixed"
