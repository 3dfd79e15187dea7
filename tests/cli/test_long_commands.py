"""Commands that take seconds, run as in a CI job (stdout and stderr piped): each reports progress a line
per step, and `rerun` ends in one summary table (details only with --verbose)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from helpers.sandbox_repo import AgentRepo, diff_for, make_agent_repo

pytestmark = pytest.mark.integration


def tm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentRepo:
    return make_agent_repo(tmp_path_factory.mktemp("long-commands") / "repo")


def _fix(agent: AgentRepo, tmp_path: Path) -> Path:
    patch = tmp_path / "fix.diff"
    patch.write_text(
        diff_for(
            agent.root,
            "agentpkg/agent.py",
            'table = {"paris": "FR", "berlin": "DE"}',
            'table = {"paris": "FR", "berlin": "DE", "rome": "IT"}',
        )
    )
    return patch


def test_rerun_reports_each_rerun_and_ends_in_one_summary_table(agent: AgentRepo, tmp_path: Path) -> None:
    rome = agent.trace("where is Rome").trace_id
    args = ("rerun", rome, "--patch", str(_fix(agent, tmp_path)), "--repo", str(agent.root), "--db", str(agent.db))
    done = tm(*args)
    assert done.returncode == 0, done.stdout + done.stderr

    # Progress: one line per rerun on stderr (each input before and after the patch).
    steps = [line for line in done.stderr.splitlines() if line.startswith("rerunning ")]
    assert len(steps) == 6 and steps[-1].startswith("rerunning 6/6: ")
    assert any(line.startswith("rerunning ") and rome[:12] in line for line in steps)

    lines = done.stdout.rstrip().splitlines()
    assert lines[-1].startswith("verdict: fixed")
    header = next(i for i, line in enumerate(lines) if line.startswith("trace "))
    assert lines[header].split()[:6] == ["trace", "input", "was", "before", "after", "change"]
    rows = lines[header + 1 : -1]
    assert len(rows) == 3 and rows[0].startswith(rome[:12]) and " fixed " in f"{rows[0]} "
    assert "change applied" in done.stdout and "+    table = " in done.stdout  # the diff, verbatim
    assert "before:" not in done.stdout  # no per-input details without --verbose

    verbose = tm(*args, "--verbose")
    assert verbose.returncode == 0
    out = verbose.stdout
    assert "  before: error KeyError" in out and "  after : ok" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict: fixed")  # details above, summary last
    assert out.index("  before: error KeyError") < out.index("verdict: fixed")


def test_test_gives_each_case_its_own_line_in_a_log(agent: AgentRepo, tmp_path: Path) -> None:
    folder = agent.root / "tests" / "regressions"
    paris = agent.trace("where is Paris").trace_id
    berlin = agent.trace("where is Berlin").trace_id
    for trace_id in (paris, berlin):
        lock = tm("lock", trace_id, "--check", "not_raises=KeyError", "--dir", str(folder), "--db", str(agent.db), cwd=agent.root)
        assert lock.returncode == 0, lock.stderr
        assert "run it: pytest " in lock.stdout
    done = tm("test", "--dir", str(folder), cwd=agent.root)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if line.endswith("%]") and " PASSED " in line]
    assert len(passed) == 2  # pytest -v in a log: a line per case as it finishes


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_export_reports_progress_in_a_log(agent: AgentRepo, sink: HTTPServer) -> None:
    done = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(agent.db))
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stderr.splitlines() if line.startswith("exporting over OTLP ")]
    assert steps and steps[-1].startswith(f"exporting over OTLP {len(agent.traces)}/{len(agent.traces)}: ")
