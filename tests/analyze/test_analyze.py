"""End to end over a real SQLite store filled with backdated traces: regressions flagged, clean deploys not."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from tracemend.analyze import AnalyzeError, analyze, find_deploy, list_signatures, planned_looks
from tracemend.analyze.findings import EXAMPLES
from tracemend.records import CodeVersion, Trace
from tracemend.store import Store

from helpers.traffic import FAILURES, NEW, OLD, deploy_time, make_failure, traffic

DEPLOY = deploy_time()
LATER = DEPLOY + timedelta(hours=3)


@pytest.fixture
def regressed(tmp_path: Path) -> Store:
    store = Store(tmp_path / "regressed.db")
    store.add_traces(traffic(deploy=DEPLOY, regression_rate=0.1, seed=11))
    yield store
    store.close()


@pytest.fixture
def clean(tmp_path: Path) -> Store:
    store = Store(tmp_path / "clean.db")
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.05, seed=12))
    yield store
    store.close()


def test_regression_is_flagged_with_its_evidence(regressed: Store) -> None:
    result = analyze(regressed, now=LATER)
    first_new = next(regressed.iter_traces(revision=NEW, limit=1)).start_time
    assert result.deploy_time == first_new
    assert abs((result.deploy_time - DEPLOY).total_seconds()) < 120
    assert result.revision == NEW and result.complete
    assert result.baseline_start == result.deploy_time - timedelta(days=7)
    assert result.window_traces == regressed.count(since=result.deploy_time, until=result.window_end)
    flagged = result.flagged
    assert len(flagged) == 1
    finding = flagged[0]
    assert finding.verdict == "new"
    assert finding.signature.exception_types == ["KeyError"]
    assert finding.signature.frame == "agent.tools:refund_policy"
    assert finding.baseline_count == 0 and finding.window_count >= 3
    assert finding.q_value <= result.alpha and finding.p_value <= finding.q_value
    assert finding.first_revision == NEW
    assert len(finding.example_trace_ids) == min(EXAMPLES, finding.window_count)
    for trace_id in finding.example_trace_ids:
        trace = regressed.get_trace(trace_id)
        assert trace is not None and trace.error is not None and trace.error.type == "KeyError"
    assert sum(finding.hourly_counts) == finding.window_count
    assert len(finding.hourly_counts) == 168 + 1
    # The recurring failures are listed but judged noise.
    assert all(f.verdict == "noise" for f in result.findings if f is not finding)


def test_clean_deploy_is_not_flagged(clean: Store) -> None:
    result = analyze(clean, now=LATER)
    assert result.findings, "the window has failures"
    assert not result.flagged
    for finding in result.findings:
        assert finding.baseline_count > 0
        assert finding.first_revision == OLD
        assert finding.expected > 0


def test_rate_regression_of_an_existing_signature(tmp_path: Path) -> None:
    store = Store(tmp_path / "rate.db")
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.03, seed=13))
    rng = random.Random(5)
    spec = FAILURES[2]  # JSON decode errors: about 0.6 per hour before the deploy
    extra = [make_failure(rng, spec, DEPLOY + timedelta(minutes=rng.uniform(0, 59)), NEW) for _ in range(12)]
    store.add_traces(extra)
    result = analyze(store, now=LATER)
    flagged = result.flagged
    assert [f.signature.exception_types for f in flagged] == [["json.decoder.JSONDecodeError"]]
    assert flagged[0].verdict == "regression"
    assert flagged[0].window_count > 4 * flagged[0].expected
    assert flagged[0].first_revision == OLD  # it existed before this deploy


def test_traffic_spike_is_not_a_regression(tmp_path: Path) -> None:
    store = Store(tmp_path / "spike.db")
    store.add_traces(traffic(deploy=DEPLOY, per_hour=60, failure_rate=0.05, window_minutes=0, seed=14))
    # The window has four times the usual traffic, with the usual failure rate.
    store.add_traces(
        traffic(deploy=DEPLOY, per_hour=240, failure_rate=0.05, baseline_hours=0, window_minutes=60, seed=15)
    )
    result = analyze(store, now=LATER)
    assert result.window_traces > 3 * result.baseline_traces / 168
    assert result.findings and not result.flagged


def test_since_and_revision_select_the_deploy(regressed: Store) -> None:
    rev, first = find_deploy(regressed)
    assert rev == NEW
    assert find_deploy(regressed, OLD[:7])[0] == OLD
    by_rev = analyze(regressed, revision=NEW[:8], now=LATER)
    assert by_rev.deploy_time == first
    early = analyze(regressed, since=DEPLOY - timedelta(days=2), now=LATER)
    assert early.deploy_time == DEPLOY - timedelta(days=2)
    assert not early.flagged  # that "deploy" changed nothing
    with pytest.raises(AnalyzeError, match="No traces recorded"):
        analyze(regressed, revision="ffff", now=LATER)


def test_partial_window_while_it_runs(regressed: Store) -> None:
    rev, first = find_deploy(regressed)
    result = analyze(regressed, now=first + timedelta(minutes=30))
    assert not result.complete
    assert timedelta(minutes=29) < result.window_elapsed <= timedelta(minutes=30)
    assert result.window_traces == regressed.count(since=first, until=first + timedelta(minutes=30))
    assert (
        planned_looks(
            regressed,
            window=timedelta(minutes=60),
            interval=timedelta(minutes=5),
            now=first + timedelta(minutes=30),
        )
        == 6
    )
    assert (
        planned_looks(regressed, window=timedelta(minutes=60), interval=timedelta(minutes=5), now=LATER) == 1
    )
    with pytest.raises(AnalyzeError, match="has not begun"):
        analyze(regressed, now=first - timedelta(minutes=1))


def test_no_code_version_needs_since(tmp_path: Path) -> None:
    store = Store(tmp_path / "nover.db")
    trace = next(iter(traffic(deploy=DEPLOY, per_hour=1, baseline_hours=1)))
    store.add_traces([trace.model_copy(update={"code_version": CodeVersion()})])
    with pytest.raises(AnalyzeError, match="--since"):
        analyze(store, now=LATER)


def test_first_revision_looks_back_across_deploys(tmp_path: Path) -> None:
    store = Store(tmp_path / "lookback.db")
    rng = random.Random(3)
    ancient = "0" * 40
    # The signature first appeared two deploys ago, long before this baseline.
    store.add_traces([make_failure(rng, FAILURES[1], DEPLOY - timedelta(days=20), ancient)])
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.05, seed=16))
    store.add_traces([make_failure(rng, FAILURES[1], DEPLOY + timedelta(minutes=10), NEW)])
    result = analyze(store, now=LATER)
    timeouts = [f for f in result.findings if f.signature.exception_types == ["httpx.ReadTimeout"]]
    assert len(timeouts) == 1
    assert timeouts[0].first_revision == ancient
    rows = {tuple(r.signature.exception_types): r for r in list_signatures(store)}
    assert rows[("httpx.ReadTimeout",)].first_revision == ancient
    assert rows[("httpx.ReadTimeout",)].first_seen == DEPLOY - timedelta(days=20)


def test_distinct_traces_not_events_and_word_slots_merge(tmp_path: Path) -> None:
    store = Store(tmp_path / "merge.db")
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.0, seed=17))
    rng = random.Random(9)
    tools = ["search_web", "lookup_order", "get_weather", "send_email", "refund"]
    failures = []
    for i, tool in enumerate(tools * 2):
        t = make_failure(
            rng,
            (
                "agent.ToolError",
                lambda r, tool=tool: f"unknown tool {tool} requested",
                "agent.tools",
                "dispatch",
            ),
            DEPLOY + timedelta(minutes=5 + i),
            NEW,
        )
        failures.append(t)
    store.add_traces(failures)
    result = analyze(store, now=LATER)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.signature.template == "unknown tool <*> requested"
    assert finding.window_count == 10 and finding.verdict == "new"
    unmerged = analyze(store, now=LATER, merge=False)
    assert len(unmerged.findings) == 5


def test_failed_assertions_and_error_statuses_are_analyzed(tmp_path: Path) -> None:
    store = Store(tmp_path / "status.db")
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.0, seed=18))
    rng = random.Random(2)
    extra = []
    for i in range(6):
        start = DEPLOY + timedelta(minutes=3 + 7 * i)
        extra.append(
            Trace(
                trace_id=f"{rng.getrandbits(128):032x}",
                entry_point="agent.main:run",
                name="run",
                status="failed_assertion",
                start_time=start,
                code_version=CodeVersion(commit=NEW),
                metadata={"assertion": f"reply mentions order {1000 + i}"},
            )
        )
    store.add_traces(extra)
    result = analyze(store, now=LATER)
    assert [f.signature.kind for f in result.flagged] == ["failed_assertion"]
    assert result.flagged[0].signature.template == "reply mentions order <*>"


def test_json_shape(regressed: Store) -> None:
    data = analyze(regressed, now=LATER).to_json()
    assert data["revision"] == NEW
    assert {"verdict", "p_value", "q_value", "expected", "hourly_counts"} <= set(data["findings"][0])


def test_store_reads_for_the_analyzer(regressed: Store) -> None:
    start = DEPLOY - timedelta(hours=5)
    hourly = regressed.count_bins(since=start, until=DEPLOY, bin_seconds=3600)
    assert len(hourly) == 5
    assert hourly == [
        regressed.count(since=start + timedelta(hours=h), until=start + timedelta(hours=h + 1))
        for h in range(5)
    ]
    # Many small bins take the GROUP BY path; both paths agree.
    fine = regressed.count_bins(since=start, until=DEPLOY, bin_seconds=5)
    assert len(fine) == 3600 and sum(fine) == sum(hourly)
    revisions = regressed.first_trace_by_revision()
    assert [r for r, _ in revisions] == [OLD, NEW]
    assert revisions[1][1] == next(regressed.iter_traces(revision=NEW, limit=1)).start_time
    failures = list(regressed.iter_failures(since=DEPLOY))
    assert failures and all(row[2] in ("error", "failed_assertion") for row in failures)
    assert [row[1] for row in failures] == sorted(row[1] for row in failures)
    assert all(row[5] is not None and row[6] is None for row in failures)


def test_canary_mode_separates_the_deploy_from_an_outage(tmp_path: Path) -> None:
    """Old and new revisions share the window; an outage hits both, a bug only the new one."""
    store = Store(tmp_path / "canary.db")
    store.add_traces(traffic(deploy=DEPLOY, failure_rate=0.03, window_minutes=0, seed=31))
    rng = random.Random(8)
    window = []
    for i in range(240):
        start = DEPLOY + timedelta(seconds=15 * i + 1)
        commit = NEW if i % 4 == 0 else OLD  # the canary serves a quarter of the traffic
        trace = next(
            iter(traffic(deploy=start, per_hour=60, baseline_hours=0, window_minutes=1, seed=1000 + i))
        )
        window.append(
            trace.model_copy(update={"start_time": start, "code_version": CodeVersion(commit=commit)})
        )
        if i % 3 == 0:  # a dependency outage: JSON errors on every revision, ~25x the usual rate
            window.append(make_failure(rng, FAILURES[2], start, commit))
        if commit == NEW and i % 8 == 0:  # the deploy's own bug
            window.append(
                make_failure(rng, ("KeyError", lambda r: "'uk'", "agent.tools", "refund_policy"), start, NEW)
            )
    store.add_traces(window)
    # The first NEW trace marks the deploy; both revisions keep serving.
    plain = analyze(store, now=LATER)
    assert {f.signature.exception_types[0] for f in plain.flagged} == {
        "json.decoder.JSONDecodeError",
        "KeyError",
    }
    result = analyze(store, now=LATER, canary=True)
    flagged = {f.signature.exception_types[0]: f for f in result.flagged}
    assert set(flagged) == {"KeyError"}
    outage = next(
        f for f in result.findings if f.signature.exception_types[0] == "json.decoder.JSONDecodeError"
    )
    assert outage.verdict == "noise" and outage.window_count >= 70
    with pytest.raises(AnalyzeError, match="both"):
        analyze(store, now=LATER, canary=True, revision=OLD)
