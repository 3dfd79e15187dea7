"""Run a regression case under pytest in a tree: before the fix (a sandbox worktree at the base revision,
where it must fail) and with it (the user's tree, or a worktree of the branch holding the fix).

The case imports the agent from the tree being checked, never from the user's live checkout: the tree's
import roots go first on ``PYTHONPATH`` (see :mod:`.importpath`), and the pytest plugin removes entries
for the live checkout (``TRACEMEND_LIVE_CHECKOUT``). Traces the case's call records go to a store of the
run's own (``TRACEMEND_RUN_DB``), never the production store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tracemend.records import CaseCheck
from tracemend.sandbox.importpath import tree_pythonpath
from tracemend.sandbox.worktree import isolated_worktree

__all__ = ["check_before_after", "run_case"]


def run_case(
    where: Path,
    case_path: str,
    label: str,
    *,
    env: Mapping[str, str] | None = None,
    model: str | None = None,
    live: Path | None = None,
    store: Path | None = None,
) -> CaseCheck:
    """``pytest <case_path>`` in ``where`` with a store of its own (``store``, default under ``where``'s
    ``.tracemend``); ``model`` judges unless the environment names a judge model. ``live`` is the user's
    checkout when ``where`` is a worktree of it."""
    where = Path(where).resolve()
    store = store or where / ".tracemend" / "check-traces.db"
    full_env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": tree_pythonpath(where, live, os.environ.get("PYTHONPATH", "")),
        "TRACEMEND_PROJECT_ROOT": str(where),
        "TRACEMEND_DB": str(store),
        "TRACEMEND_RUN_DB": str(store),
    }
    full_env.pop("TRACEMEND_LIVE_CHECKOUT", None)
    if live is not None and Path(live).resolve() != where:
        full_env["TRACEMEND_LIVE_CHECKOUT"] = str(Path(live).resolve())
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
        "--rootdir",
        str(where),
        # The case's folder is the regressions folder, whatever the project's setting says.
        "--regressions",
        str(Path(case_path).parent),
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
    run_dir: Path | None = None,
) -> tuple[CaseCheck, CaseCheck]:
    """The case (``case_text``, at ``case_path`` relative to the tree) before the fix, at ``base``, and with
    it: at revision ``after`` (a branch), or in ``repo``'s working tree when None (where it is written).

    The runs' traces go to stores in ``run_dir`` (default: a temporary folder, removed afterwards)."""
    repo = Path(repo).resolve()
    with tempfile.TemporaryDirectory(prefix="tracemend-check-") as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        common = dict(env=env, model=model, live=repo)
        with isolated_worktree(repo, base) as before_tree:
            target = before_tree / case_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(case_text, encoding="utf-8")
            before = run_case(
                before_tree, case_path, "before the fix", store=folder / "check-before.db", **common
            )
        if after is not None:
            with isolated_worktree(repo, after) as after_tree:
                return before, run_case(
                    after_tree, case_path, "with the fix", store=folder / "check-with.db", **common
                )
        return before, run_case(repo, case_path, "with the fix", store=folder / "check-with.db", **common)
