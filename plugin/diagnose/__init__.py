"""The diagnosing agent: from failing traces (or a failed build) to a verified, approved diff.

``agent`` runs the tool-using loop, ``tools`` are its read-only repository tools, ``select`` builds a
request from the store, ``approval`` asks a person and applies what they approved.
"""

from __future__ import annotations

from tracemend.approval import Applied, apply_approved, approval_loop, auto_decision, commit_message
from tracemend.diagnose.agent import (
    Agent,
    Budget,
    DiagnoseError,
    DiagnoseRequest,
    Diagnosis,
    adiagnose,
    diagnose,
)
from tracemend.diagnose.tools import TOOL_SPECS, RepoTools, ToolRefused, render_trace

__all__ = [
    "TOOL_SPECS",
    "Agent",
    "Applied",
    "Budget",
    "DiagnoseError",
    "DiagnoseRequest",
    "Diagnosis",
    "RepoTools",
    "ToolRefused",
    "adiagnose",
    "apply_approved",
    "approval_loop",
    "auto_decision",
    "commit_message",
    "diagnose",
    "example_script",
    "render_trace",
]


def example_script() -> str:
    """``scripted:<path>`` of the recorded answers for the bundled example agent's seeded regression."""
    from pathlib import Path

    return "scripted:" + str(Path(__file__).with_name("support_agent_scripted.yaml"))
