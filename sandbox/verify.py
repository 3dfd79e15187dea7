"""Verify a proposed change: apply it in an isolated worktree, rerun the inputs before and after, compare.

"Before" runs in a clean worktree at the base revision with the recorded config; "after" runs in a
second worktree with the change applied (and the config overrides, for a what-if). Both worktrees are
removed whatever happens; the user's working tree and index are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tracemend.records import Comparison, Trace

from .changes import ApplyResult, Edit, apply_change
from .compare import compare
from .rerun import rerun_traces
from .worktree import _git, isolated_worktree, worktree_commit

__all__ = ["Verification", "verify_change"]


class Verification(BaseModel):
    apply: ApplyResult
    # None when the change did not apply (nothing was rerun).
    comparison: Comparison | None = None
    base_commit: str | None = None


def _has_change(change: str | list[Edit] | None) -> bool:
    if change is None:
        return False
    return bool(change) if isinstance(change, list) else bool(change.strip())


def verify_change(
    repo: Path,
    change: str | list[Edit] | None,
    failing: Sequence[Trace],
    passing: Sequence[Trace] = (),
    *,
    rev: str = "HEAD",
    timeout: float = 30,
    config_overrides: dict[str, Any] | None = None,
    parallel: int = 2,
    pass_env: list[str] | None = None,
    progress: bool = False,
) -> Verification:
    """Apply ``change`` (a unified diff, SEARCH/REPLACE text, or edits; None/empty for a what-if with
    ``config_overrides`` only) at ``rev`` and rerun ``failing`` and ``passing`` traces before and after.

    Raises ChangeRejected for a hostile or invalid change (before anything runs) and SandboxError when
    ``repo`` is not a git repository or ``rev`` is unknown. A change that does not apply or does not
    compile returns a Verification with ``apply.ok`` False and no comparison.
    """
    repo = Path(repo)
    source_root = Path(_git(repo).working_tree_dir or repo)
    traces = [*failing, *[t for t in passing if t.trace_id not in {f.trace_id for f in failing}]]
    patched = _has_change(change)
    with isolated_worktree(repo, rev) as after_tree:
        base = worktree_commit(after_tree)
        applied = apply_change(after_tree, change) if patched else ApplyResult(ok=True)  # type: ignore[arg-type]
        if not applied.ok:
            return Verification(apply=applied, comparison=None, base_commit=base)
        common: dict[str, Any] = dict(
            timeout=timeout, parallel=parallel, pass_env=pass_env, progress=progress
        )
        with isolated_worktree(repo, base) as before_tree:
            before = rerun_traces(
                traces, workdir=before_tree, code_version=base, source_root=source_root, **common
            )
        after = rerun_traces(
            traces,
            workdir=after_tree,
            code_version=base + "+patch" if patched else base,
            config_overrides=config_overrides,
            source_root=source_root,
            **common,
        )
    comparison = compare(before, after, {t.trace_id for t in failing})
    return Verification(apply=applied, comparison=comparison, base_commit=base)
