"""`tracemend heal` end to end on real scenarios: a git repository holding the example agent, a week of
real (backdated) traffic, a deploy, and the scripted model (offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracemend.demo import Scenario, prepare
from tracemend.heal import Healer, HealOptions, load_state


def heal(world: Scenario, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    env.pop("TRACEMEND_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "heal", "--db", str(world.db), *args],
        cwd=world.repo,  # the model comes from the repository's [tool.tracemend]
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def world(tmp_path: Path) -> Scenario:
    return prepare(tmp_path, per_hour=40, seed=7)


def test_no_input_proposes_but_changes_nothing(world: Scenario) -> None:
    head = git(world.repo, "rev-parse", "HEAD")
    out = heal(world, "--no-input")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "LEGACY_REGIONS" in out.stdout  # the proposed diff is shown
    assert "not_approved" in out.stdout and "--no-input" in out.stdout
    assert git(world.repo, "status", "--porcelain") == ""
    assert git(world.repo, "rev-parse", "HEAD") == head
    state = load_state(world.repo)
    assert state is not None and state.outcome == "not_approved"
    assert state.finding is not None and state.finding.verdict in ("new", "regression")
    assert state.finding.signature.exception_types == ["KeyError"]
    assert state.proposal is not None and state.proposal.comparison is not None
    assert state.proposal.comparison.verdict == "fixed" and state.scripted


def test_without_a_terminal_or_flag_it_never_waits(world: Scenario) -> None:
    out = heal(world, timeout=120)
    assert out.returncode == 1
    assert "no terminal" in out.stdout
    assert git(world.repo, "status", "--porcelain") == ""


def test_yes_with_branch_commits_fix_and_case_and_leaves_checkout_alone(world: Scenario) -> None:
    out = heal(world, "--yes", "--branch", "tracemend/fix-uk-refunds", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["outcome"] == "healed" and summary["exit_code"] == 0
    assert summary["check_before"]["passed"] is False  # the case catches the regression…
    assert summary["check_after"]["passed"] is True  # …and passes with the fix
    assert git(world.repo, "status", "--porcelain") == ""
    assert git(world.repo, "branch", "--show-current").strip() == "main"
    files = git(world.repo, "show", "--name-only", "--format=", "tracemend/fix-uk-refunds").split()
    case_path = summary["case_path"]
    assert "support_agent/tools.py" in files and case_path in files
    message = git(world.repo, "log", "-1", "--format=%B", "tracemend/fix-uk-refunds")
    assert summary["finding"]["signature"]["signature_id"] in message


def test_yes_in_working_tree_then_plain_pytest_passes(world: Scenario) -> None:
    out = heal(world, "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    state = load_state(world.repo)
    assert state is not None and state.outcome == "healed" and state.case_path
    assert "LEGACY_REGIONS" in git(world.repo, "diff")
    # The locked case runs under plain pytest in the user's repository (judge: the scripted model).
    run = subprocess.run(
        [sys.executable, "-m", "pytest", state.case_path, "-q", "-p", "no:cacheprovider"],
        cwd=world.repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(world.repo)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "scripted" in run.stdout


def test_clean_deploy_heals_nothing_and_calls_no_model(tmp_path: Path) -> None:
    world = prepare(tmp_path, per_hour=40, seed=11, regression=False)
    out = heal(world, "--no-input", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["outcome"] == "clean" and summary["model_calls"] == 0


class _StopAt:
    """A reporter that interrupts the run when a stage starts, as Ctrl-C would."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def start(self, stage: str, what: str) -> None:
        if stage == self.stage:
            raise KeyboardInterrupt

    def done(self, stage: str, summary: str, ok: bool = True) -> None: ...
    def skip(self, stage: str, why: str) -> None: ...
    def show(self, stage: str, state: object, extra: object = None) -> None: ...


def test_an_interrupted_run_resumes_where_it_stopped(world: Scenario) -> None:
    healer = Healer(HealOptions(repo=world.repo, db=world.db, model=world.model, yes=True), _StopAt("diagnose"))
    state = healer.begin(resume=False, fresh=False)
    with pytest.raises(KeyboardInterrupt):
        healer.run(state)
    saved = load_state(world.repo)
    assert saved is not None and saved.completed == ["analyze", "triage"] and saved.outcome is None

    refused = heal(world, "--yes")
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = heal(world, "--yes", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1/7 analyze  skipped: done in the saved run" in resumed.stdout
    assert "2/7 triage  skipped" in resumed.stdout
    final = load_state(world.repo)
    assert final is not None and final.outcome == "healed"
    assert final.completed == ["analyze", "triage", "diagnose", "approve", "apply", "lock", "check"]


def test_usage_errors_exit_2(tmp_path: Path, world: Scenario) -> None:
    not_repo = tmp_path / "plain"
    not_repo.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "heal", "--db", str(world.db), "--repo", str(not_repo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    both = heal(world, "--yes", "--no-input")
    assert both.returncode == 2 and "exclude" in both.stderr
    missing = heal(world, "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "No trace store" in missing.stderr
