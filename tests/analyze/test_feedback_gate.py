"""Negative feedback as a failure: gated by the traces people rated (or, for a report-only button, by all)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from tracemend.analyze import analyze, list_signatures
from tracemend.analyze.ungated import finding_from_store
from tracemend.capture.feedback import feedback_score
from tracemend.store import Store

from helpers.quality import DEPLOY, traffic

LATER = DEPLOY + timedelta(hours=2)
BASELINE = timedelta(hours=72)


def _rated(path: Path, *, rated: float, bad_before: float, bad_after: float, seed: int) -> Store:
    """People rate a share of the traces; a share of the ratings is a thumbs-down."""
    rng = random.Random(seed)
    store = Store(path)
    traces = list(traffic(bad_before=0.0, bad_after=0.0, seed=seed))
    store.add_traces(traces)
    scores = []
    for t in traces:
        if rng.random() >= rated:
            continue
        bad = rng.random() < (bad_after if t.start_time >= DEPLOY else bad_before)
        ns = int((t.start_time + timedelta(minutes=2)).timestamp() * 1e9)
        scores.append(
            feedback_score(
                t.trace_id, 0.0 if bad else 1.0, name="thumbs", reason="wrong" if bad else None, created_ns=ns
            )
        )
    store.add_scores(scores)
    return store


def test_more_thumbs_down_after_a_deploy_is_flagged(tmp_path: Path) -> None:
    store = _rated(tmp_path / "t.db", rated=0.3, bad_before=0.05, bad_after=0.4, seed=21)
    result = analyze(store, baseline=BASELINE, now=LATER)
    flagged = result.flagged
    assert len(flagged) == 1
    finding = flagged[0]
    assert finding.signature.kind == "negative_feedback"
    assert finding.signature.exception_types == ["tracemend.NegativeFeedback"]
    assert finding.signature.template == "thumbs: negative" and finding.exposure == "judged"
    # Exposed by when the trace ran (not when it was rated): the rated traces of the window.
    window_ids = {t.trace_id for t in store.iter_traces(since=DEPLOY)}
    rated_window = len({s.trace_id for s in store.iter_scores(source="feedback")} & window_ids)
    assert finding.window_exposure == rated_window


def test_rating_more_traces_is_not_a_regression(tmp_path: Path) -> None:
    # After the deploy the app asks for a rating four times as often; the share of thumbs-down is unchanged.
    store = _rated(tmp_path / "t.db", rated=0.1, bad_before=0.1, bad_after=0.1, seed=22)
    extra = _rated(tmp_path / "x.db", rated=0.3, bad_before=0.1, bad_after=0.1, seed=22)
    late = [s for s in extra.iter_scores() if s.created_at >= DEPLOY]
    store.add_scores(late)
    result = analyze(store, baseline=BASELINE, now=LATER)
    assert result.findings and not result.flagged


def test_report_only_feedback_is_exposed_to_every_trace(tmp_path: Path) -> None:
    # A "report a problem" button: only negative feedback exists, so rated traces say nothing of the rate.
    rng = random.Random(5)
    store = Store(tmp_path / "t.db")
    traces = list(traffic(bad_before=0.0, bad_after=0.0, seed=23))
    store.add_traces(traces)
    reports = [
        feedback_score(t.trace_id, 0.0, name="report", category="Wrong refund promise")
        for t in traces
        if rng.random() < (0.2 if t.start_time >= DEPLOY else 0.01)
    ]
    store.add_scores(reports)
    result = analyze(store, baseline=BASELINE, now=LATER)
    (finding,) = result.flagged
    assert finding.exposure == "traces" and finding.window_exposure == result.window_traces
    assert finding.signature.template == "report: wrong refund promise"
    # The finding a person asks for by trace or by signature, without the gate, is the same signature.
    by_trace = finding_from_store(store, trace_id=finding.example_trace_ids[0][:12])
    assert (
        by_trace.signature == finding.signature
        and by_trace.example_trace_ids[0] == finding.example_trace_ids[0]
    )
    by_sig = finding_from_store(store, signature=finding.signature.signature_id[:8])
    assert by_sig.signature == finding.signature and by_sig.window_count == finding.window_count
    listed = [r for r in list_signatures(store) if r.signature.kind == "negative_feedback"]
    assert [r.count for r in listed] == [len(reports)]


def test_the_newest_feedback_of_a_person_counts(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    trace = next(traffic(bad_before=0.0, bad_after=0.0, hours=1, seed=1))
    store.add_traces([trace])
    t0 = int(trace.start_time.timestamp() * 1e9)
    store.add_scores([feedback_score(trace.trace_id, 0.0, name="user", created_ns=t0 + 1)])
    assert [r.signature.template for r in list_signatures(store)] == ["user: negative"]
    store.add_scores(
        [feedback_score(trace.trace_id, 1.0, name="user", created_ns=t0 + 2)]
    )  # changed their mind
    assert list_signatures(store) == []
    assert [s.verdict for s in store.scores_of(trace.trace_id)] == ["fail", "pass"]
