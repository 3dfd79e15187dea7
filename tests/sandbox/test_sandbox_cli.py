"""``tracemend rerun`` end to end: a real repository, real recorded traces, the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tracemend.cli import rerun as rerun_cli

from helpers.sandbox_repo import AgentRepo, diff_for, make_agent_repo, snapshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentRepo:
    return make_agent_repo(tmp_path_factory.mktemp("sandbox-cli") / "repo")


def _app() -> typer.Typer:
    # A group with a callback, as the full CLI is: a typer app with a single command would run it bare.
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    rerun_cli.register(app)
    return app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    # Rich wraps long lines at the terminal width; the words are what matter.
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_rerun_with_patch_json(agent: AgentRepo, tmp_path: Path) -> None:
    patch = tmp_path / "fix.diff"
    patch.write_text(
        diff_for(
            agent.root,
            "agentpkg/agent.py",
            'table = {"paris": "FR", "berlin": "DE"}',
            'table = {"paris": "FR", "berlin": "DE", "rome": "IT"}',
        )
    )
    before = snapshot(agent.root)
    rome = agent.trace("where is Rome").trace_id
    code, out, _ = run(
        "rerun", rome[:10], "--patch", str(patch), "--repo", str(agent.root), "--db", str(agent.db), "--json"
    )
    assert snapshot(agent.root) == before
    assert code == 0, out
    data = json.loads(out)
    assert data["apply"]["ok"] and data["comparison"]["verdict"] == "fixed"
    kinds = {item["source_trace_id"]: item["change"] for item in data["comparison"]["items"]}
    assert kinds[rome] == "fixed"
    # The collateral sample: the recent passing traces of the same entry point were rerun too.
    assert kinds[agent.trace("where is Paris").trace_id] == "unchanged_ok"
    assert kinds[agent.trace("where is Berlin").trace_id] == "unchanged_ok"


def test_rerun_without_patch_still_fails(agent: AgentRepo) -> None:
    rome = agent.trace("where is Rome").trace_id
    code, out, _ = run("rerun", rome, "--passing", "0", "--repo", str(agent.root), "--db", str(agent.db))
    assert code == 1
    assert "still_failing" in out and "verdict: not_fixed" in out


def test_rerun_what_if_config(agent: AgentRepo) -> None:
    hot = agent.trace("where is Paris", 1.5).trace_id
    code, out, _ = run(
        "rerun",
        hot,
        "--config",
        "temperature=0",
        "--passing",
        "0",
        "--repo",
        str(agent.root),
        "--db",
        str(agent.db),
    )
    assert code == 0, out
    assert "verdict: fixed" in out


def test_rejected_patch_and_usage_errors(agent: AgentRepo, tmp_path: Path) -> None:
    evil = tmp_path / "evil.diff"
    evil.write_text("--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x = 1\n")
    rome = agent.trace("where is Rome").trace_id
    code, _, err = run("rerun", rome, "--patch", str(evil), "--repo", str(agent.root), "--db", str(agent.db))
    assert code == 2 and "change rejected" in err and "'..'" in err
    code, _, err = run("rerun", "ffffffff", "--repo", str(agent.root), "--db", str(agent.db))
    assert code == 2 and "no trace" in err
    code, _, err = run("rerun", rome, "--config", "oops", "--db", str(agent.db))
    assert code == 2 and "key=value" in err
    code, _, err = run("rerun", rome, "--repo", str(tmp_path), "--db", str(agent.db), "--passing", "0")
    assert code == 2 and "not a git repository" in err
