"""`tracemend heal`: the whole loop for the newest deploy, one stage after another, resumable.

    analyze → triage → diagnose (sandbox-verified) → approve → apply → lock → check

Orchestration only: each stage calls the package that does the work and keeps the record it returns
(Finding, TriageVerdict, Diagnosis, Proposal, RegressionCase, CaseCheck) in the run's state
(``state``), saved after every stage so that an interrupted run continues where it stopped
(``--resume``). ``healer`` runs the stages.

Exit codes: 0 nothing to heal, or healed and proven (fix applied, the new case failing before it and
passing with it); 1 a flagged finding was left unhealed (not attributed to the change, roll back advised,
no fix, not verified, rejected, ``--no-input``, a case that proves nothing); 2 usage errors; 3 a model or
the infrastructure failed, so the run could not finish (``outcome`` module).
"""

from __future__ import annotations

from tracemend.errors import HealError
from tracemend.heal.healer import Healer, HealOptions, Reporter, describe
from tracemend.heal.outcome import could_not_finish, exit_code, sandbox_summary, summary
from tracemend.heal.state import STAGES, HealOutcome, HealState, load_state, run_dir, save_state, state_path

__all__ = [
    "STAGES",
    "HealError",
    "HealOptions",
    "HealOutcome",
    "HealState",
    "Healer",
    "Reporter",
    "could_not_finish",
    "describe",
    "exit_code",
    "load_state",
    "run_dir",
    "sandbox_summary",
    "save_state",
    "state_path",
    "summary",
]
