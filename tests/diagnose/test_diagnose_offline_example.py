"""The whole path offline on the bundled example agent's seeded regression, with the recorded (scripted)
model answers: real traffic, real git history, triage, diagnosis, sandbox verification, approval (--yes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracemend import demo
from tracemend.diagnose import example_script
from tracemend.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TRACEMEND = str(Path(sys.executable).with_name("tracemend"))


def test_seeded_regression_is_triaged_diagnosed_and_fixed_offline(tmp_path: Path) -> None:
    repo, db = tmp_path / "repo", tmp_path / "traces.db"
    demo.make_repo(repo)
    demo.run_traffic(repo, db, 24, 7)
    bad = demo.seed_regression(repo)
    demo.run_traffic(repo, db, 60, 8)
    with Store(db, create=False) as store:
        uk = [
            t
            for t in store.iter_traces(revision=bad, status="error")
            if t.error and "KeyError" in t.error.type
        ]
    assert uk, "the seeded regression produced no KeyError traces"
    env = {**os.environ, "TRACEMEND_DB": str(db), "TERM": "dumb", "COLUMNS": "110"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TRACEMEND, *args, "--model", example_script()],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )

    triage = run("triage", "--trace", uk[0].trace_id)
    assert triage.returncode == 0, triage.stderr
    assert "support_agent/data.py" in triage.stdout and "caused by this change" in triage.stdout
    assert "(scripted model)" in triage.stdout and "Fix forward" in triage.stdout

    fixed = run("diagnose", uk[0].trace_id[:12], "--yes")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "(scripted model)" in fixed.stdout and "sandbox rerun: fixed" in fixed.stdout
    assert "done: applied to the working tree: support_agent/tools.py" in fixed.stdout
    assert "LEGACY_REGIONS.get(region, region)" in (repo / "support_agent/tools.py").read_text()
