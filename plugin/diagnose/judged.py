"""Diagnosing a failure that raised nothing: a rule's failed verdicts (or a person's negative feedback).

The diagnosing agent gets what the judge saw and said: the rule's assertion, the failure category, the
judge's reasoning on each failing trace, and the traces' span trees (LLM inputs and outputs, tool calls,
retrieval). It may edit prompts and config as well as code. The sandbox then verifies by rerunning each
failing input ``verify_judged_runs`` times per tree and judging every output with the same rule through
the same judge (:func:`judged_passed`, the ``passed`` hook of :func:`tracemend.sandbox.verify_change`):
pass rates per tree, with an interval, never one run.

Feedback has no rule: its reason becomes the assertion (:func:`feedback_assertion`), so that verification
and the locked case judge the same thing the person complained about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tracemend.records import Finding, JudgedFailure, RerunResult, Score, Trace

if TYPE_CHECKING:
    from tracemend.analyze import Rule
    from tracemend.store import TraceSource

JUDGED_KINDS = ("judged_failure", "negative_feedback")
# What the agent is told on top of its usual instructions, for a failure that raised nothing.
JUDGED_INSTRUCTIONS = """This failure raised no exception: a judge (or a person) found that the output breaks a
rule. Read the failing traces' span trees (the inputs and outputs of each LLM call, tool call and retrieval),
the judge's reasoning and the suspect diff, then find why the output breaks the rule. The cause is often a
prompt, a template or a config value rather than code: propose edits to prompt and config files as well as
code, whichever the cause is in. The fix is verified by rerunning the failing inputs several times and
judging each output with the same rule."""


def is_judged(finding: Finding) -> bool:
    return finding.signature.kind in JUDGED_KINDS


def feedback_assertion(reason: str | None, name: str) -> str:
    """A person's complaint as an assertion a judge can check on a new output."""
    why = " ".join((reason or "").split()).rstrip(".")
    if not why:
        return f"The output would not get negative '{name}' feedback from a user: it is correct and helpful."
    return f"The output does not have the problem a user reported about an earlier answer: {why}."


@dataclass
class JudgedContext:
    """What the judged failure is: the rule (its assertion), the category, and the failing scores."""

    failure: JudgedFailure
    # The failing score of each failing trace that has one (by trace id): the judge's reasoning.
    scores: dict[str, Score] = field(default_factory=dict)
    # The rule as configured now (sample rate, span kinds, samples); None for feedback.
    rule: Rule | None = None

    @property
    def assertion(self) -> str:
        return self.failure.assertion


def _failing_score(scores: Sequence[Score], source: str, name: str) -> Score | None:
    mine = [s for s in scores if s.source == source and s.name == name]
    # The newest score of the name counts (a person may change their mind; a rule is judged again).
    return mine[-1] if mine and mine[-1].verdict == "fail" else None


def judged_context(
    finding: Finding, store: TraceSource, failing: Sequence[Trace], repo: Path
) -> JudgedContext | None:
    """The judged failure behind ``finding`` (None for an exception's finding, or a source without scores)."""
    if not is_judged(finding) or not hasattr(store, "scores_of"):
        return None
    source = "feedback" if finding.signature.kind == "negative_feedback" else "judge"
    name = finding.signature.rule or ""
    scores: dict[str, Score] = {}
    for trace in failing:
        score = _failing_score(store.scores_of(trace.trace_id), source, name)  # type: ignore[attr-defined]
        if score is not None:
            scores[trace.trace_id] = score
    first = next(iter(scores.values()), None)
    rule = _current_rule(repo, name) if source == "judge" else None
    if source == "judge":
        assertion = (first.rule if first is not None else None) or (rule.assertion if rule else "")
    else:
        assertion = feedback_assertion(first.reason if first is not None else None, name)
    if not assertion:
        return None
    failure = JudgedFailure(
        source=source,  # type: ignore[arg-type]
        name=name,
        assertion=assertion,
        category=(first.category if first is not None else None) or finding.signature.category,
        score_id=first.score_id if first is not None else None,
        verdict=first.verdict if first is not None else "fail",
        model=first.model if first is not None else None,
    )
    return JudgedContext(failure=failure, scores=scores, rule=rule)


def judged_passing(ctx: JudgedContext, store: TraceSource, passing: Sequence[Trace]) -> list[Trace]:
    """The passing sample without traces that fail the rule (or got the feedback) too: a trace that returned
    is not a passing one when the judge failed it."""
    f = ctx.failure
    return [
        t
        for t in passing
        if _failing_score(store.scores_of(t.trace_id), f.source, f.name) is None  # type: ignore[attr-defined]
    ]


def _current_rule(repo: Path, name: str) -> Rule | None:
    from tracemend.analyze import load_rules
    from tracemend.errors import ConfigError

    try:
        return next((r for r in load_rules(repo) if r.name == name), None)
    except ConfigError:
        return None


def judged_text(ctx: JudgedContext, failing: Sequence[Trace], render: Callable[[Trace], str]) -> str:
    """The part of the agent's task about the judged failure: the rule, the verdicts, the span trees."""
    f = ctx.failure
    who = f"the online judge's rule {f.name!r}" if f.source == "judge" else f"a person's {f.name!r} feedback"
    parts = [
        JUDGED_INSTRUCTIONS,
        f"The output broke {who}. The assertion every output must satisfy:\n  {f.assertion}",
        f"Failure category: {f.category or 'unspecified'}.",
    ]
    for trace in failing[:3]:
        score = ctx.scores.get(trace.trace_id)
        said = f"The judge's reasoning ({score.model}): {score.reason}" if score and f.source == "judge" else (
            f"The person's reason: {score.reason}" if score else "No verdict text is stored for this trace."
        )
        parts.append(
            f"Failing trace {trace.trace_id[:12]}. {said}\n<data>\n{render(trace)[:5000]}\n</data>"
        )
    return "\n\n".join(parts)


class JudgedPassed:
    """The sandbox's ``passed`` hook: a run passes when it returned and the judge passes its output on the
    rule (every target of a rule on span kinds). A verdict that failed closed is not a pass. Verdicts are
    cached by (rule, input, output, judge model) like online judging's: equal outputs cost one call.
    ``model_calls``, ``cache_hits`` and ``judged`` count what judging the reruns took."""

    def __init__(
        self, ctx: JudgedContext, traces: Sequence[Trace], *, model: str | None, cache_path: Path | None
    ) -> None:
        from tracemend.analyze import Rule
        from tracemend.assertions import VerdictCache

        self.by_id = {t.trace_id: t for t in traces}
        rule = ctx.rule or Rule(name=ctx.failure.name or "feedback", assertion=ctx.assertion)
        self.rule = rule.model_copy(update={"assertion": ctx.assertion})
        self.model = self.rule.model or ctx.failure.model or model
        self.cache = VerdictCache(cache_path) if cache_path is not None else None
        self.categories = [ctx.failure.category] if ctx.failure.category else []
        self.name = ctx.failure.name
        self.model_calls = self.cache_hits = self.judged = 0
        self._seen: dict[int, tuple[RerunResult, bool]] = {}

    def __call__(self, result: RerunResult) -> bool:
        from tracemend.analyze import judge_trace
        from tracemend.sandbox.compare import rerun_passed

        if not rerun_passed(result):
            return False
        source = self.by_id.get(result.source_trace_id)
        if source is None:
            return False
        if self.rule.span_kinds and result.trace is not None:
            judged = result.trace
        else:
            judged = source.model_copy(update={"output": result.output, "spans": []})
        # The comparison asks about one run more than once (its tally, the run it shows): judge it once.
        # The run is kept with its verdict, so its id is not reused while this hook lives.
        seen = self._seen.get(id(result))
        if seen is not None:
            return seen[1]
        scores = judge_trace(judged, self.rule, model=self.model, cache=self.cache, categories=self.categories)
        if self.cache is not None:
            self.cache.flush()
        self.judged += 1
        self.model_calls += sum(s.model_calls for s in scores)
        self.cache_hits += sum(s.cache_hits for s in scores)
        verdict = bool(scores) and all(s.verdict == "pass" for s in scores)
        self._seen[id(result)] = (result, verdict)
        return verdict

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def judged_passed(
    ctx: JudgedContext, traces: Sequence[Trace], *, model: str | None, cache_path: Path | None
) -> JudgedPassed:
    """The ``passed`` hook judging each rerun's output by the judged failure's rule (or reason)."""
    return JudgedPassed(ctx, traces, model=model, cache_path=cache_path)
