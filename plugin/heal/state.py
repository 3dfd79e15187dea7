"""The state of one heal run, saved after every stage in ``<repo>/.tracemend/heal/state.json`` (the run's
other files — its model-call log, the stores its case runs record into — are in ``.tracemend/heal/run/``).

It holds the records the stages produced (Finding, TriageVerdict, Diagnosis, the approved Proposal,
RegressionCase, the case's checks), so a resumed run (``--resume``) continues from them without redoing
or reloading anything.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tracemend.errors import HealError
from tracemend.records import CaseCheck, Diagnosis, Finding, Proposal, RegressionCase, TriageVerdict

STAGES = ("analyze", "triage", "diagnose", "approve", "apply", "lock", "check")
# 2: the Diagnosis (with the traces it worked from) is saved. 3: three-way verification, the approval,
# model calls by purpose.
STATE_VERSION = 3
# "unproven": the fix is applied and the case passes with it, but the case passes without it too.
HealOutcome = Literal[
    "clean",
    "healed",
    "not_caused",
    "roll_back",
    "ignored",
    "no_fix",
    "not_approved",
    "check_failed",
    "unproven",
    "cannot_rerun",
]


class HealState(BaseModel):
    version: int = STATE_VERSION
    repo: str
    db: str
    head: str
    started_at: datetime
    completed: list[str] = Field(default_factory=list)
    deploy_revision: str | None = None
    deploy_time: datetime | None = None
    flagged: int = 0
    finding: Finding | None = None
    triage: TriageVerdict | None = None
    diagnosis: Diagnosis | None = None
    # The proposal as approved: the diagnosis's, or as the person edited it.
    proposal: Proposal | None = None
    decision: str | None = None
    # Who approved: "approved by a person" or "approved with --yes (sandbox verdict: fixed)".
    approved_by: str | None = None
    applied: dict[str, Any] | None = None
    case: RegressionCase | None = None
    case_path: str | None = None
    check_before: CaseCheck | None = None
    check_after: CaseCheck | None = None
    # Every request sent to a model by the run and the processes it started (retries included).
    model_calls: int = 0
    failed_calls: int = 0
    calls_by_purpose: dict[str, int] = Field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    scripted: bool = False
    outcome: HealOutcome | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def finish(self, outcome: HealOutcome, message: str) -> None:
        self.outcome = outcome
        self.message = message


def state_path(repo: Path) -> Path:
    return repo / ".tracemend" / "heal" / "state.json"


def run_dir(repo: Path) -> Path:
    """The current run's folder: its model-call log and the stores of its case runs (never the
    production store)."""
    return repo / ".tracemend" / "heal" / "run"


def load_state(repo: Path) -> HealState | None:
    path = state_path(repo)
    if not path.exists():
        return None
    try:
        state = HealState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HealError(
            f"{path} is not a heal state ({str(exc).splitlines()[0]}); remove it or pass --fresh"
        ) from None
    if state.version != STATE_VERSION and not state.finished:
        raise HealError(f"{path} was saved by another version of tracemend; pass --fresh to start over")
    return state


def save_state(state: HealState) -> None:
    path = state_path(Path(state.repo))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: an interrupted save never leaves half a state
