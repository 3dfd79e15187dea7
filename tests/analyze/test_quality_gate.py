"""Failures that raise nothing, judged online against a loopback model server and gated like errors.

The judge is the real one (litellm over HTTP to ``tracemend.testing.LoopbackServer``): verdict cache,
structured answers with a failure category, scores in a real SQLite store. The gate's exposure is the number
of traces judged, so judging more of the window (a higher sample rate) does not look like a regression, and a
real quality drop does.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tracemend.analyze import Rule, analyze, evaluate, list_signatures
from tracemend.assertions import VerdictCache
from tracemend.store import Store

from helpers.quality import DEPLOY, NEW, RULE, judge_responder, traffic

LATER = DEPLOY + timedelta(hours=2)
BASELINE = timedelta(hours=72)


def _judged_store(path: Path, server, cache: VerdictCache, *, bad_after: float) -> Store:
    """A store whose baseline was judged at a 25 % sample and whose window at 100 % (the rule's rate was
    raised at the deploy): the same rule, the same key, four times the judging after the deploy."""
    server.responder = judge_responder
    store = Store(path)
    store.add_traces(traffic(bad_before=0.1, bad_after=bad_after, seed=3))
    rule = Rule(name="refund-window", assertion=RULE, sample_rate=0.25, model="openai/judge")
    before = evaluate(store, [rule], since=DEPLOY - BASELINE, until=DEPLOY, cache=cache)
    after = evaluate(
        store, [rule.model_copy(update={"sample_rate": 1.0})], since=DEPLOY, until=LATER, cache=cache
    )
    assert before.rules[0].unknown == after.rules[0].unknown == 0
    assert after.rules[0].judged_traces == store.count(since=DEPLOY, until=LATER)
    return store


def test_quality_drop_after_a_deploy_is_flagged_and_an_unchanged_deploy_is_not(
    tmp_path: Path, loopback
) -> None:
    cache = VerdictCache(tmp_path / "cache.db")
    regressed = _judged_store(tmp_path / "regressed.db", loopback, cache, bad_after=0.5)
    unchanged = _judged_store(tmp_path / "unchanged.db", loopback, cache, bad_after=0.1)
    requests = loopback.request_count
    assert 0 < requests <= 2 * 16, (
        "distinct (input, output) pairs are judged once; the rest come from the cache"
    )

    result = analyze(regressed, baseline=BASELINE, now=LATER)
    assert [f.verdict for f in result.flagged] == ["regression"]
    finding = result.flagged[0]
    sig = finding.signature
    assert sig.kind == "judged_failure" and sig.rule == "refund-window"
    assert sig.category == "ignores refund window"  # normalised: case, final punctuation
    assert sig.template == "refund-window: ignores refund window"
    assert finding.exposure == "judged"
    # The exposures are the traces judged, not recorded: a quarter of the baseline, all of the window.
    judged_window = regressed.count(since=DEPLOY, until=LATER)
    assert finding.window_exposure == judged_window
    assert 0.2 * result.baseline_traces < finding.baseline_exposure < 0.3 * result.baseline_traces
    assert finding.q_value <= result.alpha
    for trace_id in finding.example_trace_ids:
        scores = regressed.scores_of(trace_id)
        assert [s.verdict for s in scores] == ["fail"] and scores[0].category == "Ignores refund window."
        assert regressed.get_trace(trace_id).code_version.commit == NEW

    steady = analyze(unchanged, baseline=BASELINE, now=LATER)
    assert steady.findings and not steady.flagged
    quiet = steady.findings[0]
    assert quiet.exposure == "judged" and quiet.verdict == "noise"
    # Judged per recorded trace, the window's count looks like a rise: four times the judging, so about
    # four times the failures a traffic-exposed gate would expect. Per trace judged it is the same rate.
    per_recorded = quiet.baseline_count / steady.baseline_traces * steady.window_traces
    assert quiet.window_count > 2 * per_recorded
    assert quiet.window_count <= 2 * quiet.expected
    assert loopback.request_count == requests  # analysis asks no model


def test_judged_failures_are_listed_with_the_traces_judged(tmp_path: Path, loopback) -> None:
    store = _judged_store(tmp_path / "t.db", loopback, VerdictCache(tmp_path / "c.db"), bad_after=0.5)
    rows = [r for r in list_signatures(store) if r.signature.kind == "judged_failure"]
    assert len(rows) == 1
    row = rows[0]
    fails = sum(1 for s in store.iter_scores(source="judge", verdict="fail"))
    judged = sum(1 for s in store.iter_scores(source="judge"))
    assert row.count == fails and row.judged == judged


def test_a_judge_that_fails_closed_never_makes_a_failure(tmp_path: Path, loopback) -> None:
    # The judge's server breaks down for the window: every answer is unusable. Those verdicts are unknown:
    # not failures (nothing is flagged, nothing listed) and tried again by the next run.
    store = Store(tmp_path / "t.db")
    store.add_traces(traffic(bad_before=0.1, bad_after=0.3, hours=2, seed=5))
    rule = Rule(name="refund-window", assertion=RULE, model="openai/judge")
    loopback.responder = lambda request: "I cannot decide."
    broken = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None)
    report = broken.rules[0]
    assert report.unknown == report.judged_traces > 0 and report.failed == 0
    assert report.model_calls == 2 * report.judged_traces  # each asked once more, then failed closed
    unknown = list(store.iter_scores(verdict="unknown"))
    assert len(unknown) == report.judged_traces and all("failed closed" in s.error for s in unknown)
    assert not [r for r in list_signatures(store) if r.judged is not None]

    loopback.responder = judge_responder
    again = evaluate(store, [rule], since=DEPLOY, until=LATER, cache=None)
    assert again.rules[0].judged_traces == report.judged_traces and again.rules[0].unknown == 0
    # Judged again under the same score ids: the unknowns were replaced, not added to.
    assert not list(store.iter_scores(verdict="unknown"))
    assert sum(1 for _ in store.iter_scores(source="judge")) == report.judged_traces
