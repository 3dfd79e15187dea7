"""``tracemend lock`` from a real recorded trace, then ``tracemend test`` and plain pytest on the written case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from tracemend.cli import build_app
from tracemend.store import Store

AGENT = """
import tracemend
from tracemend import Config


class AgentConfig(Config):
    window_days: int = 30


@tracemend.track
def answer(question: str, config: AgentConfig) -> str:
    return f"Refunds are possible within {config.window_days} days. You asked: {question}"
"""


def _env(project) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TRACEMEND_DB": str(project / "traces.db"),
            "TRACEMEND_PROJECT_ROOT": str(project),
            "PYTHONPATH": str(project),
            "TRACEMEND_ALLOW_MODEL_REQUESTS": "0",
        }
    )
    return env


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A project whose agent ran once under @track in a real subprocess; returns (project, trace id)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    (project / "agent.py").write_text(AGENT)
    code = "import agent, tracemend; agent.answer('Can I return it?', agent.AgentConfig(window_days=30)); tracemend.flush()"
    subprocess.run([sys.executable, "-c", code], cwd=project, env=_env(project), check=True, timeout=60)
    with Store(project / "traces.db") as store:
        (trace,) = list(store.iter_traces())
    for key, value in _env(project).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    return project, trace.trace_id


def test_lock_writes_a_case_from_the_trace(recorded):
    project, trace_id = recorded
    result = CliRunner().invoke(
        build_app(),
        [
            "lock",
            trace_id[:10],
            "--assert",
            "The reply states the refund window in days",
            "--check",
            "contains=30 days",
            "--check",
            "max_latency_ms=5000",
            "--name",
            "refund window",
        ],
    )
    assert result.exit_code == 0, result.output
    path = project / "tests" / "regressions" / "refund_window.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["entry_point"] == "agent:answer"
    assert data["config_class"] == "agent:AgentConfig" and data["config_param"] == "config"
    assert data["config"] == {"window_days": 30}
    assert data["assertions"] == ["The reply states the refund window in days"]
    assert data["checks"] == [
        {"kind": "contains", "value": "30 days"},
        {"kind": "max_latency_ms", "value": 5000},
    ]
    assert data["provenance"]["source_trace_id"] == trace_id

    # The written case runs under plain pytest and under `tracemend test`, with a scripted judge.
    answers = project / "judge.yaml"
    verdict = json.dumps({"reasoning": "It says 30 days.", "verdict": "PASS"})
    answers.write_text(
        f"answers:\n  - match: {{purpose: judge, contains: ['30 days']}}\n    response: {{content: '{verdict}'}}\n"
    )
    env = _env(project) | {"TRACEMEND_JUDGE_MODEL": f"scripted:{answers}"}
    plain = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:opik",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "1 passed" in plain.stdout and "judge: 1 model calls" in plain.stdout
    wrapped = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tracemend.cli import main; main()",
            "test",
            "--judge-cache-only",
            "-p",
            "no:opik",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrapped.returncode == 0, wrapped.stdout + wrapped.stderr
    assert "judge: 0 model calls, 1 cache hits" in wrapped.stdout


def test_lock_errors(recorded):
    runner = CliRunner()
    app = build_app()
    assert runner.invoke(app, ["lock", "ffff"]).exit_code == 2  # nothing to assert
    missing = runner.invoke(app, ["lock", "0000000000", "--assert", "x"])
    assert missing.exit_code == 1 and "no trace" in missing.output
    bad = runner.invoke(app, ["lock", recorded[1], "--check", "regex=("])
    assert bad.exit_code == 2 and "regular expression" in bad.output


def test_test_command_without_a_suite(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(tmp_path))
    result = CliRunner().invoke(build_app(), ["test"])
    assert result.exit_code == 2 and "no regression folder" in result.output


def test_failing_case_fails_the_command(recorded):
    project, trace_id = recorded
    folder = project / "tests" / "regressions"
    folder.mkdir(parents=True)
    (folder / "c.yaml").write_text(
        textwrap.dedent(
            """
            name: wrong window
            entry_point: agent:answer
            input: {question: q, config: {window_days: 30}}
            config: {window_days: 14}
            config_class: agent:AgentConfig
            config_param: config
            checks: [{kind: contains, value: "30 days"}]
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", "from tracemend.cli import main; main()", "test", "-p", "no:opik"],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The recorded config is replayed (14 days here), so the check fails and so does the command.
    assert out.returncode == 1, out.stdout + out.stderr
    assert "missing ['30 days']" in out.stdout


def _judge(project) -> dict[str, str]:
    answers = project / "judge.yaml"
    verdict = json.dumps({"reasoning": "It says 30 days.", "verdict": "PASS"})
    answers.write_text(f"answers:\n  - match: {{purpose: judge}}\n    response: {{content: '{verdict}'}}\n")
    return _env(project) | {"TRACEMEND_JUDGE_MODEL": f"scripted:{answers}"}


PYTEST = ("-p", "no:opik", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def test_lock_into_another_folder_prints_a_command_that_runs(recorded):
    project, trace_id = recorded
    result = CliRunner().invoke(
        build_app(), ["lock", trace_id[:10], "--assert", "It states the window", "--dir", "qa/cases", "-n", "w"]
    )
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("run it:"))
    command = line.removeprefix("run it: ").split("  or  ")[0].split()
    assert command[:2] == ["pytest", "qa/cases/w.yaml"] and "--regressions" in command
    run = subprocess.run(
        [sys.executable, "-m", *command, *PYTEST], cwd=project, env=_judge(project), capture_output=True, text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


def test_the_regressions_setting_is_used_by_lock_test_and_the_plugin(recorded):
    project, trace_id = recorded
    (project / "pyproject.toml").write_text("[project]\nname = 'proj'\n\n[tool.tracemend]\nregressions = 'checks'\n")
    result = CliRunner().invoke(build_app(), ["lock", trace_id[:10], "--assert", "It states the window", "-n", "w"])
    assert result.exit_code == 0, result.output
    assert (project / "checks" / "w.yaml").is_file() and not (project / "tests").exists()
    assert "run it: pytest checks/w.yaml  or" in result.output
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST], cwd=project, env=_judge(project), capture_output=True, text=True,
        timeout=300,
    )
    assert plain.returncode == 0 and "1 passed" in plain.stdout, plain.stdout + plain.stderr
    wrapped = subprocess.run(
        [sys.executable, "-c", "from tracemend.cli import main; main()", "test", "-p", "no:opik"],
        cwd=project, env=_judge(project), capture_output=True, text=True, timeout=300,
    )
    assert wrapped.returncode == 0 and "1 passed" in wrapped.stdout, wrapped.stdout + wrapped.stderr


def test_fixed_in_commit_only_for_a_passing_trace_of_the_clean_checkout():
    from datetime import UTC, datetime

    from tracemend.assertions.lock import fixed_in
    from tracemend.records import CodeVersion, ErrorInfo, Trace

    head = CodeVersion(commit="a" * 40)
    ok = Trace(trace_id="t", entry_point="m:f", name="f", start_time=datetime.now(UTC), code_version=head)
    assert fixed_in(ok, head) == "a" * 40
    failing = ok.model_copy(update={"status": "error", "error": ErrorInfo(type="KeyError", message="x")})
    assert fixed_in(failing, head) is None  # the case fails until a fix lands
    assert fixed_in(ok, CodeVersion(commit="b" * 40)) is None  # recorded elsewhere: not known here
    assert fixed_in(ok, CodeVersion(commit="a" * 40, dirty=True)) is None
