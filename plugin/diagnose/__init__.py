"""The diagnosing agent: from failing traces (or a failed build) to a sandbox-verified proposal.

``request`` builds what the agent starts from (a Finding and its TriageVerdict, or a build log), ``agent``
runs the tool-using loop to a :class:`~tracemend.records.Diagnosis`, ``tools`` are its read-only
repository tools. Asking a person and applying what they approved is the next stage,
:mod:`tracemend.approval`.
"""

from __future__ import annotations

from tracemend.diagnose.agent import (
    Agent,
    Budget,
    DiagnoseError,
    DiagnoseRequest,
    Diagnosis,
    adiagnose,
    diagnose,
    verify_proposal,
)
from tracemend.diagnose.tools import TOOL_SPECS, RepoTools, ToolRefused, render_trace

__all__ = [
    "TOOL_SPECS",
    "Agent",
    "Budget",
    "DiagnoseError",
    "DiagnoseRequest",
    "Diagnosis",
    "RepoTools",
    "ToolRefused",
    "adiagnose",
    "diagnose",
    "example_script",
    "quality_script",
    "render_trace",
    "verify_proposal",
]


def example_script() -> str:
    """``scripted:<path>`` of the recorded answers for the bundled example agent's seeded regression."""
    from pathlib import Path

    return "scripted:" + str(Path(__file__).with_name("support_agent_scripted.yaml"))


def quality_script() -> str:
    """``scripted:<path>`` of the recorded answers for ``tracemend demo --scenario quality`` (a prompt edit
    that makes the example agent promise refunds past the refund window: no exception, a judge's finding)."""
    from pathlib import Path

    return "scripted:" + str(Path(__file__).with_name("support_agent_quality_scripted.yaml"))
