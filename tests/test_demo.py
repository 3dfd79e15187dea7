"""`tracemend demo` end to end, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tracemend.store import Store


def test_demo_records_a_week_of_real_traffic(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "demo", "--dir", str(tmp_path), "--per-hour", "6"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    repo = tmp_path / "repo"
    log = subprocess.run(["git", "log", "--format=%H"], cwd=repo, capture_output=True, text=True, check=True)
    commits = log.stdout.split()
    assert len(commits) >= 1
    with Store(tmp_path / "traces.db") as store:
        first, last = store.time_range()  # type: ignore[misc]
        counts = store.status_counts()
        assert last - first > timedelta(days=6)
        assert counts.get("error", 0) > 0 and counts["ok"] > 10 * counts["error"] / 2
        trace = next(store.iter_traces(status="error", with_spans=True))
    assert trace.entry_point == "support_agent.agent:handle_ticket"
    assert trace.code_version.commit in commits
    assert "support_agent.tools.OrderNotFound" in out.stdout
    assert "tracemend traces --db" in out.stdout
