"""Items 4–5 of issue 15 in small: what the diagnosis of a judged failure starts from (the rule, the
verdicts, the span tree; a feedback reason rewritten as an assertion), the case it locks (the rule's
assertion, provenance of the judged failure, read back from its file), and the pass-rate interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracemend.analyze import analyze
from tracemend.analyze.judged import judged_finding
from tracemend.assertions.case import load_case, write_case
from tracemend.assertions.lock import case_from_trace
from tracemend.diagnose.judged import feedback_assertion, judged_context, judged_text
from tracemend.diagnose.tools import render_trace
from tracemend.records import Score, Span
from tracemend.sandbox.compare import pooled, wilson
from tracemend.store import Store, open_source

from helpers.records import make_trace

RULE = "The reply never offers a refund for an order outside the refund window."


def _traces(n: int, start: datetime, commit: str, seed: int):
    out = []
    for i in range(n):
        t = make_trace(start=start + timedelta(minutes=i), commit=commit, entry_point="app.agent:run", seed=seed + i)
        t.output = "Good news: it is outside the refund window, but we will refund it." if i % 4 == 0 else "No."
        t.spans.append(
            Span(
                span_id=f"{seed + i:016x}", trace_id=t.trace_id, parent_id=t.spans[0].span_id, name="compose",
                kind="llm", start_time=t.start_time, end_time=t.end_time, input={"facts": {"days": 45}},
                output=t.output,
            )
        )  # fmt: skip
        out.append(t)
    return out


def _score(trace_id: str, verdict: str, *, source: str = "judge", name: str = "refund-window") -> Score:
    failed = verdict == "fail"
    return Score(
        score_id=f"s-{source}-{trace_id[:8]}",
        trace_id=trace_id,
        source=source,  # type: ignore[arg-type]
        name=name,
        verdict=verdict,  # type: ignore[arg-type]
        value=0.0 if failed else 1.0,
        category="ignores refund window" if failed else None,
        reason="It promises a refund past the window." if failed and source == "judge" else (
            "promised me a refund for a 45-day-old order" if failed else ""
        ),
        rule=RULE if source == "judge" else None,
        model="openai/judge" if source == "judge" else None,
        created_at=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture
def judged_store(tmp_path: Path) -> Path:
    """A week of traces judged all passing, then a deploy whose window fails the rule on every fourth."""
    now = datetime.now(UTC).replace(microsecond=0)
    deploy = now - timedelta(minutes=50)
    path = tmp_path / "traces.db"
    with Store(path) as store:
        base = [t for d in range(6, 0, -1) for t in _traces(40, deploy - timedelta(days=d), "a" * 40, 1000 * d)]
        window = _traces(40, deploy + timedelta(minutes=1), "b" * 40, 99)
        store.add_traces(base + window)
        store.add_scores(
            [_score(t.trace_id, "pass") for t in base]
            + [_score(t.trace_id, "fail" if "we will refund" in str(t.output) else "pass") for t in window]
        )
    return path


def test_heal_reads_judged_failures_through_its_trace_source(judged_store: Path) -> None:
    # heal opens the store as a trace source (LocalSource), not as a Store: the judged scan reads through it.
    with open_source(None, db=judged_store) as source:
        flagged = analyze(source).flagged
    assert [f.signature.template for f in flagged] == ["refund-window: ignores refund window"]


def test_the_diagnosis_of_a_judged_failure_starts_from_the_rule_the_verdicts_and_the_span_tree(
    judged_store: Path, tmp_path: Path
) -> None:
    with Store(judged_store) as store:
        finding = analyze(store).flagged[0]
        failing = [store.get_trace(t) for t in finding.example_trace_ids[:2]]
        ctx = judged_context(finding, store, failing, tmp_path)  # type: ignore[arg-type]
    assert ctx is not None and ctx.assertion == RULE and ctx.failure.source == "judge"
    assert ctx.failure.category == "ignores refund window" and ctx.failure.model == "openai/judge"
    assert set(ctx.scores) == {t.trace_id for t in failing}  # type: ignore[union-attr]
    text = judged_text(ctx, failing, render_trace)  # type: ignore[arg-type]
    assert RULE in text and "It promises a refund past the window." in text
    assert "[llm] compose" in text and '"days": 45' in text  # the span tree: LLM inputs and outputs
    assert "prompt and config" in text  # the agent may edit prompts and config, not only code


def test_feedback_becomes_an_assertion_from_its_reason(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    trace = _traces(1, now - timedelta(minutes=5), "c" * 40, 7)[0]
    with Store(tmp_path / "t.db") as store:
        store.add_traces([trace])
        store.add_scores([_score(trace.trace_id, "fail", source="feedback", name="user")])
        finding = judged_finding(store, trace_id=trace.trace_id)
        assert finding is not None and finding.signature.kind == "negative_feedback"
        ctx = judged_context(finding, store, [trace], tmp_path)
    assert ctx is not None and ctx.failure.source == "feedback" and ctx.failure.name == "user"
    assert ctx.assertion == feedback_assertion("promised me a refund for a 45-day-old order", "user")
    assert "promised me a refund for a 45-day-old order" in ctx.assertion
    assert "user" in feedback_assertion(None, "user")  # no reason: still an assertion a judge can check


def test_the_locked_case_asserts_the_rule_and_records_the_judged_failure(judged_store: Path, tmp_path: Path) -> None:
    with Store(judged_store) as store:
        finding = analyze(store).flagged[0]
        trace = store.get_trace(finding.example_trace_ids[0])
        assert trace is not None
        ctx = judged_context(finding, store, [trace], tmp_path)
    assert ctx is not None
    case = case_from_trace(trace, finding=finding, judged=ctx.failure)
    # The rule's assertion, and no "does not raise tracemend.JudgedFailure" check: nothing raised.
    assert case.assertions == [RULE] and case.checks == []
    back = load_case(write_case(case, tmp_path / "regressions"))
    judged = back.provenance.judged
    assert judged is not None and judged.name == "refund-window" and judged.assertion == RULE
    assert judged.score_id == f"s-judge-{trace.trace_id[:8]}" and judged.verdict == "fail"
    assert back.provenance.signature_id == finding.signature.signature_id


def test_an_exception_case_is_unchanged_by_the_judged_path(tmp_path: Path) -> None:
    trace = make_trace(status="error", seed=3)
    case = case_from_trace(trace, assertions=["It answers."])
    assert case.provenance.judged is None
    assert "judged:" not in write_case(case, tmp_path).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("passed", "runs", "low", "high"),
    [(0, 15, 0.0, 0.204), (15, 15, 0.796, 1.0), (5, 10, 0.237, 0.763), (1, 1, 0.207, 1.0)],
)
def test_wilson_interval(passed: int, runs: int, low: float, high: float) -> None:
    lo, hi = wilson(passed, runs)
    assert lo == pytest.approx(low, abs=0.001) and hi == pytest.approx(high, abs=0.001)


def test_pooled_rates_add_the_runs_of_each_input() -> None:
    from tracemend.records import Tally

    total = pooled([Tally(runs=5, passed=0), None, Tally(runs=5, passed=1)])
    assert (total.passed, total.runs) == (1, 10)
    assert wilson(0, 0) == (0.0, 1.0)  # nothing ran: nothing is known


def test_the_passing_sample_leaves_out_traces_the_judge_failed(judged_store: Path, tmp_path: Path) -> None:
    from tracemend.diagnose.judged import judged_passing

    with Store(judged_store) as store:
        finding = analyze(store).flagged[0]
        failing = [store.get_trace(finding.example_trace_ids[0])]
        ctx = judged_context(finding, store, failing, tmp_path)  # type: ignore[arg-type]
        assert ctx is not None
        returned = list(store.iter_traces(status="ok", newest_first=True, limit=12))
        kept = judged_passing(ctx, store, returned)
    failed = {t.trace_id for t in returned if "we will refund" in str(t.output)}
    assert failed and kept  # the newest dozen hold both
    assert {t.trace_id for t in kept} == {t.trace_id for t in returned} - failed
