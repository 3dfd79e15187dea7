"""Run a regression case under pytest in a tree: before the fix (a sandbox worktree at the base revision,
where it must fail) and with it (the user's tree, or a worktree of the branch holding the fix)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tracemend.records import CaseCheck
from tracemend.sandbox.worktree import isolated_worktree

__all__ = ["check_before_after", "run_case"]


def run_case(
    where: Path, case_path: str, label: str, *, env: Mapping[str, str] | None = None, model: str | None = None
) -> CaseCheck:
    """``pytest <case_path>`` in ``where`` with a store of its own; ``model`` judges unless the environment
    names a judge model."""
    full_env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": str(where) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TRACEMEND_PROJECT_ROOT": str(where),
        "TRACEMEND_DB": str(where / ".tracemend" / "check-traces.db"),
    }
    if model:
        full_env.setdefault("TRACEMEND_JUDGE_MODEL", model)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        case_path,
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:opik",
        "--no-header",
    ]
    try:
        out = subprocess.run(cmd, cwd=where, env=full_env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return CaseCheck(where=label, passed=False, exit_code=-1, output_tail="pytest timed out")
    text = (out.stdout + out.stderr).strip()
    return CaseCheck(
        where=label, passed=out.returncode == 0, exit_code=out.returncode, output_tail=text[-3000:]
    )


def check_before_after(
    repo: Path,
    case_path: str,
    case_text: str,
    *,
    base: str,
    after: str | None = None,
    env: Mapping[str, str] | None = None,
    model: str | None = None,
) -> tuple[CaseCheck, CaseCheck]:
    """The case (``case_text``, at ``case_path`` relative to the tree) before the fix, at ``base``, and with
    it: at revision ``after`` (a branch), or in ``repo``'s working tree when None (where it is written)."""
    with isolated_worktree(repo, base) as before_tree:
        target = before_tree / case_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(case_text, encoding="utf-8")
        before = run_case(before_tree, case_path, "before the fix", env=env, model=model)
    if after is not None:
        with isolated_worktree(repo, after) as after_tree:
            return before, run_case(after_tree, case_path, "with the fix", env=env, model=model)
    return before, run_case(repo, case_path, "with the fix", env=env, model=model)
