"""`tracemend heal`: the whole loop for the newest deploy, one stage after another, resumable.

    analyze → triage → diagnose (sandbox-verified) → approve → apply → lock → check

Orchestration only: each stage calls the package that does the work and keeps the record it returns
(Finding, TriageVerdict, Diagnosis, Proposal, RegressionCase, CaseCheck) in the run's state
(``state``), saved after every stage so that an interrupted run continues where it stopped
(``--resume``). ``healer`` runs the stages.

Exit codes: 0 nothing to heal, or healed (fix applied, case locked and passing); 1 a flagged finding was
left unhealed (not attributed to the change, roll back advised, no fix, not verified, rejected,
``--no-input``); 2 usage errors.
"""

from __future__ import annotations

from tracemend.errors import HealError
from tracemend.heal.healer import Healer, HealOptions, Reporter, describe, exit_code, summary
from tracemend.heal.state import STAGES, HealOutcome, HealState, load_state, save_state, state_path

__all__ = [
    "STAGES",
    "HealError",
    "HealOptions",
    "HealOutcome",
    "HealState",
    "Healer",
    "Reporter",
    "describe",
    "exit_code",
    "load_state",
    "save_state",
    "state_path",
    "summary",
]
