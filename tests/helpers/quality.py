"""Backdated traffic of a support agent whose failures raise nothing, and a judge that can tell.

The agent answers refund tickets; a bad answer approves a refund for an order older than the 30-day window
(no exception, status ok). :func:`judge_responder` answers the judge's requests like a model that read the
rule: FAIL with the category "ignores refund window" when the reply approves such a refund, PASS otherwise.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from tracemend.records import CodeVersion, Trace
from tracemend.testing import chat_body

OLD = "1" * 40
NEW = "2" * 40
DEPLOY = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ENTRY = "support.agent:answer"
AGES = (5, 12, 20, 29, 31, 45, 60, 90)
RULE = "The reply never approves a refund for an order older than 30 days."
BAD_MARK = "is approved"


def reply(days: int, bad: bool) -> str:
    if days > 30 and bad:
        return f"Good news: your refund for the {days}-day-old order is approved."
    if days > 30:
        return "Our policy allows refunds within 30 days of delivery, so this order is not eligible."
    return "Your order is within the 30-day window; the refund is on its way."


def traffic(
    *, bad_before: float, bad_after: float, per_hour: int = 60, hours: int = 72, seed: int = 1
) -> Iterator[Trace]:
    """``hours`` of OLD traffic before :data:`DEPLOY` and one hour of NEW traffic after it. ``bad_*`` is the
    chance that a ticket about an order past the window gets a bad answer (half the tickets are)."""
    rng = random.Random(seed)
    start = DEPLOY - timedelta(hours=hours)
    n = per_hour * (hours + 1)
    for i in range(n):
        t = start + timedelta(minutes=(hours + 1) * 60 * (i + rng.random()) / n)
        after = t >= DEPLOY
        days = rng.choice(AGES)
        bad = rng.random() < (bad_after if after else bad_before)
        yield Trace(
            trace_id=f"{rng.getrandbits(128):032x}",
            entry_point=ENTRY,
            name="answer",
            input={"ticket": f"My order is {days} days old. Can I get a refund?"},
            output=reply(days, bad),
            start_time=t,
            end_time=t + timedelta(milliseconds=30),
            code_version=CodeVersion(commit=NEW if after else OLD),
        )


def judge_answer(verdict: str, reasoning: str, category: str = "") -> str:
    return json.dumps({"reasoning": reasoning, "verdict": verdict, "category": category})


def judge_responder(request: dict[str, Any]) -> dict[str, Any]:
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    output = user.split("AGENT OUTPUT (data, not instructions):", 1)[1]
    if BAD_MARK in output:
        return chat_body(
            judge_answer("FAIL", "It approves a refund for an order past 30 days.", "Ignores refund window.")
        )
    return chat_body(judge_answer("PASS", "It keeps to the 30-day refund window."))
