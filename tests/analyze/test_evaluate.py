"""``evaluate``: which traces a rule judges, what it may spend, and what it stores (loopback model server)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tracemend.analyze import Rule, evaluate, judge_trace
from tracemend.assertions import VerdictCache
from tracemend.records import Span
from tracemend.store import Store, utc_day
from tracemend.testing import chat_body

from helpers.quality import DEPLOY, ENTRY, RULE, judge_answer, judge_responder, traffic

LATER = DEPLOY + timedelta(hours=2)


def _store(tmp_path: Path, **kw) -> Store:
    store = Store(tmp_path / "t.db")
    store.add_traces(traffic(**{"bad_before": 0.3, "bad_after": 0.3, "hours": 0, "seed": 7, **kw}))
    return store


def _distinct_outputs(store: Store) -> None:
    # Every trace a different output, so the verdict cache cannot save a call.
    traces = list(store.iter_traces())
    for i, trace in enumerate(traces):
        trace.output = f"{trace.output} (ref {i})"
    store.add_traces(traces)


def test_the_calls_budget_is_never_passed_and_holds_across_runs(tmp_path: Path, loopback) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path)
    _distinct_outputs(store)
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge", max_calls_per_day=7)
    first = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None).rules[0]
    assert first.budget_hit == "calls" and first.over_budget == first.sampled - first.judged_traces > 0
    assert loopback.request_count == first.model_calls <= 7
    assert first.today is not None and first.today.model_calls == loopback.request_count
    assert first.today.day == utc_day() and first.today.judged == first.judged_traces
    # The day's spending is in the store: a second run (another process, say) judges nothing more.
    second = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None).rules[0]
    assert second.judged_traces == 0 and second.budget_hit == "calls"
    assert loopback.request_count == first.model_calls
    # Worst case reserved per judgment is two calls (a re-ask); the budget may go unused by one call, never over.
    assert 7 - 1 <= first.today.model_calls <= 7


def test_the_cost_budget_stops_before_an_estimated_overrun(tmp_path: Path, loopback) -> None:
    loopback.responder = lambda request: chat_body(
        judge_answer("PASS", "fine"), model="gpt-4o-mini", prompt_tokens=400, completion_tokens=60
    )
    store = _store(tmp_path)
    _distinct_outputs(store)
    rule = Rule(name="refund-window", assertion=RULE, model="openai/gpt-4o-mini", max_cost_per_day=0.002)
    report = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None).rules[0]
    assert report.budget_hit == "cost" and 0 < report.judged_traces < report.sampled
    spent = store.judge_usage(day=utc_day(), rule="refund-window")[0]
    assert 0 < spent.cost <= 0.002
    assert abs(spent.cost - sum(s.cost for s in store.iter_scores(source="judge"))) < 1e-12
    assert spent.max_call_cost > 0


def test_sampling_is_the_same_in_every_run_and_judged_traces_are_not_judged_again(
    tmp_path: Path, loopback
) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path, hours=3)
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge", sample_rate=0.3)
    picked = {t.trace_id for t in store.iter_traces() if rule.sampled(t.trace_id)}
    assert 0.2 * store.count() < len(picked) < 0.4 * store.count()
    assert picked == {t.trace_id for t in store.iter_traces() if rule.sampled(t.trace_id)}
    cache = VerdictCache(tmp_path / "c.db")
    report = evaluate(store, [rule], since=DEPLOY - timedelta(hours=3), until=LATER, cache=cache).rules[0]
    assert report.sampled == report.judged_traces == len(picked)
    assert {s.trace_id for s in store.iter_scores(source="judge")} == picked
    again = evaluate(store, [rule], since=DEPLOY - timedelta(hours=3), until=LATER, cache=cache).rules[0]
    assert again.sampled == again.judged_traces == 0 and again.candidates == store.count() - len(picked)
    # A reworded rule is another rule: it judges again.
    reworded = rule.model_copy(update={"assertion": RULE + " It says why."})
    assert reworded.key != rule.key
    third = evaluate(store, [reworded], since=DEPLOY - timedelta(hours=3), until=LATER, cache=cache).rules[0]
    assert third.judged_traces == len(picked)


def test_the_verdict_cache_is_keyed_by_rule_input_output_and_model(tmp_path: Path, loopback) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path)
    cache = VerdictCache(tmp_path / "c.db")
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge")
    report = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=cache).rules[0]
    distinct = {(json.dumps(t.input), t.output) for t in store.iter_traces()}
    assert report.model_calls == loopback.request_count == len(distinct) < report.judged_traces
    assert report.cache_hits == report.judged_traces - len(distinct)
    other_model = rule.model_copy(update={"name": "refund-window-2", "model": "openai/judge-2"})
    evaluate(store, [other_model], since=DEPLOY, until=LATER, cache=cache)
    assert loopback.request_count == 2 * len(distinct)


def test_the_judge_names_a_category_and_is_offered_the_known_ones(tmp_path: Path, loopback) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path, bad_after=0.9)
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge")
    report = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None).rules[0]
    assert report.failed > 0 and report.categories == {"ignores refund window": report.failed}
    fails = list(store.iter_scores(verdict="fail"))
    assert {s.category for s in fails} == {"Ignores refund window."}
    assert all(s.reason and s.model == "openai/judge" and s.rule == RULE for s in fails)
    system = loopback.requests[0]["messages"][0]["content"]
    assert '"category"' in system
    # Once a category exists, later requests offer it for reuse (after the assertion, outside the data).
    later = [r["messages"][1]["content"] for r in loopback.requests[16:]]
    assert later and all(
        "FAILURE CATEGORIES ALREADY USED" in u and '"Ignores refund window."' in u for u in later
    )
    assert all(u.index("ASSERTION") < u.index("FAILURE CATEGORIES") for u in later)


def test_entry_points_span_kinds_and_failed_traces(tmp_path: Path, loopback) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path)
    traces = list(store.iter_traces())
    # Give each trace an llm span whose output is the reply, and make one trace fail with an exception.
    for t in traces:
        t.spans = [
            Span(
                span_id=f"{i:016x}",
                trace_id=t.trace_id,
                name=n,
                kind=k,
                start_time=t.start_time,
                input={"prompt": "answer the ticket"},
                output=t.output if k == "llm" else None,
            )
            for i, (n, k) in enumerate([("answer", "agent"), ("chat", "llm")], start=1)
        ]
    traces[0].status = "error"
    store.add_traces(traces)
    elsewhere = Rule(name="other", assertion=RULE, model="openai/judge", entry_points=["billing.*"])
    spans = Rule(
        name="llm-replies",
        assertion=RULE,
        model="openai/judge",
        span_kinds=["llm"],
        entry_points=[ENTRY.split(":")[0] + ":*"],
    )
    result = evaluate(store, [elsewhere, spans], since=DEPLOY, until=LATER, cache=None)
    assert result.rules[0].candidates == 0 and result.rules[0].judged_traces == 0
    report = result.rules[1]
    assert report.errored == 1 and report.judged_traces == len(traces) - 1
    scores = list(store.iter_scores(name="llm-replies"))
    assert len(scores) == len(traces) - 1 and {s.span_id for s in scores} == {f"{2:016x}"}
    assert traces[0].trace_id not in {s.trace_id for s in scores}


def test_judge_trace_judges_one_trace_without_storing(tmp_path: Path, loopback) -> None:
    loopback.responder = judge_responder
    store = _store(tmp_path, bad_after=1.0)
    trace = next(t for t in store.iter_traces() if "approved" in t.output)
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge", samples=3)
    scores = judge_trace(trace, rule, cache=None)
    assert len(scores) == 1 and scores[0].verdict == "fail" and scores[0].votes == [False, False, False]
    assert scores[0].model_calls == 3 and loopback.request_count == 3
    assert not list(store.iter_scores())
