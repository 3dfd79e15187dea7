"""Apply what a person approved: to the working tree, or as one commit on a new branch built in a
temporary worktree. The result says what was done and how to undo it."""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracemend.records import Proposal


@dataclass
class Applied:
    mode: Literal["working_tree", "branch"]
    summary: str
    undo: str
    files: list[str]
    commit: str | None = None
    branch: str | None = None


def commit_message(proposal: Proposal, approval: str = "approved by a person") -> str:
    title = f"Fix {proposal.signature_id or 'failure'}: {proposal.root_cause.splitlines()[0]}"
    lines = [title[:72], "", proposal.root_cause, ""]
    if proposal.signature_id:
        lines.append(f"Signature: {proposal.signature_id}")
    if proposal.trace_ids:
        lines.append("Traces: " + ", ".join(proposal.trace_ids))
    comparison = proposal.comparison
    if comparison is not None:
        apart = f" ({len(comparison.pre_existing)} pre-existing failure(s) set apart)" if comparison.pre_existing else ""
        lines.append(f"Sandbox rerun: {comparison.verdict}{apart}")
    lines.append(
        "Proposed by tracemend diagnose"
        + (" (scripted model)" if proposal.scripted else "")
        + f"; {approval}."
    )
    return "\n".join(lines) + "\n"


def new_file_diff(path: str, text: str) -> str:
    """A unified diff that creates ``path`` with ``text``."""
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def commit_on_branch(
    repo: Path,
    proposal: Proposal,
    branch: str,
    *,
    new_files: Mapping[str, str] | None = None,
    trailer: str = "",
    approval: str = "approved by a person",
) -> str:
    """Commit the proposal's diff (and ``new_files``, path → text) as one commit on the new ``branch``, on
    top of the revision it was diagnosed at; the user's checkout is untouched. Returns the commit's sha."""
    from tracemend import vcs

    diff = proposal.diff
    for path, text in (new_files or {}).items():
        diff = diff.rstrip("\n") + "\n" + new_file_diff(path, text)
    return vcs.commit_to_branch(
        vcs.open_repo(repo),
        diff,
        branch,
        commit_message(proposal, approval) + trailer,
        rev=proposal.base_revision or "HEAD",
    )


def apply_approved(repo: Path, proposal: Proposal, *, branch: str | None = None) -> Applied:
    """Apply an approved proposal: to the working tree, or as one commit on a new branch."""
    from tracemend import vcs

    if branch:
        sha = commit_on_branch(repo, proposal, branch)
        return Applied(
            mode="branch",
            summary=f"committed {sha[:10]} on new branch {branch} (your checkout is unchanged)",
            undo=f"git branch -D {shlex.quote(branch)}",
            files=list(proposal.touched_files),
            commit=sha,
            branch=branch,
        )
    r = vcs.open_repo(repo)
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
