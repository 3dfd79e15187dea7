"""Triage: did the last change cause this finding, and should it be fixed forward or rolled back?

``classify`` places each changed file by rules (runtime, prompt/config, test, docs, CI), ``change`` finds the
suspect change and links its lines to the failures' frames, ``verdict`` asks the model (only when the rules
leave something to ask) and builds the :class:`~tracemend.records.TriageVerdict`, ``recommend`` weighs
severity against causal confidence. Triage takes the :class:`~tracemend.records.Finding` as given: it
never runs the analyzer.
"""

from __future__ import annotations

from tracemend.errors import TriageError
from tracemend.triage.change import (
    SuspectChange,
    changed_lines,
    deploy_diff,
    finding_revision,
    link_frames,
    load_examples,
    previous_deployed,
    suspect_change,
)
from tracemend.triage.classify import RuntimeMap, build_runtime_map, classify_path
from tracemend.triage.recommend import ROLL_BACK_BELOW, Severity, recommend, severity_of
from tracemend.triage.verdict import TriageAnswer, TriageResult, triage

__all__ = [
    "ROLL_BACK_BELOW",
    "RuntimeMap",
    "Severity",
    "SuspectChange",
    "TriageAnswer",
    "TriageError",
    "TriageResult",
    "build_runtime_map",
    "changed_lines",
    "classify_path",
    "deploy_diff",
    "finding_revision",
    "link_frames",
    "load_examples",
    "previous_deployed",
    "recommend",
    "severity_of",
    "suspect_change",
    "triage",
]
