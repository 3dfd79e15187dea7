"""The baseline rate is over the hours that had traffic, and there is no "expected" without a baseline."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracemend.analyze import AnalyzeError, analyze
from tracemend.cli import build_app
from tracemend.store import Store

from helpers.traffic import deploy_time, traffic


def test_a_store_that_starts_an_hour_before_the_deploy_has_a_one_hour_baseline(tmp_path: Path) -> None:
    deploy = deploy_time()
    with Store(tmp_path / "t.db") as store:
        store.add_traces(traffic(deploy=deploy, baseline_hours=1, per_hour=600, failure_rate=0.05, seed=3))
        result = analyze(store, now=deploy + _hour())
    assert result.baseline_hours <= 2  # the hour of traffic (cut by the deploy's first trace), not 168
    assert result.to_json()["baseline_hours"] == result.baseline_hours
    # The same failure rate before and after the deploy: nothing is flagged, and what is expected in the
    # window is about what the one baseline hour had (not a 168th of it).
    assert result.flagged == []
    for finding in result.findings:
        assert finding.expected >= 0.5 * finding.baseline_count * result.window_traces / result.baseline_traces


def _hour() -> timedelta:
    return timedelta(hours=1)


def test_without_any_baseline_traffic_there_is_no_expected_count(tmp_path: Path) -> None:
    deploy = deploy_time()
    with Store(tmp_path / "t.db") as store:
        store.add_traces(traffic(deploy=deploy, baseline_hours=0, per_hour=600, failure_rate=0.05, seed=4))
        with pytest.raises(AnalyzeError, match="No traces in the baseline") as caught:
            analyze(store, now=deploy + _hour())
    assert "expected" not in str(caught.value)
    out = CliRunner().invoke(build_app(), ["analyze", "--db", str(tmp_path / "t.db")])
    assert out.exit_code == 2 and "nothing to compare the window with" in out.output
