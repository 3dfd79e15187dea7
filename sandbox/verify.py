"""Verify a proposed change: apply it in an isolated worktree, rerun the inputs before and after, compare.

"Before" runs in a clean worktree at the base revision with the recorded config; "after" runs in a
second worktree with the change applied (and the config overrides, for a what-if). Both worktrees are
removed whatever happens; the user's working tree and index are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tracemend.records import ApplyResult, RerunResult, Trace, Verification
from tracemend.sandbox.changes import Edit, apply_change
from tracemend.sandbox.compare import compare
from tracemend.sandbox.rerun import recorded_result, rerun_traces
from tracemend.sandbox.worktree import SandboxError, _git, isolated_worktree, worktree_commit

__all__ = ["Verification", "rerun_recorded", "verify_change"]


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
    progress: bool | Callable[[RerunResult], None] = False,
) -> Verification:
    """Apply ``change`` (a unified diff, SEARCH/REPLACE text, or edits; None/empty for a what-if with
    ``config_overrides`` only) at ``rev`` and rerun ``failing`` and ``passing`` traces before and after.

    Raises ChangeRejected for a hostile or invalid change (before anything runs) and SandboxError when
    ``repo`` is not a git repository or ``rev`` is unknown. A change that does not apply or does not
    compile returns a Verification with ``apply.ok`` False and no comparison.
    """
    repo = Path(repo)
    if config_overrides:
        fixed_config = sorted({t.entry_point for t in [*failing, *passing] if not t.config_param})
        if fixed_config:
            raise SandboxError(
                "config overrides need the config passed as an argument; it is set on the decorator of "
                + ", ".join(fixed_config)
            )
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


def rerun_recorded(
    repo: Path,
    failing: Sequence[Trace],
    passing: Sequence[Trace] = (),
    *,
    rev: str = "HEAD",
    timeout: float = 30,
    parallel: int = 2,
    pass_env: list[str] | None = None,
    progress: bool | Callable[[RerunResult], None] = False,
) -> Verification:
    """Rerun the traces at ``rev`` as they are and compare with what was recorded ("does it still fail?").

    The "before" side is the recorded trace itself, so nothing runs twice.
    """
    repo = Path(repo)
    source_root = Path(_git(repo).working_tree_dir or repo)
    traces = [*failing, *[t for t in passing if t.trace_id not in {f.trace_id for f in failing}]]
    with isolated_worktree(repo, rev) as tree:
        base = worktree_commit(tree)
        after = rerun_traces(
            traces,
            workdir=tree,
            timeout=timeout,
            parallel=parallel,
            pass_env=pass_env,
            progress=progress,
            code_version=base,
            source_root=source_root,
        )
    before = [recorded_result(t) for t in traces]
    comparison = compare(before, after, {t.trace_id for t in failing})
    return Verification(apply=ApplyResult(ok=True), comparison=comparison, base_commit=base)
