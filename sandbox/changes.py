"""Apply a proposed change (SEARCH/REPLACE edits or a unified diff) inside a checkout, safely.

The parts: :mod:`~tracemend.sandbox.paths` (which paths a change may touch),
:mod:`~tracemend.sandbox.edits` (SEARCH/REPLACE blocks, tolerant matching),
:mod:`~tracemend.sandbox.patch` (unified diffs), :mod:`~tracemend.sandbox.staging` (all or nothing, compile
check). A hostile or malformed change raises :class:`ChangeRejected`; edits that do not match come back
as misses in the :class:`ApplyResult`.
"""

from __future__ import annotations

from pathlib import Path

from tracemend.errors import ChangeRejected
from tracemend.sandbox.edits import Edit, apply_edits, parse_edits
from tracemend.sandbox.patch import apply_patch, looks_like_diff
from tracemend.sandbox.staging import ApplyResult, EditMiss

__all__ = [
    "ApplyResult",
    "ChangeRejected",
    "Edit",
    "EditMiss",
    "apply_change",
    "apply_edits",
    "apply_patch",
    "looks_like_diff",
    "parse_edits",
]


def apply_change(root: Path, change: str | list[Edit]) -> ApplyResult:
    """A unified diff if ``change`` looks like one, else SEARCH/REPLACE text, or a list of edits."""
    if isinstance(change, list):
        return apply_edits(root, change)
    if looks_like_diff(change):
        return apply_patch(root, change)
    edits = parse_edits(change)
    if not edits:
        raise ChangeRejected("the change is neither a unified diff nor SEARCH/REPLACE blocks")
    return apply_edits(root, edits)
