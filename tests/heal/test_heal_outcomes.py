"""How a heal run ends: healed only when proven, a model failure as one line (exit 3), and --no-input never
blocked by a saved interrupted run. Real git repositories and stores; the stages that would need a model or
a sandbox are given their results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracemend.errors import CouldNotFinish, HealError, ModelError
from tracemend.heal import Healer, HealOptions, HealState, exit_code, load_state, save_state
from tracemend.records import CaseCheck, Finding, Proposal, RegressionCase, Signature
from tracemend.store import Store

from helpers.sandbox_repo import git

STAGES_BEFORE_CHECK = ["analyze", "triage", "diagnose", "approve", "apply", "lock"]


class Quiet:
    def __init__(self) -> None:
        self.done_lines: list[tuple[str, str, bool]] = []

    def start(self, stage: str, what: str) -> None: ...
    def done(self, stage: str, summary: str, ok: bool = True) -> None:
        self.done_lines.append((stage, summary, ok))

    def skip(self, stage: str, why: str) -> None: ...
    def show(self, stage: str, state: object, extra: object = None) -> None: ...


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tests" / "regressions").mkdir(parents=True)
    (root / "README.md").write_text("x\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    Store(root / "traces.db").close()
    return root


FINDING = Finding(
    signature=Signature(signature_id="s1", signature_version=1, exception_types=["KeyError"], template="<*>"),
    baseline_count=0,
    baseline_exposure=10,
    window_count=5,
    window_exposure=10,
    expected=0.1,
    p_value=0.001,
    q_value=0.001,
    verdict="new",
)


def state_at_check(repo: Path) -> HealState:
    case = RegressionCase(name="c", entry_point="m:f")
    (repo / "tests/regressions/c.yaml").write_text("name: c\nentry_point: m:f\n")
    state = HealState(
        repo=str(repo),
        db=str(repo / "traces.db"),
        head=git(repo, "rev-parse", "HEAD").strip(),
        started_at=datetime.now(UTC),
        completed=list(STAGES_BEFORE_CHECK),
        finding=FINDING,
        proposal=Proposal(root_cause="r", diff=""),
        case=case,
        case_path="tests/regressions/c.yaml",
    )
    save_state(state)
    return state


@pytest.mark.parametrize(
    ("before", "after", "outcome"),
    [(False, True, "healed"), (True, True, "unproven"), (False, False, "check_failed")],
)
def test_healed_only_when_the_case_fails_before_and_passes_with_the_fix(
    repo: Path, monkeypatch: pytest.MonkeyPatch, before: bool, after: bool, outcome: str
) -> None:
    import tracemend.sandbox.case_check as case_check

    def checked(*args: object, **kwargs: object) -> tuple[CaseCheck, CaseCheck]:
        return (
            CaseCheck(where="before the fix", passed=before, exit_code=0 if before else 1),
            CaseCheck(where="with the fix", passed=after, exit_code=0 if after else 1),
        )

    monkeypatch.setattr(case_check, "check_before_after", checked)
    state_at_check(repo)
    reporter = Quiet()
    healer = Healer(HealOptions(repo=repo, db=repo / "traces.db", yes=True), reporter)
    state = healer.begin(resume=True, fresh=False)
    state = healer.run(state)
    assert state.outcome == outcome
    assert exit_code(state) == (0 if outcome == "healed" else 1)
    stage, summary, ok = reporter.done_lines[-1]
    assert stage == "check" and ok is (outcome == "healed")
    if outcome == "unproven":
        assert "passes even before the fix" in summary and "does not prove the fix" in state.message


def test_a_model_failure_is_one_line_naming_stage_model_cause_and_what_to_do(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracemend.triage as triage

    def failing(*args: object, **kwargs: object) -> None:
        raise ModelError("openai/gpt-x (triage): InternalServerError (HTTP 500) after 4 attempts: boom")

    monkeypatch.setattr(triage, "triage", failing)
    state = HealState(
        repo=str(repo),
        db=str(repo / "traces.db"),
        head="h",
        started_at=datetime.now(UTC),
        completed=["analyze"],
        finding=FINDING,
    )
    save_state(state)
    healer = Healer(HealOptions(repo=repo, db=repo / "traces.db", model="scripted:unused.yaml"), Quiet())
    with pytest.raises(CouldNotFinish) as caught:
        healer.run(healer.begin(resume=True, fresh=False))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("heal could not finish: triage: openai/gpt-x (triage): InternalServerError")
    assert "try again later" in message and "tracemend heal --resume" in message
    saved = load_state(repo)
    assert saved is not None and saved.outcome is None and saved.completed == ["analyze"]


def test_no_input_never_waits_on_a_saved_interrupted_run(repo: Path) -> None:
    interrupted = HealState(
        repo=str(repo), db=str(repo / "traces.db"), head="h", started_at=datetime.now(UTC), completed=["analyze"]
    )
    save_state(interrupted)
    options = HealOptions(repo=repo, db=repo / "traces.db")
    with pytest.raises(HealError, match="--resume"):
        Healer(options, Quiet()).begin(resume=False, fresh=False)
    ci = Healer(HealOptions(repo=repo, db=repo / "traces.db", no_input=True), Quiet())
    fresh = ci.begin(resume=False, fresh=False)
    assert fresh.completed == [] and ci.discarded is not None and ci.discarded.completed == ["analyze"]
    # Resuming still works when asked for.
    resumed = Healer(HealOptions(repo=repo, db=repo / "traces.db", no_input=True), Quiet())
    assert resumed.begin(resume=True, fresh=False).completed == ["analyze"]
    # A state this version cannot read does not block CI either.
    (repo / ".tracemend/heal/state.json").write_text("{not json")
    assert Healer(HealOptions(repo=repo, db=repo / "traces.db", no_input=True), Quiet()).begin(
        resume=False, fresh=False
    ).completed == []
