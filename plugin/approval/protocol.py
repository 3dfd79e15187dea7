"""The approval contract: what a person is shown and can answer, and what happens without asking."""

from __future__ import annotations

from typing import Literal, Protocol

from tracemend.records import Proposal, Trace

Choice = Literal["approve", "reject", "edit", "trace", "quit"]
# How the approval loop ended.
ApprovalOutcome = Literal["approve", "reject", "quit"]
# What to do before asking anyone (--yes, --no-input, is there a terminal).
AutoDecision = Literal["approve", "refuse", "ask", "no_tty"]

_KEYS: dict[str, Choice] = {
    "a": "approve",
    "approve": "approve",
    "y": "approve",
    "yes": "approve",
    "r": "reject",
    "reject": "reject",
    "n": "reject",
    "e": "edit",
    "edit": "edit",
    "t": "trace",
    "s": "trace",
    "trace": "trace",
    "q": "quit",
    "quit": "quit",
}
PROMPT = "[a]pprove  [r]eject  [e]dit  show [t]race  [q]uit > "


class ApprovalUI(Protocol):
    def show_proposal(self, proposal: Proposal) -> None: ...
    def show_trace(self, trace: Trace) -> None: ...
    def ask(self, prompt: str) -> str | None: ...  # None: end of input
    def info(self, message: str) -> None: ...


def parse_choice(text: str) -> Choice | None:
    return _KEYS.get(text.strip().lower())


def verdict_of(proposal: Proposal) -> str | None:
    return proposal.comparison.verdict if proposal.comparison is not None else None


def auto_decision(proposal: Proposal, *, yes: bool, no_input: bool, tty: bool) -> AutoDecision:
    """What to do without asking: ``--yes`` approves only a sandbox-verified fix; ``--no-input`` never asks."""
    if no_input:
        return "refuse"
    if yes:
        return "approve" if verdict_of(proposal) == "fixed" else "refuse"
    return "ask" if tty else "no_tty"
