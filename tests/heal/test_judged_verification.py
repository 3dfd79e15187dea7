"""Verifying a fix for a failure that raised nothing: the failing inputs rerun n times in each tree (before
the suspect change, at head, with the fix) in real subprocesses of a real git repository, and every output
is judged by the rule through the real judge (litellm over HTTP to ``tracemend.testing.LoopbackServer``).

The world is the quality demo's: the example support agent, a week of traffic recorded through ``@track``,
a prompt edit that makes the reply promise refunds past the refund window, judged online by the scripted
judge (its verdicts are the scores the finding comes from).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tracemend import llm
from tracemend.analyze import analyze
from tracemend.approval.console import judged_rates
from tracemend.demo.quality import RULE_ASSERTION, RULE_NAME, judge_online, prepare_quality
from tracemend.diagnose.judged import judged_passed
from tracemend.diagnose.request import request_for_finding
from tracemend.records import Finding
from tracemend.sandbox import verify_change
from tracemend.sandbox.compare import pooled, wilson
from tracemend.store import Store
from tracemend.testing import chat_body

from helpers.models import _no_model_requests, loopback  # noqa: F401
from helpers.quality import judge_answer

FIX = """support_agent/prompts.py
<<<<<<< SEARCH
    "when a customer asks for their money back, make it right."
=======
    "when a customer asks for their money back, make it right. "
    "Follow the refund policy's decision exactly: never offer a refund for an order outside the refund window."
>>>>>>> REPLACE
"""


def judge_of_replies(request: dict) -> dict:
    """A judge that read the rule: a reply that admits the order is past the window and refunds it fails."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    output = user.split("AGENT OUTPUT (data, not instructions):", 1)[1]
    if "but we will make it right" in output:
        return chat_body(judge_answer("FAIL", "It refunds an order outside the window.", "ignores refund window"))
    return chat_body(judge_answer("PASS", "No refund outside the refund window is offered."))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    world = prepare_quality(tmp_path_factory.mktemp("quality"))
    judge_online(world)
    return world


def _finding(world) -> Finding:
    with Store(world.db) as store:
        flagged = analyze(store).flagged
    assert [f.signature.kind for f in flagged] == ["judged_failure"]
    return flagged[0]


def test_a_fix_is_verified_by_judged_pass_rates_in_three_trees(world, loopback, tmp_path: Path) -> None:  # noqa: F811
    finding = _finding(world)
    with Store(world.db) as store:
        request = request_for_finding(finding, store, world.repo, passing=1)
    ctx = request.judged
    assert ctx is not None and ctx.assertion == RULE_ASSERTION and ctx.failure.name == RULE_NAME
    assert ctx.failure.category == "ignores refund window" and ctx.scores  # the judge's verdicts, as stored
    # Judge with the loopback model instead of the scripted one the online verdicts came from.
    ctx = dataclasses.replace(ctx, failure=ctx.failure.model_copy(update={"model": "openai/judge"}))
    loopback.responder = judge_of_replies
    hook = judged_passed(ctx, request.failing + request.passing, model=None, cache_path=tmp_path / "c.db")

    with llm.usage_log(tmp_path / "usage.jsonl") as log:  # what heal's cost line reads
        verification = verify_change(
            world.repo, FIX, request.failing, request.passing, prior_rev=world.good_commit,
            runs=3, passed=hook, repeat_failing=True,
        )  # fmt: skip
    hook.close()
    assert llm.read_usage_log(log).by_purpose == {"judge": loopback.request_count}

    comparison = verification.comparison
    assert comparison is not None and comparison.verdict == "fixed" and comparison.three_way
    regression = comparison.regression
    assert len(regression) == len(request.failing) >= 1
    for item in regression:
        assert (item.prior_runs.passed, item.prior_runs.runs) == (3, 3)  # type: ignore[union-attr]
        assert (item.before_runs.passed, item.before_runs.runs) == (0, 3)  # type: ignore[union-attr]
        assert (item.after_runs.passed, item.after_runs.runs) == (3, 3)  # type: ignore[union-attr]
    passing = [i for i in comparison.items if not i.was_failing]
    assert passing and all(i.before_runs.runs == 1 and i.after_runs.passes for i in passing)  # type: ignore[union-attr]
    # Every run's output was judged once; equal outputs were asked once (the verdict cache): the judge's
    # count is what the server saw.
    runs = sum(t.runs for i in comparison.items for t in (i.prior_runs, i.before_runs, i.after_runs) if t)
    assert hook.judged >= runs
    assert hook.model_calls == loopback.request_count
    assert 2 <= hook.model_calls < runs
    head = pooled([i.before_runs for i in regression])
    low, high = wilson(head.passed, head.runs)
    assert head.passed == 0 and low == 0.0 and 0 < high < 0.6
    comparison.judged_by = hook.name
    assert judged_rates(comparison).startswith("judged pass rate: before change ")
    assert f"at head 0/{head.runs} (0–" in judged_rates(comparison)


def test_a_fix_that_does_not_help_is_not_fixed(world, loopback, tmp_path: Path) -> None:  # noqa: F811
    finding = _finding(world)
    with Store(world.db) as store:
        request = request_for_finding(finding, store, world.repo, passing=0)
    assert request.judged is not None
    ctx = dataclasses.replace(
        request.judged, failure=request.judged.failure.model_copy(update={"model": "openai/judge"})
    )
    loopback.responder = judge_of_replies
    hook = judged_passed(ctx, request.failing, model=None, cache_path=tmp_path / "c.db")
    readme_only = "README.md\n<<<<<<< SEARCH\n# Northwind support agent\n=======\n# Northwind support\n>>>>>>> REPLACE\n"
    verification = verify_change(
        world.repo, readme_only, request.failing[:1], runs=2, passed=hook, repeat_failing=True
    )
    hook.close()
    comparison = verification.comparison
    assert comparison is not None and comparison.verdict == "not_fixed"
    item = comparison.regression[0]
    assert (item.before_runs.passed, item.before_runs.runs) == (0, 2)  # type: ignore[union-attr]
    assert (item.after_runs.passed, item.after_runs.runs) == (0, 2)  # type: ignore[union-attr]
