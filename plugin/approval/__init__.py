"""A person approves the verified proposal; only then does anything touch their working tree.

``protocol`` is the contract (the :class:`ApprovalUI` a front end implements, the choices, what happens
without asking), ``loop`` asks until approve, reject or quit (an edited diff is verified again in the
sandbox), ``apply`` applies or commits what was approved and says how to undo it, ``console`` is the
terminal front end (rich; imported only by the CLI).
"""

from __future__ import annotations

from tracemend.approval.apply import Applied, apply_approved, commit_message, commit_on_branch, new_file_diff
from tracemend.approval.loop import approval_loop, edit_diff, reverify
from tracemend.approval.protocol import (
    PROMPT,
    ApprovalOutcome,
    ApprovalUI,
    AutoDecision,
    Choice,
    auto_decision,
    parse_choice,
    verdict_of,
)

__all__ = [
    "PROMPT",
    "Applied",
    "ApprovalOutcome",
    "ApprovalUI",
    "AutoDecision",
    "Choice",
    "apply_approved",
    "approval_loop",
    "auto_decision",
    "commit_message",
    "commit_on_branch",
    "edit_diff",
    "new_file_diff",
    "parse_choice",
    "reverify",
    "verdict_of",
]
