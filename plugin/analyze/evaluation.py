"""Online judging: sampled traces judged by the project's rules, the verdicts stored as scores.

For each rule, the traces it has not judged yet (as the rule is worded now) in the period, of the entry
points it names, that finished without an error (a trace that raised is a failure already) and that its
sample rate picks, are judged by :func:`tracemend.assertions.judge` with the rule's assertion: the
verdict cache (keyed by rule, input, output and judge model), ``samples`` votes with a majority, and fail
closed. A judgment that failed closed (a model error, an answer that does not validate) is stored as
``unknown``: never a failure, and tried again by the next run.

Budget: before each batch of judgments the rule's spending today (UTC, from the store, so it holds across
runs and processes) plus the batch's worst case must stay within ``max_calls_per_day`` (each vote may take
two calls: one re-ask when the answer does not validate) and, when set, ``max_cost_per_day`` (estimated from
the dearest call seen for the rule, or the price table for its first). Otherwise the rule stops for the day.

:func:`judge_trace` judges one trace by one rule (the n-run verification reuses it).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tracemend import llm
from tracemend.analyze.judged import category_template
from tracemend.analyze.rules import Rule
from tracemend.assertions.cache import CacheMode, VerdictCache, normalize_value
from tracemend.assertions.judging import ajudge, build_messages
from tracemend.records import JudgeVerdict, Score, Span, Trace
from tracemend.store import JudgeUsage, Store, utc_day

# Calls one vote may take: the first answer and one re-ask when it does not validate.
CALLS_PER_VOTE = 2
MAX_KNOWN_CATEGORIES = 12


@dataclass
class RuleReport:
    """What evaluating one rule did (``evaluate`` prints one row per rule)."""

    rule: Rule
    model: str
    candidates: int = 0  # unjudged traces of its entry points in the period
    errored: int = 0  # skipped: the trace failed already (an exception or a failed status)
    sampled: int = 0  # picked by the sample rate
    no_target: int = 0  # sampled, but without a span of the rule's kinds
    judged_traces: int = 0
    passed: int = 0  # scores (one per trace, or per span for rules on span kinds)
    failed: int = 0
    unknown: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    cost: float = 0.0
    scripted: bool = False
    # Sampled traces left unjudged because the day's budget would be passed ("calls" or "cost").
    over_budget: int = 0
    budget_hit: str | None = None
    today: JudgeUsage | None = None
    # Failures by category, normalised as signatures key them.
    categories: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("rule", "today")}
        out["rule"] = self.rule.name
        out["today"] = self.today.__dict__ if self.today else None
        out["max_calls_per_day"] = self.rule.daily_calls()
        out["max_cost_per_day"] = self.rule.max_cost_per_day
        return out


@dataclass
class Evaluation:
    since: datetime | None
    until: datetime
    rules: list[RuleReport]

    @property
    def model_calls(self) -> int:
        return sum(r.model_calls for r in self.rules)

    @property
    def cache_hits(self) -> int:
        return sum(r.cache_hits for r in self.rules)

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.rules)

    @property
    def scripted(self) -> bool:
        return any(r.scripted for r in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "cost": self.cost,
            "scripted": self.scripted,
            "rules": [r.to_json() for r in self.rules],
        }


# --- one trace, one rule ------------------------------------------------------------------------------


def targets(trace: Trace, rule: Rule) -> list[tuple[Span | None, Any, Any]]:
    """What ``rule`` judges in ``trace``: (span, input, output) for each span of its kinds that finished
    without an error, or (None, the trace's input, its output)."""
    if not rule.span_kinds:
        return [(None, trace.input, trace.output)]
    return [(s, s.input, s.output) for s in trace.spans if s.kind in rule.span_kinds and s.error is None]


def score_id(trace_id: str, span_id: str | None, rule: Rule) -> str:
    """A judge score's id: one per trace (or span) and rule as worded, so judging again replaces it."""
    text = "\x1f".join([trace_id, span_id or "", rule.name, rule.key])
    return "j-" + hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


def to_score(trace_id: str, span_id: str | None, rule: Rule, verdict: JudgeVerdict) -> Score:
    """The stored form of a verdict. A verdict any of whose votes failed closed is ``unknown``."""
    item = verdict.assertions[0]
    state = "unknown" if item.error else ("pass" if item.passed else "fail")
    return Score(
        score_id=score_id(trace_id, span_id, rule),
        trace_id=trace_id,
        span_id=span_id,
        source="judge",
        name=rule.name,
        verdict=state,  # type: ignore[arg-type]
        value=None if state == "unknown" else float(item.passed),
        category=item.category if state == "fail" else None,
        reason=item.reasoning,
        rule=rule.assertion,
        rule_key=rule.key,
        model=verdict.model,
        model_calls=verdict.model_calls,
        cache_hits=verdict.cache_hits,
        cost=verdict.cost,
        samples=verdict.samples,
        votes=item.votes,
        scripted=verdict.scripted,
        error=item.error,
        created_at=datetime.now(UTC),
    )


async def ajudge_trace(
    trace: Trace,
    rule: Rule,
    *,
    model: str | None = None,
    cache: VerdictCache | CacheMode | None = "default",
    categories: Sequence[str] = (),
) -> list[Score]:
    """Judge one trace (with its spans, for rules on span kinds) by one rule: one score per target.

    Scores are returned, not stored (``Store.add_scores``). ``model``: the rule's model, else this, else
    the judge role's model.
    """
    judge_model = rule.model or model or llm.resolve_model("judge")
    scores = []
    for span, inp, out in targets(trace, rule):
        verdict = await ajudge(
            out,
            rule.assertion,
            input=inp,
            model=judge_model,
            samples=rule.samples,
            cache=cache,
            categorize=True,
            categories=categories,
        )
        scores.append(to_score(trace.trace_id, span.span_id if span else None, rule, verdict))
    return scores


judge_trace = llm.sync_twin(ajudge_trace)


# --- the budget ---------------------------------------------------------------------------------------


def price_per_call(model: str, trace: Trace, rule: Rule) -> float:
    """The price table's cost of one judge call on this trace (0 for scripted or unknown models)."""
    if llm.is_scripted(model):
        return 0.0
    try:
        import litellm

        span, inp, out = (targets(trace, rule) or [(None, trace.input, trace.output)])[0]
        text = "".join(m["content"] for m in build_messages(out, rule.assertion, input=inp, categorize=True))
        prompt, completion = litellm.cost_per_token(
            model=model, prompt_tokens=len(text) // 4 + 1, completion_tokens=300
        )
        return float(prompt + completion)
    except Exception:  # a model the price table does not know
        return 0.0


@dataclass
class _Budget:
    rule: Rule
    calls: int  # spent today before this batch
    cost: float
    call_cost: float  # estimate of one call's cost

    def __post_init__(self) -> None:
        self.max_calls = self.rule.daily_calls()

    def allows(self, calls: int) -> str | None:
        """None if ``calls`` more calls fit; else what would be passed ("calls" or "cost")."""
        if self.calls + calls > self.max_calls:
            return "calls"
        limit = self.rule.max_cost_per_day
        if limit is not None and self.cost + calls * self.call_cost > limit:
            return "cost"
        return None


# --- evaluate -----------------------------------------------------------------------------------------


Progress = Callable[[RuleReport], None]


async def aevaluate(
    store: Store,
    rules: Sequence[Rule],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    cache: VerdictCache | CacheMode | None = "default",
    progress: Progress | None = None,
) -> Evaluation:
    """Judge the traces that started in [since, until) by each rule, within each rule's budget, and store
    the verdicts as scores. ``progress`` is called after each batch."""
    until = until or datetime.now(UTC)
    shared = VerdictCache(mode=cache) if isinstance(cache, str) else cache
    try:
        reports = [await _evaluate_rule(store, rule, since, until, model, shared, progress) for rule in rules]
    finally:
        if shared is not None and shared is not cache:
            shared.close()
    return Evaluation(since=since, until=until, rules=reports)


evaluate = llm.sync_twin(aevaluate)


async def _evaluate_rule(
    store: Store,
    rule: Rule,
    since: datetime | None,
    until: datetime,
    model: str | None,
    cache: VerdictCache | None,
    progress: Progress | None,
) -> RuleReport:
    judge_model = rule.model or model or llm.resolve_model("judge")
    report = RuleReport(rule=rule, model=judge_model, scripted=llm.is_scripted(judge_model))
    day = utc_day()
    spent = store.judge_usage(day=day, rule=rule.name)
    run = _RuleRun(
        store,
        rule,
        judge_model,
        cache,
        report,
        _Budget(
            rule,
            spent[0].model_calls if spent else 0,
            spent[0].cost if spent else 0.0,
            spent[0].max_call_cost if spent else 0.0,
        ),
        [c for c, _n in store.score_categories(rule.name, limit=MAX_KNOWN_CATEGORIES)],
        day,
        progress,
    )
    # An hour of traces at a time: memory stays bounded however long the period is.
    for lo, hi in _slices(store, since, until):
        chosen = []
        for row in store.unjudged(rule.name, rule.key, since=lo, until=hi):
            if not rule.applies_to(row.entry_point):
                continue
            report.candidates += 1
            if row.status != "ok":
                report.errored += 1
            elif rule.sampled(row.trace_id):
                chosen.append(row.trace_id)
        report.sampled += len(chosen)
        if report.budget_hit:  # counted, left for tomorrow
            report.over_budget += len(chosen)
        else:
            report.over_budget += await run.judge(chosen)
    spent = store.judge_usage(day=day, rule=rule.name)
    report.today = spent[0] if spent else JudgeUsage(day=day, rule=rule.name)
    return report


def _slices(store: Store, since: datetime | None, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    if since is None:
        span = store.time_range()
        if span is None:
            return
        since = span[0]
    step = timedelta(hours=1)
    lo = since
    while lo < until:
        hi = min(lo + step, until)
        yield lo, hi
        lo = hi


@dataclass
class _RuleRun:
    """One rule's judging in one run: the budget, the categories known, what was done."""

    store: Store
    rule: Rule
    model: str
    cache: VerdictCache | None
    report: RuleReport
    budget: _Budget
    known: list[str]
    day: str
    progress: Progress | None
    # What this run has asked the judge already: asking again is a cache hit.
    settled: set[str] = field(default_factory=set)

    async def judge(self, chosen: list[str]) -> int:
        """Judge the chosen traces within the budget, in batches; returns how many were left unjudged."""
        rule, report, budget = self.rule, self.report, self.budget
        batch_size = max(1, llm.load_settings().concurrency)
        pending = deque(chosen)
        waiting: dict[str, Trace] = {}  # loaded, and put back by _fit
        while pending:
            ids = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            batch = []
            loaded = (
                waiting.pop(tid, None) or self.store.get_trace(tid, with_spans=bool(rule.span_kinds))
                for tid in ids
            )
            for trace in loaded:
                if trace is not None and not targets(trace, rule):
                    report.no_target += 1
                elif trace is not None:
                    batch.append(trace)
            if not batch:
                continue
            if not budget.call_cost:
                budget.call_cost = price_per_call(self.model, batch[0], rule)
            allowed, later = self._fit(batch)
            waiting.update((t.trace_id, t) for t in later)
            pending.extendleft(reversed([t.trace_id for t in later]))
            if not allowed:
                return len(pending)
            report.budget_hit = None
            results = await asyncio.gather(
                *(
                    ajudge_trace(t, rule, model=self.model, cache=self.cache, categories=self.known)
                    for t in allowed
                )
            )
            scores = [s for group in results for s in group]
            usage = _account(report, scores, self.day, rule.name)
            self.store.add_scores(scores, [usage])
            budget.calls += usage.model_calls
            budget.cost += usage.cost
            budget.call_cost = max(budget.call_cost, usage.max_call_cost)
            report.judged_traces += len(allowed)
            for score in scores:
                if (
                    score.category
                    and score.category not in self.known
                    and len(self.known) < MAX_KNOWN_CATEGORIES
                ):
                    self.known.append(score.category)
            if self.progress is not None:
                self.progress(report)
        return 0

    def _fit(self, batch: list[Trace]) -> tuple[list[Trace], list[Trace]]:
        """The traces to judge now and those that wait. Traces are taken while their worst case fits the
        budget; the others wait for the next batch (the worst case rarely happens) or, when none fits, for
        tomorrow. A trace asking what another of the batch asks (same input and output), not asked before in
        this run, waits too: judged concurrently, both would miss the cache."""
        allowed: list[Trace] = []
        later: list[Trace] = []
        reserved, asked = 0, set()
        for index, trace in enumerate(batch):
            keys = _asks(trace, self.rule) - self.settled if self.cache is not None else set()
            if keys & asked:
                later.append(trace)
                continue
            need = len(targets(trace, self.rule)) * self.rule.samples * CALLS_PER_VOTE
            hit = self.budget.allows(reserved + need)
            if hit is not None:
                self.report.budget_hit = hit
                later += batch[index:]
                break
            allowed.append(trace)
            asked |= keys
            reserved += need
        self.settled |= asked
        return allowed, later


def _asks(trace: Trace, rule: Rule) -> set[str]:
    """What judging the trace asks the judge: a digest per target of its input and output."""
    return {
        hashlib.blake2b(f"{normalize_value(i)}\x1f{normalize_value(o)}".encode(), digest_size=12).hexdigest()
        for _span, i, o in targets(trace, rule)
    }


def _account(report: RuleReport, scores: list[Score], day: str, rule: str) -> JudgeUsage:
    usage = JudgeUsage(day=day, rule=rule, judged=len(scores))
    for score in scores:
        usage.model_calls += score.model_calls
        usage.cache_hits += score.cache_hits
        usage.cost += score.cost
        if score.model_calls:
            usage.max_call_cost = max(usage.max_call_cost, score.cost / score.model_calls)
        if score.verdict == "pass":
            report.passed += 1
        elif score.verdict == "fail":
            report.failed += 1
        else:
            report.unknown += 1
        if score.category:
            name = category_template(score.category)
            report.categories[name] = report.categories.get(name, 0) + 1
        report.scripted = report.scripted or score.scripted
    report.model_calls += usage.model_calls
    report.cache_hits += usage.cache_hits
    report.cost += usage.cost
    return usage
