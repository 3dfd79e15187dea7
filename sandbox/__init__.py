"""Apply a proposed change in an isolated worktree, rerun recorded inputs, compare before and after.

Public surface (see docs/sandbox.md)::

    from tracemend.sandbox import (Edit, EditMiss, ApplyResult, ChangeRejected, parse_edits, apply_edits,
        apply_patch, isolated_worktree, rerun_traces, compare, verify_change, Verification)
"""

from __future__ import annotations

from tracemend.sandbox.changes import (
    ApplyResult,
    ChangeRejected,
    Edit,
    EditMiss,
    apply_change,
    apply_edits,
    apply_patch,
    looks_like_diff,
    parse_edits,
)
from tracemend.sandbox.compare import compare
from tracemend.sandbox.rerun import parse_overrides, recorded_result, rerun_traces, sandbox_env
from tracemend.sandbox.select import SelectionError, sample_passing, select_traces
from tracemend.sandbox.verify import Verification, rerun_recorded, verify_change
from tracemend.sandbox.worktree import SandboxError, isolated_worktree, worktree_commit

__all__ = [
    "ApplyResult",
    "ChangeRejected",
    "Edit",
    "EditMiss",
    "SandboxError",
    "SelectionError",
    "Verification",
    "apply_change",
    "apply_edits",
    "apply_patch",
    "isolated_worktree",
    "compare",
    "looks_like_diff",
    "parse_edits",
    "parse_overrides",
    "recorded_result",
    "rerun_recorded",
    "rerun_traces",
    "sample_passing",
    "sandbox_env",
    "select_traces",
    "verify_change",
    "worktree_commit",
]
