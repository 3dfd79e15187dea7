"""When the model fails, `triage` and `diagnose` say so in one line and exit 3 ("could not finish"), distinct
from 1 ("found something"); bare `tracemend triage` triages the newest deploy's finding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracemend.testing import Reply

from helpers.diagnose import AgentRepo

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TRACEMEND = str(Path(sys.executable).with_name("tracemend"))


def run(repo: AgentRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRACEMEND, *args],
        cwd=repo.root,
        env={**os.environ, "TRACEMEND_DB": str(repo.db), "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def broken(loopback) -> None:
    loopback.server.responder = lambda request: Reply(body={"error": {"message": "overloaded"}}, status=500)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("diagnosing")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_triage_with_a_failing_model_exits_3_in_one_line(agent_repo: AgentRepo, loopback) -> None:
    broken(loopback)
    out = run(agent_repo, "triage", "--trace", agent_repo.failing[0], "--model", loopback.model)
    assert out.returncode == 3, out.stdout + out.stderr
    line = one_line(out.stderr)
    assert line.startswith("error: triage could not finish: openai/loopback-diagnoser (triage)")
    assert "HTTP 500" in line and "try again later" in line and "Traceback" not in out.stderr


def test_diagnose_with_a_failing_model_exits_3_in_one_line(agent_repo: AgentRepo, loopback) -> None:
    broken(loopback)
    out = run(agent_repo, "diagnose", agent_repo.failing[0], "--model", loopback.model, "--no-input")
    assert out.returncode == 3, out.stdout + out.stderr
    line = one_line(out.stderr)
    assert line.startswith("error: diagnose could not finish: openai/loopback-diagnoser (diagnose)")
    assert "Traceback" not in out.stderr


def test_bare_triage_with_nothing_flagged_says_so(agent_repo: AgentRepo, loopback) -> None:
    out = run(agent_repo, "triage", "--model", loopback.model)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing flagged" in out.stdout
    assert loopback.requests == []
