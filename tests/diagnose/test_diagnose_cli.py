"""``tracemend diagnose`` and ``tracemend triage`` as a person (a real pseudo-terminal) and CI use them.

Each test spawns the real CLI against a real git repository and store; the model is a loopback
OpenAI-compatible server in this process answering with scripted tool calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from helpers.diagnose import BUGGY_LINE, FIXED_LINE, AgentRepo, by_turn, fix_script, git, text

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TRACEMEND = str(Path(sys.executable).with_name("tracemend"))
COSMETIC = (
    "shopbot/pricing.py\n<<<<<<< SEARCH\n    return round(subtotal * (1 - discount_rate(coupon)), 2)\n=======\n"
    "    return round(subtotal * (1.0 - discount_rate(coupon)), 2)\n>>>>>>> REPLACE\n"
)


def _env(repo: AgentRepo, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRACEMEND_DB": str(repo.db),
        "TERM": "dumb",  # plain text, so the transcript can be matched
        "COLUMNS": "110",
        "EDITOR": "false",
        **extra,
    }


def _spawn(repo: AgentRepo, lb, *args: str, **env: str) -> pexpect.spawn:
    child = pexpect.spawn(
        TRACEMEND,
        ["diagnose", *args, "--model", lb.model],
        cwd=str(repo.root),
        env=_env(repo, **env),
        encoding="utf-8",
        timeout=60,
        dimensions=(60, 110),
    )
    return child


def _run(repo: AgentRepo, lb, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRACEMEND, "diagnose", *args, "--model", lb.model],
        cwd=repo.root,
        env=_env(repo),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


PROMPT = r"\[a\]pprove  \[r\]eject  \[e\]dit  show \[t\]race  \[q\]uit > "


def test_approve_after_looking_at_the_trace_applies_to_the_working_tree(
    agent_repo: AgentRepo, loopback
) -> None:
    loopback.script = fix_script(agent_repo.failing[0])
    child = _spawn(agent_repo, loopback, agent_repo.failing[0][:12])
    child.expect("root cause")
    child.expect("shopbot/pricing.py:9 looks coupons up")
    child.expect(r"\+    return COUPONS\.get\(coupon\.upper\(\), 0\.0\)")
    child.expect("sandbox rerun: fixed")
    child.expect("An unknown coupon gives no discount and no error")
    child.expect(PROMPT)
    assert (agent_repo.root / "shopbot/pricing.py").read_text().count(BUGGY_LINE) == 1  # nothing applied yet
    child.sendline("t")
    child.expect(f"trace {agent_repo.failing[0][:12]}")
    child.expect("KeyError")
    child.expect(PROMPT)
    child.sendline("maybe")
    child.expect("unknown answer 'maybe'")
    child.expect(PROMPT)
    child.sendline("a")
    child.expect(r"done: applied to the working tree: shopbot/pricing\.py")
    child.expect(r"undo: git apply -R (\S+)")
    saved = child.match.group(1).strip()
    child.expect("lock it: tracemend lock")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert FIXED_LINE in (agent_repo.root / "shopbot/pricing.py").read_text()
    # The printed undo command restores the file exactly.
    subprocess.run(["git", "apply", "-R", saved], cwd=agent_repo.root, check=True)
    assert git(agent_repo.root, "status", "--porcelain", "--untracked-files=no") == ""


def test_reject_changes_nothing(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    child = _spawn(agent_repo, loopback, agent_repo.failing[0])
    child.expect(PROMPT)
    child.sendline("r")
    child.expect("rejected: nothing was changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert agent_repo.snapshot() == before


def test_edit_in_editor_reverifies_then_commits_on_a_branch(
    agent_repo: AgentRepo, loopback, tmp_path
) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('0.0)\\n', '0.0)  # unknown coupons: no discount\\n', 1))\n"
    )
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    child = _spawn(
        agent_repo,
        loopback,
        agent_repo.failing[0],
        "--branch",
        "fix/coupons",
        EDITOR=f"{sys.executable} {editor}",
    )
    child.expect(PROMPT)
    child.sendline("e")
    child.expect("verifying the edited diff in the sandbox")
    child.expect("edited diff verified in the sandbox: fixed")
    child.expect(r"# unknown coupons: no discount")
    child.expect(PROMPT)
    child.sendline("a")
    child.expect(r"done: committed ([0-9a-f]{10}) on new branch fix/coupons")
    sha = child.match.group(1)
    child.expect("undo: git branch -D fix/coupons")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert agent_repo.snapshot() == before  # the checkout is untouched: the fix lives on the branch
    assert git(agent_repo.root, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    message = git(agent_repo.root, "log", "-1", "--format=%B", "fix/coupons")
    assert git(agent_repo.root, "rev-parse", "fix/coupons").startswith(sha)
    assert "Signature: " in message and agent_repo.failing[0] in message and "Sandbox rerun: fixed" in message
    committed = git(agent_repo.root, "show", "fix/coupons:shopbot/pricing.py")
    assert "COUPONS.get(coupon.upper(), 0.0)  # unknown coupons: no discount" in committed


def test_a_proposal_the_sandbox_did_not_confirm_is_shown_as_not_fixed(
    agent_repo: AgentRepo, loopback
) -> None:
    loopback.script = fix_script(agent_repo.failing[0], edits=COSMETIC)
    child = _spawn(agent_repo, loopback, agent_repo.failing[0])
    child.expect("sandbox rerun: not_fixed")
    child.expect("still_failing")
    child.expect("the sandbox did not confirm this fix")
    child.expect(PROMPT)
    child.sendline("q")
    child.expect("quit: nothing was changed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_yes_applies_only_a_verified_fix(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = fix_script(agent_repo.failing[0], edits=COSMETIC)
    refused = _run(agent_repo, loopback, agent_repo.failing[0], "--yes")
    assert (
        refused.returncode == 1
        and "--yes needs the sandbox verdict 'fixed' (got not_fixed)" in refused.stderr
    )
    assert BUGGY_LINE in (agent_repo.root / "shopbot/pricing.py").read_text()
    loopback.script = fix_script(agent_repo.failing[0])
    done = _run(agent_repo, loopback, agent_repo.failing[0], "--yes")
    assert done.returncode == 0, done.stderr
    assert "done: applied to the working tree" in done.stdout
    assert FIXED_LINE in (agent_repo.root / "shopbot/pricing.py").read_text()


def test_no_input_prints_the_proposal_and_fails(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    out = _run(agent_repo, loopback, agent_repo.failing[0], "--no-input")
    assert out.returncode == 1
    assert (
        "+    return COUPONS.get(coupon.upper(), 0.0)" in out.stdout and "sandbox rerun: fixed" in out.stdout
    )
    assert "not applied (--no-input)" in out.stderr
    assert agent_repo.snapshot() == before


def test_without_a_terminal_or_flag_it_never_waits(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    out = _run(agent_repo, loopback, agent_repo.failing[0])  # stdin is /dev/null, no --yes/--no-input
    assert out.returncode == 1
    assert "no terminal to ask on; use --yes or --no-input" in out.stderr
    assert agent_repo.snapshot() == before


def test_usage_errors_exit_2(agent_repo: AgentRepo, loopback) -> None:
    out = _run(agent_repo, loopback)
    assert out.returncode == 2 and "give exactly one of" in out.stderr
    out = _run(agent_repo, loopback, "ffffffffffff")
    assert out.returncode == 2 and "no trace 'ffffffffffff'" in out.stderr


def test_triage_command_prints_the_verdict_and_next_step(agent_repo: AgentRepo, loopback) -> None:
    answer = {"decision": "investigate", "confidence": 0.9, "reasoning": "The lookup now raises KeyError."}
    loopback.script = by_turn([text(json.dumps(answer))])
    out = subprocess.run(
        [TRACEMEND, "triage", "--trace", agent_repo.failing[0], "--model", loopback.model],
        cwd=agent_repo.root,
        env=_env(agent_repo),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "shopbot/pricing.py" in out.stdout and "runtime" in out.stdout and "docs" in out.stdout
    assert "caused by this change" in out.stdout and "decision investigate, confidence 90%" in out.stdout
    assert "Fix forward" in out.stdout and "next: tracemend diagnose --signature" in out.stdout


def test_end_of_input_at_the_prompt_quits_without_changes(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    child = _spawn(agent_repo, loopback, agent_repo.failing[0])
    child.expect(PROMPT)
    child.sendeof()
    child.expect("end of input: nothing applied")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert agent_repo.snapshot() == before


def test_build_log_in_ci(agent_repo: AgentRepo, loopback, tmp_path) -> None:
    from helpers.diagnose import tool_call

    log = tmp_path / "pip-install.log"
    log.write_text(
        "Processing ./shopbot\nTraceback (most recent call last):\nKeyError: 'BOGUS'\nerror: build failed\n"
    )
    right = f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n{FIXED_LINE}>>>>>>> REPLACE\n"
    loopback.script = by_turn(
        [
            tool_call("show_suspect_diff"),
            tool_call("propose_fix", root_cause="pricing.py:9 KeyError", edits=right),
        ]
    )
    out = _run(agent_repo, loopback, "--build-log", str(log), "--no-input")
    assert out.returncode == 1
    assert "diagnosing build failure: error: build failed" in out.stderr
    assert "sandbox rerun: applies and compiles" in out.stdout and f"+{FIXED_LINE.rstrip()}" in out.stdout
    assert "error: build failed" in loopback.requests[0]["messages"][1]["content"]
