"""`tracemend analyze`, `watch`, `signatures`: exit codes and output, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracemend.cli import build_app
from tracemend.store import Store

from helpers.traffic import NEW, deploy_time, traffic

DEPLOY = deploy_time()


def _store(path: Path, regression_rate: float, seed: int) -> Path:
    with Store(path) as store:
        store.add_traces(traffic(deploy=DEPLOY, per_hour=30, regression_rate=regression_rate, seed=seed))
    return path


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-analyze")
    return {"bad": _store(root / "bad.db", 0.15, 21), "good": _store(root / "good.db", 0.0, 22)}


def _run(*args: str):
    return CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "200"})


def test_analyze_exit_1_on_regression_with_table(dbs: dict[str, Path]) -> None:
    result = _run("analyze", "--db", str(dbs["bad"]))
    assert result.exit_code == 1, result.output
    assert "new" in result.output and "KeyError" in result.output
    assert "flagged" in result.output and NEW[:10] in result.output


def test_analyze_exit_0_on_clean(dbs: dict[str, Path]) -> None:
    result = _run("analyze", "--db", str(dbs["good"]))
    assert result.exit_code == 0, result.output
    assert "Nothing flagged" in result.output or "No failing traces" in result.output


def test_analyze_json(dbs: dict[str, Path]) -> None:
    result = _run("analyze", "--db", str(dbs["bad"]), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    verdicts = [f["verdict"] for f in data["findings"]]
    assert "new" in verdicts
    flagged = [f for f in data["findings"] if f["verdict"] != "noise"]
    assert flagged[0]["signature"]["exception_types"] == ["KeyError"]
    assert flagged[0]["q_value"] <= data["alpha"]


@pytest.mark.parametrize(
    "args",
    [
        ["--window", "soon"],
        ["--baseline", "7x"],
        ["--since", "not-a-time"],
        ["--revision", "ffffffff"],
        ["--since", "2000-01-01T00:00:00", "--baseline", "1h"],
    ],
)
def test_analyze_usage_errors_exit_2(dbs: dict[str, Path], args: list[str]) -> None:
    result = _run("analyze", "--db", str(dbs["good"]), *args)
    if args[:2] == ["--since", "2000-01-01T00:00:00"]:
        # A valid but empty period is not a usage error: nothing to report.
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output


def test_analyze_missing_store_exit_2(tmp_path: Path) -> None:
    result = _run("analyze", "--db", str(tmp_path / "absent.db"))
    assert result.exit_code == 2


def test_watch_stops_on_flag_and_runs_out_cleanly(dbs: dict[str, Path]) -> None:
    bad = _run("watch", "--db", str(dbs["bad"]), "--interval", "1s", "--max-wait", "1s")
    assert bad.exit_code == 1, bad.output
    assert "look 1/1" in bad.output and "flagged" in bad.output
    good = _run("watch", "--db", str(dbs["good"]), "--interval", "1s", "--max-wait", "1s")
    assert good.exit_code == 0, good.output
    assert "nothing flagged" in good.output.lower()


def test_watch_polls_a_running_window(tmp_path: Path) -> None:
    """A deploy that started seconds ago: watch looks, waits, looks again, then stops at --max-wait."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    db = tmp_path / "live.db"
    deploy = now - timedelta(seconds=5)
    with Store(db) as store:
        store.add_traces(traffic(deploy=deploy, per_hour=30, window_minutes=0, seed=23))
        # A few traces of the new revision, all at the deploy instant, mark the deploy.
        new = traffic(deploy=deploy, per_hour=600, baseline_hours=0, window_minutes=1, seed=24)
        store.add_traces(t.model_copy(update={"start_time": deploy}) for t in new)
    result = _run("watch", "--db", str(db), "--interval", "1s", "--max-wait", "2.5s", "--window", "60m")
    assert result.exit_code == 0, result.output
    assert result.output.count("look ") >= 2
    assert "--max-wait" in result.output


def test_signatures_lists_counts_and_revisions(dbs: dict[str, Path]) -> None:
    result = _run("signatures", "--db", str(dbs["bad"]))
    assert result.exit_code == 0, result.output
    assert "KeyError" in result.output and "first revision" in result.output
    as_json = _run("signatures", "--db", str(dbs["bad"]), "--json")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    key_errors = [r for r in rows if r["signature"]["exception_types"] == ["KeyError"]]
    assert key_errors and key_errors[0]["first_revision"] == NEW


def test_real_subprocess_exit_code(dbs: dict[str, Path]) -> None:
    env = dict(os.environ, COLUMNS="160")
    proc = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "analyze", "--db", str(dbs["bad"])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "KeyError" in proc.stdout


def test_canary_without_a_control_is_a_usage_error(dbs: dict[str, Path]) -> None:
    result = _run("analyze", "--db", str(dbs["bad"]), "--canary")
    assert result.exit_code == 2
    assert "both" in result.output
