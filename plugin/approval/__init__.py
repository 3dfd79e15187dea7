"""A person approves the verified proposal; only then does anything touch their working tree.

The interactive loop is UI-agnostic (the CLI passes a rich-based UI): approve, reject, edit (the diff in
``$EDITOR``, then verified again in the sandbox), show trace, quit. After approval the diff is applied to
the working tree, or committed on a new branch built in a temporary worktree; the result says what was done
and how to undo it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from tracemend.diagnose.agent import DiagnoseRequest, verify_proposal
from tracemend.records import Proposal, Trace

Choice = Literal["approve", "reject", "edit", "trace", "quit"]
Outcome = Literal["approve", "reject", "quit"]
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


def parse_choice(text: str) -> Choice | None:
    return _KEYS.get(text.strip().lower())


class ApprovalUI(Protocol):
    def show_proposal(self, proposal: Proposal) -> None: ...
    def show_trace(self, trace: Trace) -> None: ...
    def ask(self, prompt: str) -> str | None: ...  # None: end of input
    def info(self, message: str) -> None: ...


def verdict_of(proposal: Proposal) -> str | None:
    return proposal.comparison.verdict if proposal.comparison is not None else None


def auto_decision(
    proposal: Proposal, *, yes: bool, no_input: bool, tty: bool
) -> Literal["approve", "refuse", "ask", "no_tty"]:
    """What to do without asking: ``--yes`` approves only a sandbox-verified fix; ``--no-input`` never asks."""
    if no_input:
        return "refuse"
    if yes:
        return "approve" if verdict_of(proposal) == "fixed" else "refuse"
    return "ask" if tty else "no_tty"


def edit_diff(diff: str, editor: str | None = None) -> str | None:
    """Open the diff in ``$VISUAL``/``$EDITOR``; the edited text, or None when the editor failed."""
    cmd = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile(
        "w", suffix=".diff", prefix="tracemend-", delete=False, encoding="utf-8"
    ) as fh:
        fh.write(diff)
        path = Path(fh.name)
    try:
        rc = subprocess.call([*shlex.split(cmd), str(path)])
        if rc != 0:
            return None
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)


def reverify(req: DiagnoseRequest, proposal: Proposal, new_diff: str) -> tuple[Proposal | None, str]:
    """Apply an edited diff in a fresh sandbox and rerun; (updated proposal, message) or (None, why not)."""
    from tracemend.sandbox import ChangeRejected, apply_patch, isolated_worktree

    try:
        with isolated_worktree(req.repo, req.rev) as wt:
            applied = apply_patch(wt, new_diff)
    except ChangeRejected as exc:
        return None, f"the edited diff is refused: {exc}"
    if not applied.ok:
        reasons = [f"{m.path}: {m.reason}" for m in applied.misses] + list(applied.errors)
        return None, "the edited diff does not apply: " + "; ".join(reasons)
    verification = verify_proposal(req, applied.diff)
    updated = proposal.model_copy(
        update={
            "diff": applied.diff,
            "touched_files": list(applied.touched),
            "comparison": getattr(verification, "comparison", None),
            "explanation": (proposal.explanation + "\n(diff edited by a person before approval)").strip(),
        }
    )
    return updated, f"edited diff verified in the sandbox: {verdict_of(updated) or 'applies and compiles'}"


def approval_loop(
    proposal: Proposal, req: DiagnoseRequest, ui: ApprovalUI, *, editor: str | None = None
) -> tuple[Outcome, Proposal]:
    ui.show_proposal(proposal)
    while True:
        answer = ui.ask(PROMPT)
        if answer is None:
            ui.info("end of input: nothing applied")
            return "quit", proposal
        choice = parse_choice(answer)
        if choice is None:
            ui.info(f"unknown answer {answer.strip()!r}; type a, r, e, t or q")
            continue
        if choice in ("approve", "reject", "quit"):
            return choice, proposal
        if choice == "trace":
            if req.failing:
                ui.show_trace(req.failing[0])
            else:
                ui.info("no trace: this diagnosis came from a build log")
            continue
        edited = edit_diff(proposal.diff, editor)
        if edited is None:
            ui.info("the editor exited with an error; the proposal is unchanged")
        elif edited.strip() == proposal.diff.strip():
            ui.info("diff unchanged")
        else:
            ui.info("verifying the edited diff in the sandbox…")
            updated, message = reverify(req, proposal, edited)
            ui.info(message)
            if updated is not None:
                proposal = updated
                ui.show_proposal(proposal)


@dataclass
class Applied:
    mode: Literal["working_tree", "branch"]
    summary: str
    undo: str
    files: list[str]
    commit: str | None = None
    branch: str | None = None


def commit_message(proposal: Proposal) -> str:
    title = f"Fix {proposal.signature_id or 'failure'}: {proposal.root_cause.splitlines()[0]}"
    lines = [title[:72], "", proposal.root_cause, ""]
    if proposal.signature_id:
        lines.append(f"Signature: {proposal.signature_id}")
    if proposal.trace_ids:
        lines.append("Traces: " + ", ".join(proposal.trace_ids))
    if proposal.comparison is not None:
        lines.append(f"Sandbox rerun: {proposal.comparison.verdict}")
    lines.append(
        "Proposed by tracemend diagnose"
        + (" (scripted model)" if proposal.scripted else "")
        + "; approved by a person."
    )
    return "\n".join(lines) + "\n"


def apply_approved(repo: Path, proposal: Proposal, *, branch: str | None = None) -> Applied:
    """Apply an approved proposal: to the working tree, or as one commit on a new branch."""
    from tracemend import vcs

    r = vcs.open_repo(repo)
    if branch:
        sha = vcs.commit_to_branch(
            r, proposal.diff, branch, commit_message(proposal), rev=proposal.base_revision or "HEAD"
        )
        return Applied(
            mode="branch",
            summary=f"committed {sha[:10]} on new branch {branch} (your checkout is unchanged)",
            undo=f"git branch -D {shlex.quote(branch)}",
            files=list(proposal.touched_files),
            commit=sha,
            branch=branch,
        )
    files = vcs.apply_to_working_tree(r, proposal.diff)
    # Keep the applied diff so the exact change can be reversed even after further edits elsewhere.
    saved = (
        vcs.repo_root(r)
        / ".tracemend"
        / "applied"
        / f"{time.strftime('%Y%m%dT%H%M%S')}-{proposal.signature_id or 'fix'}.diff"
    )
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(proposal.diff, encoding="utf-8")
    rel = saved.relative_to(vcs.repo_root(r)).as_posix()
    return Applied(
        mode="working_tree",
        summary=f"applied to the working tree: {', '.join(files)} (not committed; diff saved to {rel})",
        undo=f"git apply -R {shlex.quote(rel)}",
        files=files,
    )
