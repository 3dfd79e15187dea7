"""The diagnosing agent's loop against a loopback OpenAI-compatible server (real litellm HTTP path), its
confined tools, edit retries, budgets, and the sandbox verification of what it proposes."""

from __future__ import annotations

import os

import pytest

from tracemend.analyze.ungated import finding_from_store
from tracemend.diagnose import Budget, RepoTools, diagnose
from tracemend.diagnose.request import request_for_build_log, request_for_finding
from tracemend.store import Store

from helpers.diagnose import BUGGY_LINE, FIXED_LINE, AgentRepo, by_turn, fix_script, text, tool_call

SECRET = "TOP-SECRET-OUTSIDE-THE-REPO"


def _request(repo: AgentRepo, **kw):
    with Store(repo.db, create=False) as store:
        return request_for_finding(finding_from_store(store, trace_id=repo.failing[0]), store, repo.root, **kw)


@pytest.fixture
def secret_outside(agent_repo: AgentRepo):
    secret = agent_repo.root.parent / "secret.txt"
    secret.write_text(SECRET + "\n")
    os.symlink(secret, agent_repo.root / "shopbot" / "notes.txt")  # a symlink that escapes the repository
    return secret


# --- tools --------------------------------------------------------------------------------------------


def test_tools_read_with_line_ranges_and_search(agent_repo: AgentRepo) -> None:
    tools = RepoTools(root=agent_repo.root)
    out = tools.call("read_file", {"path": "shopbot/pricing.py", "start_line": 8, "end_line": 9})
    assert "    9      return COUPONS[coupon.upper()]" in out and "lines 8-9 of" in out
    assert "def total_price" not in out
    hits = tools.call("search_repo", {"pattern": r"COUPONS\[", "glob": "*.py"})
    assert hits.startswith("shopbot/pricing.py:9:")
    assert "README.md" not in tools.call("search_repo", {"pattern": "shopbot", "glob": "*.py"})
    listing = tools.call("list_files", {"path": "shopbot"}).splitlines()
    assert "shopbot/pricing.py" in listing and not any(
        ".git/" in x for x in tools.call("list_files", {}).splitlines()
    )


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "/etc/passwd", "shopbot/notes.txt", "shopbot/../../secret.txt", ".git/config", "~/x"],
)
def test_tools_refuse_paths_outside_the_repository(agent_repo: AgentRepo, secret_outside, path: str) -> None:
    out = RepoTools(root=agent_repo.root).call("read_file", {"path": path})
    assert out.startswith("error:")
    assert SECRET not in out


def test_escaping_symlinks_are_neither_listed_nor_searched(agent_repo: AgentRepo, secret_outside) -> None:
    tools = RepoTools(root=agent_repo.root)
    assert "shopbot/notes.txt" not in tools.call("list_files", {})
    assert tools.call("search_repo", {"pattern": "TOP-SECRET"}) == "no matches"


def test_tools_report_bad_arguments_as_text(agent_repo: AgentRepo) -> None:
    tools = RepoTools(root=agent_repo.root)
    assert tools.call("run_shell", {"cmd": "rm -rf /"}).startswith("error: unknown tool")
    assert tools.call("read_file", {"path": 7}).startswith("error:")
    assert tools.call("read_file", {"path": "shopbot/pricing.py", "start_line": 500}).startswith("error:")
    assert tools.call("search_repo", {"pattern": "("}).startswith("(not a valid regex")
    assert tools.call("show_trace", {"trace_id": "ffff"}).startswith("error: no trace")


# --- the loop -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_agent_finds_and_verifies_the_fix(agent_repo: AgentRepo, loopback) -> None:
    req = _request(agent_repo)
    loopback.script = fix_script(agent_repo.failing[0])
    before = agent_repo.snapshot()
    result = diagnose(req, model=loopback.model)
    assert result.stop == "proposed", result.log
    p = result.proposal
    assert p is not None and not p.scripted
    assert f"-{BUGGY_LINE}" in p.diff and f"+{FIXED_LINE}" in p.diff
    assert p.touched_files == ["shopbot/pricing.py"] and p.locations == ["shopbot/pricing.py:9"]
    assert p.trace_ids[0] == agent_repo.failing[0] and p.signature_id
    assert "An unknown coupon gives no discount and no error" in p.suggested_assertions
    # The tools answered with the real trace and the real source.
    tool_out = "\n".join(loopback.tool_messages())
    assert "KeyError" in tool_out and "'BOGUS'" in tool_out
    assert "9      return COUPONS[coupon.upper()]" in tool_out
    # The sandbox reran both failing inputs and the passing sample: all fixed, nothing broken.
    assert p.comparison is not None and p.comparison.verdict == "fixed"
    changes = {i.source_trace_id: i.change for i in p.comparison.items}
    assert {changes[t] for t in agent_repo.failing} == {"fixed"}
    assert set(agent_repo.passing) <= set(changes) and {changes[t] for t in agent_repo.passing} == {
        "unchanged_ok"
    }
    assert agent_repo.snapshot() == before  # nothing touched the working tree
    assert len(loopback.requests) == 3 and all(r.get("tools") for r in loopback.requests)


def test_requests_for_files_outside_the_repo_are_refused(
    agent_repo: AgentRepo, loopback, secret_outside
) -> None:
    loopback.script = by_turn(
        [
            tool_call("read_file", path="../secret.txt"),
            tool_call("read_file", path=str(secret_outside)),
            tool_call("read_file", path="shopbot/notes.txt"),
            tool_call("search_repo", pattern="TOP-SECRET"),
            fix_script(agent_repo.failing[0])({}, 2),
        ]
    )
    result = diagnose(_request(agent_repo), model=loopback.model, verify=False)
    assert result.stop == "proposed"
    refusals = loopback.tool_messages()[:4]
    assert "outside the repository" in refusals[0]
    assert "absolute paths are outside the repository" in refusals[1]
    assert "outside the repository" in refusals[2]
    assert refusals[3] == "no matches"
    assert SECRET not in loopback.all_text()


def test_a_model_that_loops_forever_stops_at_the_step_budget(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = by_turn([tool_call("list_files", path=".")])
    result = diagnose(_request(agent_repo), model=loopback.model, budget=Budget(max_steps=5), verify=False)
    assert result.stop == "step_budget" and result.proposal is None
    assert len(loopback.requests) == 5
    assert "step budget" in result.log[-1]


def test_the_token_budget_stops_the_loop(agent_repo: AgentRepo, loopback) -> None:
    loopback.tokens_per_call = 5000
    loopback.script = by_turn([tool_call("search_repo", pattern="def ")])
    budget = Budget(max_steps=50, max_tokens=12_000)
    result = diagnose(_request(agent_repo), model=loopback.model, budget=budget, verify=False)
    assert result.stop == "token_budget" and len(loopback.requests) == 3 and result.tokens == 15_000


def test_text_answers_are_nudged_toward_tools(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = by_turn(
        [text("I think it is the coupon code."), fix_script(agent_repo.failing[0])({}, 2)]
    )
    result = diagnose(_request(agent_repo), model=loopback.model, verify=False)
    assert result.stop == "proposed"
    assert "call propose_fix" in loopback.requests[1]["messages"][-1]["content"]


def _propose(edits: str):
    return tool_call("propose_fix", root_cause="pricing.py:9 raises KeyError", edits=edits)


def test_malformed_and_missing_edits_are_fed_back_with_did_you_mean(agent_repo: AgentRepo, loopback) -> None:
    unterminated = "shopbot/pricing.py\n<<<<<<< SEARCH\n    return COUPONS[coupon.upper()]\n=======\n"
    wrong_search = (
        "shopbot/pricing.py\n<<<<<<< SEARCH\n    return COUPONS[coupon.lower()]\n=======\n"
        "    return COUPONS.get(coupon.lower(), 0.0)\n>>>>>>> REPLACE\n"
    )
    right = f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n{FIXED_LINE}>>>>>>> REPLACE\n"
    loopback.script = by_turn([_propose(unterminated), _propose(wrong_search), _propose(right)])
    result = diagnose(_request(agent_repo), model=loopback.model, verify=False)
    assert result.stop == "proposed", result.log
    feedback = loopback.tool_messages()
    assert feedback[0].startswith("Malformed edits:") and "REPLACE" in feedback[0]
    assert "did you mean (line 9)" in feedback[1] and "COUPONS[coupon.upper()]" in feedback[1]
    assert f"+{FIXED_LINE}" in result.proposal.diff


def test_edits_that_never_apply_stop_after_bounded_retries(agent_repo: AgentRepo, loopback) -> None:
    loopback.script = by_turn([_propose("no blocks here at all")])
    result = diagnose(
        _request(agent_repo), model=loopback.model, budget=Budget(max_edit_retries=2), verify=False
    )
    assert result.stop == "edit_retries" and result.proposal is None
    assert len(loopback.requests) == 2
    assert "No SEARCH/REPLACE blocks" in loopback.tool_messages()[0]


def test_edits_that_do_not_compile_or_escape_are_refused(agent_repo: AgentRepo, loopback) -> None:
    broken = f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n    return COUPONS.get(coupon.upper(), 0.0\n>>>>>>> REPLACE\n"
    escape = "../evil.py\n<<<<<<< SEARCH\n=======\nprint('pwned')\n>>>>>>> REPLACE\n"
    right = f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n{FIXED_LINE}>>>>>>> REPLACE\n"
    loopback.script = by_turn([_propose(broken), _propose(escape), _propose(right)])
    result = diagnose(_request(agent_repo), model=loopback.model, verify=False)
    assert result.stop == "proposed"
    feedback = loopback.tool_messages()
    assert "compile" in feedback[0].lower() or "syntax" in feedback[0].lower()
    assert feedback[1].startswith("Edits refused")
    assert not (agent_repo.root.parent / "evil.py").exists()


@pytest.mark.slow
def test_an_edit_that_does_not_fix_the_failure_is_reported_not_fixed(agent_repo: AgentRepo, loopback) -> None:
    cosmetic = (
        "shopbot/pricing.py\n<<<<<<< SEARCH\n    return round(subtotal * (1 - discount_rate(coupon)), 2)\n=======\n"
        "    return round(subtotal * (1.0 - discount_rate(coupon)), 2)\n>>>>>>> REPLACE\n"
    )
    loopback.script = fix_script(agent_repo.failing[0], edits=cosmetic)
    result = diagnose(_request(agent_repo), model=loopback.model)
    assert result.stop == "proposed"
    comparison = result.proposal.comparison
    assert comparison is not None and comparison.verdict == "not_fixed"
    assert {i.change for i in comparison.items if i.was_failing} == {"still_failing"}


def test_request_by_signature_gathers_the_failures(agent_repo: AgentRepo) -> None:
    with Store(agent_repo.db, create=False) as store:
        by_trace = request_for_finding(
            finding_from_store(store, trace_id=agent_repo.failing[0]), store, agent_repo.root
        )
        by_sig = request_for_finding(
            finding_from_store(store, signature=by_trace.signature_id[:8]), store, agent_repo.root
        )
    assert {t.trace_id for t in by_sig.failing} == set(agent_repo.failing)
    assert {t.trace_id for t in by_trace.failing} == set(agent_repo.failing)
    assert len(by_sig.passing) == 3 and all(t.status == "ok" for t in by_sig.passing)
    assert "COUPONS[coupon.upper()]" in by_sig.suspect_diff


def test_build_log_goes_straight_to_diagnosis(agent_repo: AgentRepo, loopback, tmp_path) -> None:
    log = tmp_path / "build.log"
    log.write_text(
        "Collecting shopbot\n  File 'shopbot/pricing.py', line 9\nKeyError: 'X'\nERROR: build failed\n"
    )
    req = request_for_build_log(agent_repo.root, log)
    assert req.failing == [] and "COUPONS[coupon.upper()]" in req.suspect_diff
    right = f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n{FIXED_LINE}>>>>>>> REPLACE\n"
    loopback.script = by_turn([tool_call("show_suspect_diff"), _propose(right)])
    result = diagnose(req, model=loopback.model)
    assert result.stop == "proposed" and result.proposal.comparison is None
    first = loopback.requests[0]["messages"][1]["content"]
    assert "ERROR: build failed" in first
    assert "COUPONS[coupon.upper()]" in loopback.tool_messages()[0]
