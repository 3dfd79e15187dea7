"""`--version`, `python -m tracemend` and shell completion, as a user's shell runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60)


def script() -> str:
    found = shutil.which("tracemend", path=str(Path(sys.executable).parent))
    assert found, "the tracemend console script is installed beside the interpreter"
    return found


def test_version_from_the_script_and_python_m() -> None:
    expected = f"tracemend {version('tracemend')}"
    for args in ([script(), "--version"], [script(), "-V"], [sys.executable, "-m", "tracemend", "--version"]):
        done = run(args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected


def test_python_m_tracemend_is_the_same_command_line() -> None:
    done = run([sys.executable, "-m", "tracemend", "--help"], env={"COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert "Usage: tracemend " in done.stdout  # the program's name, not __main__.py
    for command in ("traces", "show", "status", "analyze", "rerun", "heal", "demo", "export"):
        assert f" {command} " in done.stdout
    missing = run([sys.executable, "-m", "tracemend", "show", "ffff", "--db", "/nonexistent/t.db"])
    assert missing.returncode == 2 and missing.stderr.startswith("error:")


# `--show-completion` alone asks shellingham which shell is an ancestor of the process; a test run started
# by something other than a shell (an orphaned job, some CI runners) has none. With this variable set, typer
# takes the shell's name as the option's value instead, as a user may type it.
NAMED_SHELL = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def test_bash_completion_script_and_answers() -> None:
    shown = run([script(), "--show-completion", "bash"], env={"SHELL": "/bin/bash", **NAMED_SHELL})
    assert shown.returncode == 0, shown.stderr
    assert "_TRACEMEND_COMPLETE=complete_bash" in shown.stdout and "complete " in shown.stdout
    # What bash asks when the user presses tab after `tracemend tr` and `tracemend traces --s`.
    words = run([script()], env={"_TRACEMEND_COMPLETE": "complete_bash", "COMP_WORDS": "tracemend tr", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["traces", "triage"]
    options = run(
        [script()],
        env={"_TRACEMEND_COMPLETE": "complete_bash", "COMP_WORDS": "tracemend traces --s", "COMP_CWORD": "2"},
    )
    assert {"--since", "--session"} <= set(options.stdout.split())


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_a_completion_script(shell: str) -> None:
    shown = run([script(), "--show-completion", shell], env=NAMED_SHELL)
    assert shown.returncode == 0, shown.stderr
    assert "tracemend" in shown.stdout and "_TRACEMEND_COMPLETE" in shown.stdout
