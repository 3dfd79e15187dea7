"""The approval loop: show the proposal, then approve, reject, edit (the diff in ``$EDITOR``, verified again
in the sandbox), show the trace, or quit. Nothing here touches the user's tree."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from tracemend.approval.protocol import PROMPT, ApprovalOutcome, ApprovalUI, parse_choice, verdict_of
from tracemend.records import Diagnosis, Proposal


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


def reverify(
    diagnosis: Diagnosis, proposal: Proposal, new_diff: str, *, repo: Path, timeout: float = 30.0
) -> tuple[Proposal | None, str]:
    """Apply an edited diff in a fresh sandbox and rerun the diagnosis's traces; (updated proposal,
    message) or (None, why not)."""
    from tracemend.diagnose import verify_proposal
    from tracemend.sandbox import ChangeRejected, apply_patch, isolated_worktree

    rev = proposal.base_revision or "HEAD"
    try:
        with isolated_worktree(repo, rev) as wt:
            applied = apply_patch(wt, new_diff)
    except ChangeRejected as exc:
        return None, f"the edited diff is refused: {exc}"
    if not applied.ok:
        reasons = [f"{m.path}: {m.reason}" for m in applied.misses] + list(applied.errors)
        return None, "the edited diff does not apply: " + "; ".join(reasons)
    verification = verify_proposal(
        repo, applied.diff, diagnosis.failing, diagnosis.passing, rev=rev, timeout=timeout
    )
    updated = proposal.model_copy(
        update={
            "diff": applied.diff,
            "touched_files": list(applied.touched),
            "comparison": verification.comparison if verification is not None else None,
            "explanation": (proposal.explanation + "\n(diff edited by a person before approval)").strip(),
        }
    )
    return updated, f"edited diff verified in the sandbox: {verdict_of(updated) or 'applies and compiles'}"


def approval_loop(
    diagnosis: Diagnosis,
    ui: ApprovalUI,
    *,
    repo: Path,
    timeout: float = 30.0,
    editor: str | None = None,
) -> tuple[ApprovalOutcome, Proposal]:
    """Ask about the diagnosis's proposal until the person approves, rejects or quits; the proposal as it
    then stands (edited, perhaps)."""
    proposal = diagnosis.proposal
    if proposal is None:
        raise ValueError("the diagnosis has no proposal to approve")
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
            if diagnosis.failing:
                ui.show_trace(diagnosis.failing[0])
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
            updated, message = reverify(diagnosis, proposal, edited, repo=repo, timeout=timeout)
            ui.info(message)
            if updated is not None:
                proposal = updated
                ui.show_proposal(proposal)
