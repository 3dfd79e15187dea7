"""The judge names the kind of failure when asked (online judging), and only then."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tracemend.assertions import VerdictCache, judge
from tracemend.assertions.judging import (
    CATEGORY_PROMPT_VERSION,
    JUDGE_PROMPT_VERSION,
    SYSTEM_PROMPT,
    build_messages,
)
from tracemend.testing import chat_body

RULE = "The reply never approves a refund for an order older than 30 days."
BAD = "Your refund for the 45-day-old order is approved."


def _fail(request: dict) -> dict:
    return chat_body(
        json.dumps({"reasoning": "Approves it.", "verdict": "FAIL", "category": "ignores refund window"})
    )


def test_the_suite_prompt_is_unchanged_and_asks_no_category() -> None:
    plain = build_messages(BAD, RULE, input={"days": 45})
    assert plain[0]["content"] == SYSTEM_PROMPT.format(
        code=plain[0]["content"].split("code ")[1].split(".")[0]
    )
    assert "category" not in plain[0]["content"]
    asked = build_messages(
        BAD, RULE, input={"days": 45}, categorize=True, categories=["ignores refund window"]
    )
    assert '"category"' in asked[0]["content"] and "2 to 6 words" in asked[0]["content"]
    assert plain[1]["content"] in asked[1]["content"]
    assert CATEGORY_PROMPT_VERSION != JUDGE_PROMPT_VERSION


def test_a_failing_verdict_carries_its_category_and_the_cache_keeps_it(tmp_path: Path, loopback) -> None:
    loopback.responder = _fail
    cache_path = tmp_path / "cache.db"
    with VerdictCache(cache_path) as cache:
        first = judge(BAD, RULE, input={"days": 45}, model="openai/judge", cache=cache, categorize=True)
    assert first.assertions[0].category == "ignores refund window" and not first.passed
    with VerdictCache(cache_path) as cache:
        again = judge(BAD, RULE, input={"days": 45}, model="openai/judge", cache=cache, categorize=True)
        # The regression suite's verdict of the same output is another entry (another prompt).
        suite = judge(BAD, RULE, input={"days": 45}, model="openai/judge", cache=cache)
    assert again.cached and again.assertions[0].category == "ignores refund window"
    assert suite.assertions[0].category is None and not suite.cached
    assert loopback.request_count == 2
    # Older tracemend versions read and write the verdicts table as it always was (ten columns).
    conn = sqlite3.connect(cache_path)
    assert len(conn.execute("PRAGMA table_info(verdicts)").fetchall()) == 10
    conn.execute(
        "INSERT INTO verdicts VALUES (?,?,?,?,?,?,?,?,?,?)", ("k", "m", "1", "a", "o", "i", 0, 1, "r", "t")
    )
    conn.close()


def test_a_passing_verdict_or_an_answer_without_category_has_none(loopback) -> None:
    loopback.responder = lambda request: chat_body(json.dumps({"reasoning": "Fine.", "verdict": "PASS"}))
    ok = judge("Refunds within 30 days only.", RULE, model="openai/judge", cache=None, categorize=True)
    assert ok.passed and ok.assertions[0].category is None
    loopback.responder = lambda request: chat_body(
        json.dumps({"reasoning": "No.", "verdict": "FAIL", "category": None})
    )
    bad = judge(BAD, RULE, model="openai/judge", cache=None, categorize=True)
    assert not bad.passed and bad.assertions[0].category is None and bad.assertions[0].error is None
