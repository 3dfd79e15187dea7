"""How a heal run ended, for people and for machines: the exit code, the summary as data, and the one line
that says why a run could not finish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracemend.errors import ModelError
from tracemend.heal.state import HealState, state_path

# Outcomes that end a run successfully: nothing to heal, nothing worth acting on, or healed and proven.
SUCCESS = ("clean", "healed", "ignored")


def could_not_finish(stage: str, exc: ModelError, no_input: bool) -> str:
    """One line: the stage, the model and the cause (the error's text), and what to do."""
    again = "rerun heal (it starts afresh)" if no_input else "then continue with tracemend heal --resume"
    return f"heal could not finish: {stage}: {exc}; {exc.hint}; {again}"


def exit_code(state: HealState) -> int:
    """0 when the run ended well (nothing to heal, nothing worth acting on, healed and proven), else 1."""
    return 0 if state.outcome in SUCCESS else 1


def summary(state: HealState) -> dict[str, Any]:
    """The final summary as data (``--json``)."""
    return {
        "outcome": state.outcome,
        "message": state.message,
        "deploy_revision": state.deploy_revision,
        "flagged": state.flagged,
        "finding": state.finding.model_dump(mode="json") if state.finding else None,
        "triage": state.triage.model_dump(mode="json") if state.triage else None,
        "proposal": state.proposal.model_dump(mode="json", exclude={"comparison"})
        if state.proposal
        else None,
        "sandbox_verdict": state.proposal.comparison.verdict
        if state.proposal and state.proposal.comparison
        else None,
        "sandbox": sandbox_summary(state),
        "decision": state.decision,
        "applied": state.applied,
        "case_path": state.case_path,
        "check_before": state.check_before.model_dump() if state.check_before else None,
        "check_after": state.check_after.model_dump() if state.check_after else None,
        "model_calls": state.model_calls,
        "failed_model_calls": state.failed_calls,
        "model_calls_by_purpose": state.calls_by_purpose,
        "tokens": state.tokens,
        "cost": state.cost,
        "scripted": state.scripted,
        "exit_code": exit_code(state),
        "state_file": str(state_path(Path(state.repo))),
    }


def sandbox_summary(state: HealState) -> dict[str, Any] | None:
    """The three-way verification in numbers: which revisions, and the inputs in each column."""
    comparison = state.proposal.comparison if state.proposal else None
    if comparison is None:
        return None
    rows = []
    for item in comparison.items:
        rows.append(
            {
                "trace_id": item.source_trace_id,
                "input": "failing" if item.was_failing else "passing",
                "before_change": str(item.prior_runs) if item.prior_runs else None,
                "at_head": str(item.before_runs),
                "with_fix": str(item.after_runs),
                "result": item.change,
            }
        )
    return {
        "verdict": comparison.verdict,
        "before_change_revision": comparison.prior_revision,
        "head_revision": comparison.head_revision,
        "runs_per_input": comparison.runs,
        "regression_inputs": len(comparison.regression),
        "pre_existing": len(comparison.pre_existing),
        "inputs": rows,
    }
