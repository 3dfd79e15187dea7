"""Output read as a CI log reads it (piped, COLUMNS=80) and in a terminal (a pseudo-terminal at 80 and 200
columns): the demo's diff, its YAML case and its undo command can be cut from the output and used as they
are; `analyze` shows whole headers, p-values and templates."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from tracemend.heal import load_state
from tracemend.store import Store

from helpers.traffic import deploy_time, traffic

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# CSI sequences (colours, cursor moves, erase), OSC sequences (links, titles), and lone mode switches.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?")
HEADERS = ("verdict", "signature", "baseline /h", "window", "expected", "p", "q", "examples", "last 24h │ window")


def _env(columns: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return env


def piped(*args: str, columns: int = 80, timeout: float = 600) -> tuple[int, str]:
    """`python -m tracemend ARGS | cat` at COLUMNS=columns: stdout is a pipe."""
    out = subprocess.run(
        [sys.executable, "-m", "tracemend", *args],
        capture_output=True,
        text=True,
        env=_env(columns),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    return out.returncode, out.stdout


def in_a_terminal(*args: str, columns: int, timeout: float = 600) -> tuple[int, str]:
    """The command in a pseudo-terminal ``columns`` wide; what a person would see, escapes removed."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tracemend", *args],
        env=_env(None),
        dimensions=(50, columns),
        encoding="utf-8",
        codec_errors="replace",
        timeout=timeout,
    )
    child.expect(pexpect.EOF)
    raw = child.before or ""
    child.close()
    assert child.exitstatus is not None, "killed by a signal"
    lines = []
    for line in _ESCAPES.sub("", raw).replace("\r\n", "\n").split("\n"):
        lines.append(line.rsplit("\r", 1)[-1])  # a line redrawn in place shows its last drawing
    return child.exitstatus, "\n".join(lines)


# --- the demo -------------------------------------------------------------------------------------


def _cut_diff(log: str) -> str:
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("--- a/"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("sandbox rerun:"))
    return "\n".join(lines[start:end])


def _cut_yaml(log: str) -> str:
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("the locked regression case")) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("─"))
    return "\n".join(lines[start:end])


def _cut_undo(log: str) -> str:
    line = next(line for line in log.splitlines() if line.startswith("undo "))
    return line[len("undo") :].strip()


def _check_demo(root: Path, log: str) -> None:
    repo = root / "repo"
    state = load_state(repo)
    assert state is not None and state.outcome == "healed" and state.proposal is not None
    assert state.applied is not None and state.case_path is not None

    diff = _cut_diff(log)
    assert diff == state.proposal.diff.rstrip("\n")
    # The diff cut from the log is the fix in the working tree: git can take it back out.
    patch = root / "cut.diff"
    patch.write_text(diff + "\n", encoding="utf-8")
    subprocess.run(["git", "apply", "-R", "--check", str(patch)], cwd=repo, check=True, capture_output=True)

    case_text = (repo / state.case_path).read_text(encoding="utf-8")
    assert yaml.safe_load(_cut_yaml(log)) == yaml.safe_load(case_text)

    undo = _cut_undo(log)
    assert undo == state.applied["undo"]
    subprocess.run(undo, shell=True, cwd=repo, check=True, capture_output=True)  # the command works as cut
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=repo, capture_output=True, text=True, check=True)
    assert changed.stdout.strip() == ""  # the fix is undone: the tree is the deployed commit again

    looks = [line.strip() for line in log.splitlines() if line.strip().startswith(("tracemend ", "cd "))]
    assert f"tracemend analyze --db {root / 'traces.db'}" in looks


def test_demo_piped_at_80_columns_can_be_copied_from(tmp_path: Path) -> None:
    code, log = piped("demo", "--dir", str(tmp_path), columns=80)
    assert code == 0, log
    _check_demo(tmp_path, log)


@pytest.mark.parametrize("columns", [80, 200])
def test_demo_in_a_terminal_can_be_copied_from(tmp_path: Path, columns: int) -> None:
    code, screen = in_a_terminal("demo", "--dir", str(tmp_path), columns=columns)
    assert code == 0, screen
    _check_demo(tmp_path, screen)


# --- analyze --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ci-log") / "traces.db"
    with Store(path) as store:
        store.add_traces(traffic(deploy=deploy_time(), per_hour=60, regression_rate=0.4, failure_rate=0.06, seed=5))
    return path


def _expected(db: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "tracemend", "analyze", "--json", "--db", str(db)],
        capture_output=True, text=True, env=_env(80), timeout=120,
    )
    findings = json.loads(out.stdout)["findings"]
    assert any(f["p_value"] < 1e-9 for f in findings)  # a p-value a width squeeze used to cut
    assert any(len(f["signature"]["template"]) > 80 for f in findings)  # a template wider than the log
    return findings


def _p(value: float) -> str:
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _words(text: str) -> str:
    return " ".join(text.split())


def _check_analysis(findings: list[dict], shown: str, *, one_line_templates: bool) -> None:
    tokens = shown.split()
    for finding in findings:
        assert _p(finding["p_value"]) in tokens and _p(finding["q_value"]) in tokens
        template = finding["signature"]["template"]
        if one_line_templates:
            assert any(line.strip().endswith(template) or template in line for line in shown.splitlines())
        assert _words(template) in _words(shown)
        for trace_id in finding["example_trace_ids"]:
            assert trace_id[:12] in tokens


def test_analyze_piped_at_80_columns_shows_whole_headers_p_values_and_templates(regression_db: Path) -> None:
    findings = _expected(regression_db)
    code, log = piped("analyze", "--db", str(regression_db), columns=80)
    assert code == 1, log
    header = next(line for line in log.splitlines() if line.startswith("verdict"))
    for name in HEADERS:
        assert f"  {name}  " in f"  {header}  "  # each header whole, in one table header line
    _check_analysis(findings, log, one_line_templates=True)


@pytest.mark.parametrize("columns", [80, 200])
def test_analyze_in_a_terminal_shows_whole_headers_p_values_and_templates(
    regression_db: Path, columns: int
) -> None:
    findings = _expected(regression_db)
    code, screen = in_a_terminal("analyze", "--db", str(regression_db), columns=columns)
    assert code == 1, screen
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= columns  # sized to the terminal, not wider
    for name in HEADERS:
        assert any(f"  {name}  " in f"  {line}  " for line in lines), name
    _check_analysis(findings, screen, one_line_templates=False)


def test_signatures_piped_keep_every_column_whole(regression_db: Path) -> None:
    code, log = piped("signatures", "--db", str(regression_db), columns=80)
    assert code == 0
    header, *rows = log.splitlines()
    assert header.split() == ["signature", "type", "@", "frame", "template", "count", "first", "seen", "last", "seen", "first", "revision"]
    listed = subprocess.run(
        [sys.executable, "-m", "tracemend", "signatures", "--json", "--db", str(regression_db)],
        capture_output=True, text=True, env=_env(80), timeout=120,
    ).stdout.splitlines()
    assert len(rows) == len(listed)
    for row, item in zip(rows, (json.loads(x) for x in listed), strict=True):
        assert item["signature"]["template"] in row and row.split()[0] == item["signature"]["signature_id"][:10]
        assert str(item["count"]) in row.split()
