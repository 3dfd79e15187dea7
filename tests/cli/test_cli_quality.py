"""`evaluate`, `feedback`, and scores in `show`, `traces`, `signatures` and `analyze`, run as a user runs them:
the installed CLI in a subprocess, in a project with rules in its pyproject.toml and a scripted judge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from tracemend.store import Store

from helpers.quality import DEPLOY, RULE, traffic

SCRIPT = """\
answers:
  - match: {purpose: judge, contains: "is approved"}
    response:
      content: '{"reasoning": "It approves a refund past 30 days.", "verdict": "FAIL", "category": "ignores refund window"}'
  - match: {purpose: judge}
    response:
      content: '{"reasoning": "It keeps to the window.", "verdict": "PASS", "category": ""}'
"""


def tm(project: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMEND_")}
    env.update(COLUMNS=str(columns), TRACEMEND_DB=str(project / ".tracemend" / "traces.db"))
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        timeout=120,
    )


def make_project(root: Path) -> Path:
    (root / "judge.yaml").write_text(SCRIPT)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "shop"

            [tool.tracemend]
            judge_model = "scripted:judge.yaml"

            [[tool.tracemend.rules]]
            name = "refund-window"
            assertion = "{RULE}"
            entry_points = ["support.agent:*"]
            max_calls_per_day = 50
            """
        )
    )
    with Store(root / ".tracemend" / "traces.db") as store:
        store.add_traces(traffic(bad_before=0.05, bad_after=0.6, hours=24, per_hour=30, seed=9))
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("shop"))


def test_watch_evaluates_the_window_as_it_goes(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    # The baseline was judged before (a cron job, say); watch judges the window's traces at each look.
    tm(root, "evaluate", "--since", (DEPLOY - timedelta(hours=24)).isoformat(), "--until", DEPLOY.isoformat())
    out = tm(root, "watch", "--baseline", "24h", "--evaluate", "--interval", "1m")
    assert out.returncode == 1, out.stderr
    judged = next(line for line in out.stdout.splitlines() if line.startswith("judged "))
    with Store(root / ".tracemend" / "traces.db") as store:
        window = store.count(since=DEPLOY)
        assert (
            len(
                {s.trace_id for s in store.iter_scores(source="judge")}
                & {t.trace_id for t in store.iter_traces(since=DEPLOY)}
            )
            == window
        )
    assert judged.startswith(f"judged {window} new trace(s)") and "model calls" in judged
    assert "flagged" in out.stdout


def test_evaluate_judges_reports_and_spends_within_budget(project: Path) -> None:
    since = (DEPLOY - timedelta(hours=24)).isoformat()
    out = tm(project, "evaluate", "--since", since)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("refund-window ") and "judged" in line for line in lines)
    assert any("failed" in line and "× ignores refund window" in line for line in lines)
    cost = [line for line in lines if line.startswith("cost ")]
    assert cost and "model calls" in cost[0] and "(scripted model)" in cost[0] and "today (UTC)" in cost[0]
    assert all(len(line) <= 120 for line in lines)
    with Store(project / ".tracemend" / "traces.db") as store:
        scores = list(store.iter_scores(source="judge"))
        (today,) = store.judge_usage(rule="refund-window")
    assert scores and today.model_calls <= 50 and today.judged == len(scores)

    again = tm(project, "evaluate", "--since", since, "--json")
    report = json.loads(again.stdout)
    assert report["rules"][0]["rule"] == "refund-window" and report["rules"][0]["judged_traces"] == 0
    assert report["rules"][0]["today"]["model_calls"] == today.model_calls

    unknown = tm(project, "evaluate", "--rule", "nope")
    assert unknown.returncode == 2 and "no judging rule named 'nope'" in unknown.stderr


def test_judged_failures_in_traces_show_signatures_and_analyze(project: Path) -> None:
    tm(project, "evaluate", "--since", (DEPLOY - timedelta(hours=24)).isoformat())
    failing = tm(project, "traces", "--score", "refund-window=fail", "--limit", "500", "--json")
    assert failing.returncode == 0, failing.stderr
    rows = [json.loads(line) for line in failing.stdout.splitlines()]
    assert rows and all("is approved" in r["output"] for r in rows)

    shown = tm(project, "show", rows[0]["trace_id"][:12])
    assert "scores" in shown.stdout and "fail    judge refund-window: ignores refund window" in shown.stdout
    assert "It approves a refund past 30 days." in shown.stdout
    as_json = json.loads(tm(project, "show", rows[0]["trace_id"], "--json").stdout)
    assert as_json["trace_id"] == rows[0]["trace_id"] and as_json["scores"][0]["verdict"] == "fail"

    listed = tm(project, "signatures", "--json")
    judged = [json.loads(x) for x in listed.stdout.splitlines() if '"judged_failure"' in x]
    assert len(judged) == 1 and judged[0]["count"] == len(rows) and judged[0]["judged"] > len(rows)

    analysis = tm(project, "analyze", "--baseline", "24h", "--json")
    assert analysis.returncode == 1, analysis.stderr
    findings = json.loads(analysis.stdout)["findings"]
    flagged = [f for f in findings if f["verdict"] != "noise"]
    assert [f["signature"]["template"] for f in flagged] == ["refund-window: ignores refund window"]
    assert flagged[0]["exposure"] == "judged" and flagged[0]["signature"]["kind"] == "judged_failure"
    # (At 80 columns today's table drops its template column: the issue-14 rendering work fixes that.)
    table = tm(project, "analyze", "--baseline", "24h", columns=200)
    assert "judged" in table.stdout and "JudgedFailure" in table.stdout


def test_feedback_from_the_terminal(project: Path) -> None:
    trace_id = json.loads(tm(project, "traces", "--limit", "1", "--json").stdout)["trace_id"]
    out = tm(
        project,
        "feedback",
        trace_id[:10],
        "--bad",
        "--reason",
        "promised a refund",
        "--category",
        "Wrong promise",
    )
    assert out.returncode == 0, out.stderr
    assert f"recorded negative feedback 'user' (0) on trace {trace_id}" in out.stdout
    good = tm(project, "feedback", trace_id, "--score", "0.9", "--name", "csat")
    assert good.returncode == 0 and "positive feedback 'csat' (0.9)" in good.stdout
    shown = tm(project, "show", trace_id)
    assert "feedback user (0): Wrong promise" in shown.stdout and "promised a refund" in shown.stdout
    by_score = tm(project, "traces", "--score", "user=fail", "--json")
    assert [json.loads(x)["trace_id"] for x in by_score.stdout.splitlines()] == [trace_id]
    assert tm(project, "feedback", trace_id).returncode == 2
    assert tm(project, "feedback", trace_id, "--bad", "--good").returncode == 2
    missing = tm(project, "feedback", "f" * 32, "--bad")
    assert missing.returncode == 2 and "no trace with id" in missing.stderr
    assert tm(project, "traces", "--score", "user=maybe").returncode == 2
