"""Evaluate one regression case: rerun its entry point, apply the checks, then ask the judge.

The rerun is synchronous (it is the user's code, run as it ran in production, through
``tracemend.replay``); the judge is async so that many cases can be judged concurrently while the next
entry points run. The judge is skipped when the call could not be made or a check already failed: a failing
case costs no model calls.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend.assertions.cache import VerdictCache
from tracemend.assertions.checks import CallOutcome, CheckResult, output_text, run_checks
from tracemend.assertions.judging import JudgeStats, ajudge, spread
from tracemend.errors import JudgeCacheMiss
from tracemend.records import JudgeVerdict, RegressionCase


@dataclass
class CaseResult:
    case: RegressionCase
    path: Path | None = None
    outcome: CallOutcome | None = None
    setup_error: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    verdict: JudgeVerdict | None = None
    judge_skipped: str | None = None
    cache_miss: str | None = None
    judge_error: str | None = None
    # The judge's model failed (server error, timeout, credentials): the case could not be decided.
    incomplete: bool = False

    @property
    def passed(self) -> bool:
        if self.setup_error or self.cache_miss or self.judge_error:
            return False
        if not all(c.passed for c in self.checks):
            return False
        if self.outcome is not None and self.outcome.error is not None and not _error_expected(self):
            return False
        return self.verdict.passed if self.verdict is not None else not self.case.assertions

    def summary(self) -> dict[str, Any]:
        """Plain data for pytest's user_properties (travels from xdist workers to the controller)."""
        verdict = self.verdict
        return {
            "name": self.case.name,
            "passed": self.passed,
            "model_calls": verdict.model_calls if verdict else 0,
            "cache_hits": verdict.cache_hits if verdict else 0,
            "cost": verdict.cost if verdict else 0.0,
            "scripted": bool(verdict and verdict.scripted),
            "flaky": spread(verdict) if verdict and verdict.flaky else "",
            "cache_miss": bool(self.cache_miss),
            "judge_model": verdict.model if verdict else None,
            "incomplete": self.incomplete,
        }


def _error_expected(result: CaseResult) -> bool:
    # An exception is the expected outcome only when a raises / not_raises check speaks about it.
    return any(c.check.kind in ("raises", "not_raises") for c in result.checks)


def run_entry_point(case: RegressionCase) -> tuple[CallOutcome | None, str | None]:
    """Call the case's entry point with its recorded input and config; (outcome, setup error)."""
    from tracemend import replay, settings
    from tracemend.errors import ConfigError
    from tracemend.project import project_root

    try:
        # A case file is input from whoever can open a pull request: it may only call the project's code.
        root = project_root()
        check = functools.partial(
            replay.check_project_code, root=root, allow=settings.get("allow_entry_points", root=root)
        )
        fn, args, kwargs = replay.prepare_call(
            case.entry_point,
            case.input,
            config=case.config,
            config_class=case.config_class,
            config_param=case.config_param,
            check=check,
        )
    except (replay.ReplayError, ConfigError) as exc:
        return None, f"cannot rerun {case.entry_point}: {exc}"
    start = time.perf_counter()
    try:
        output = replay.call(fn, args, kwargs)
        error = None
    except Exception as exc:
        output, error = None, exc
    latency = (time.perf_counter() - start) * 1000.0
    return CallOutcome(output=output, error=error, latency_ms=latency), None


async def ajudge_case(
    result: CaseResult,
    *,
    model: str | None,
    cache: VerdictCache | None,
    samples: int,
    stats: JudgeStats,
) -> CaseResult:
    """Fill in ``result.verdict`` (or why the judge was skipped / could not answer)."""
    case = result.case
    if not case.assertions:
        return result
    if result.setup_error or result.outcome is None:
        result.judge_skipped = "the entry point could not be called"
        return result
    if result.outcome.error is not None:
        result.judge_skipped = f"the call raised {type(result.outcome.error).__name__}"
        return result
    if not all(c.passed for c in result.checks):
        result.judge_skipped = "a deterministic check failed"
        return result
    try:
        result.verdict = await ajudge(
            result.outcome.output,
            case.assertions,
            input=case.input,
            model=model,
            samples=samples,
            cache=cache,
            stats=stats,
        )
    except JudgeCacheMiss as exc:
        result.cache_miss = str(exc)
    except Exception as exc:  # forbidden requests, bad settings: the case fails with the reason
        from tracemend.errors import ModelError

        result.judge_error = f"{type(exc).__name__}: {exc}"
        result.incomplete = isinstance(exc, ModelError)
    return result


def start_case(case: RegressionCase, path: Path | None = None) -> CaseResult:
    """Rerun and check (the synchronous half of an evaluation)."""
    result = CaseResult(case=case, path=path)
    result.outcome, result.setup_error = run_entry_point(case)
    if result.outcome is not None:
        result.checks = run_checks(case.checks, result.outcome)
    return result


def evaluate_case(
    case: RegressionCase,
    *,
    path: Path | None = None,
    model: str | None = None,
    cache: VerdictCache | None = None,
    samples: int = 1,
    stats: JudgeStats | None = None,
) -> CaseResult:
    from tracemend.llm import run_sync

    result = start_case(case, path)
    stats = stats if stats is not None else JudgeStats()
    return run_sync(lambda: ajudge_case(result, model=model, cache=cache, samples=samples, stats=stats))


def format_result(result: CaseResult, *, max_output: int = 2000) -> str:
    """The failure report: what failed, the judge's verdicts and reasoning, and the output."""
    case = result.case
    lines = [f"regression case {case.name!r}" + (f" ({result.path})" if result.path else "")]
    prov = case.provenance
    origin = [
        f"source trace {prov.source_trace_id[:12]}" if prov.source_trace_id else "",
        f"signature {prov.signature_id}" if prov.signature_id else "",
        f"fixed in {prov.fixed_in_commit[:10]}" if prov.fixed_in_commit else "",
    ]
    if any(origin):
        lines.append("  " + ", ".join(o for o in origin if o))
    lines.append(f"  entry point {case.entry_point}")
    if result.setup_error:
        lines.append(f"setup error: {result.setup_error}")
    outcome = result.outcome
    if outcome is not None and outcome.error is not None:
        lines.append(f"the call raised {type(outcome.error).__name__}: {outcome.error}")
    if result.checks:
        lines.append("checks:")
        for check in result.checks:
            mark = "ok  " if check.passed else "FAIL"
            lines.append(f"  {mark} {check.describe()}: {check.message}")
    if result.judge_skipped:
        lines.append(f"judge: skipped ({result.judge_skipped})")
    if result.cache_miss:
        lines.append(f"judge: cache-only mode and no cached verdict: {result.cache_miss}")
    if result.judge_error:
        lines.append(f"judge: failed closed: {result.judge_error}")
    verdict = result.verdict
    if verdict is not None:
        label = " [scripted]" if verdict.scripted else ""
        failed = sum(not a.passed for a in verdict.assertions)
        source = "cached" if verdict.cached else f"{verdict.model_calls} model call(s)"
        lines.append(
            f"judge {verdict.model}{label} ({source}): {failed} of {len(verdict.assertions)} assertion(s) failed"
            + (f"; FLAKY ({spread(verdict)})" if verdict.flaky else "")
        )
        for item in verdict.assertions:
            lines.append(f"  {'PASS' if item.passed else 'FAIL'}  {item.assertion}")
            if len(item.votes) > 1:
                lines.append(f"        votes: {sum(item.votes)}/{len(item.votes)} pass")
            if item.error:
                lines.append(f"        {item.error}")
            if item.reasoning and item.reasoning != item.error:
                lines.append(f"        reasoning: {item.reasoning}")
    if outcome is not None and outcome.error is None:
        text = output_text(outcome.output)
        if len(text) > max_output:
            text = text[:max_output] + f"\n… [{len(text) - max_output} more characters]"
        lines.append("output:")
        lines.extend("  " + line for line in text.splitlines() or [""])
    return "\n".join(lines)
