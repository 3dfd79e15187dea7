"""`tracemend demo --scenario quality` end to end, as a user runs it in a CI log: offline, piped, 80 columns.

A prompt edit makes the example agent promise refunds past the refund window (nothing raises); the online
judge flags it after the deploy; heal diagnoses a prompt edit, verifies it by judged reruns (n per tree) and
locks a case that asserts the rule, which fails before the fix and passes with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tracemend.assertions.case import load_case
from tracemend.demo.quality import CHANGE_MESSAGE, RULE_ASSERTION, RULE_NAME
from tracemend.heal import load_state
from tracemend.store import Store


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "demo", "--dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
    )


def test_quality_demo_heals_a_failure_that_raises_nothing(tmp_path: Path) -> None:
    out = _demo(tmp_path, "--scenario", "quality")
    assert out.returncode == 0, out.stdout + out.stderr
    repo = tmp_path / "repo"
    subjects = subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert subjects[0] == CHANGE_MESSAGE and len(subjects) == 2

    state = load_state(repo)
    assert state is not None and state.outcome == "healed"
    # The finding is a judged failure, not an exception: nothing in the window raised it.
    assert state.finding is not None and state.finding.signature.kind == "judged_failure"
    assert state.finding.exposure == "judged" and state.finding.signature.rule == RULE_NAME
    # The fix is a prompt edit, verified by judged pass rates over several runs per tree.
    assert state.proposal is not None and state.proposal.touched_files == ["support_agent/prompts.py"]
    comparison = state.proposal.comparison
    assert comparison is not None and comparison.verdict == "fixed" and comparison.three_way
    assert comparison.judged_by == RULE_NAME and comparison.runs == 5
    for item in comparison.regression:
        assert item.prior_runs is not None and (item.prior_runs.passed, item.prior_runs.runs) == (5, 5)
        assert item.before_runs is not None and (item.before_runs.passed, item.before_runs.runs) == (0, 5)
        assert item.after_runs is not None and (item.after_runs.passed, item.after_runs.runs) == (5, 5)
    # The locked case asserts the rule; its provenance names the judged failure it came from.
    assert state.case_path is not None
    case = load_case(repo / state.case_path)
    assert case.assertions == [RULE_ASSERTION] and case.checks == []
    judged = case.provenance.judged
    assert judged is not None and judged.source == "judge" and judged.name == RULE_NAME
    assert judged.category == "ignores refund window" and judged.verdict == "fail"
    with Store(tmp_path / "traces.db") as store:
        scores = {s.score_id: s for s in store.scores_of(case.provenance.source_trace_id or "")}
    assert scores[judged.score_id or ""].verdict == "fail"
    assert state.check_before is not None and not state.check_before.passed
    assert state.check_after is not None and state.check_after.passed
    # Judge calls are in heal's cost line, as the model layer counted them (the case runs' judges).
    assert state.calls_by_purpose.get("judge", 0) >= 2
    assert f"judge {state.calls_by_purpose['judge']}" in out.stdout

    text = " ".join(out.stdout.split())
    assert "tracemend demo (offline: model answers are scripted)" in text
    assert "refund-window" in text and "cost " in text and "(scripted model)" in text
    assert "judged pass rate: before change 15/15 (80–100%), at head 0/15 (0–20%), with fix 15/15 (80–100%)" in text
    assert "the case fails before the fix and passes with it" in text
    # Nothing a person copies is cut at 80 columns: the commands at the end are whole lines.
    assert f"cd {repo} && python -m pytest {state.case_path}" in out.stdout


def test_an_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    out = _demo(tmp_path, "--scenario", "latency")
    assert out.returncode == 2
    assert "unknown scenario 'latency'" in out.stdout + out.stderr
    assert not (tmp_path / "repo").exists()
