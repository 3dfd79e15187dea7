"""`tracemend demo` end to end, as a user runs it: the whole loop, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tracemend.heal import load_state
from tracemend.store import Store


def test_demo_runs_the_whole_loop_offline(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "160"},
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    repo = tmp_path / "repo"
    subjects = subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert subjects[0] == "Use ISO 3166 codes for refund-policy regions" and len(subjects) == 2
    with Store(tmp_path / "traces.db") as store:
        first, last = store.time_range()  # type: ignore[misc]
        assert last - first > timedelta(days=6)
        versions = [v[0] for v in store.code_versions()]
    assert len(versions) == 2  # baseline at the good commit, the window at the regression
    state = load_state(repo)
    assert state is not None and state.outcome == "healed"
    assert state.check_before is not None and not state.check_before.passed
    assert state.check_after is not None and state.check_after.passed
    assert (repo / state.case_path).exists()  # type: ignore[operator]
    assert "scripted" in out.stdout  # offline answers are labelled
    assert "KeyError @ support_agent.tools:refund_policy" in out.stdout
    assert "the case fails before the fix and passes with it" in out.stdout
