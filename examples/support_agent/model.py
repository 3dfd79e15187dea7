"""The agent's model steps. ``model="offline"`` answers with a deterministic keyword policy (scripted);
any other model id is a litellm model, called through tracemend's model-access layer.

The offline reply step stands in for a model following its instructions (``prompts.REPLY_PROMPT``): it keeps
to the refund policy's decision only while the prompt tells it to, as a real model drifts when a prompt edit
drops a rule (``tracemend demo --scenario quality`` deploys such an edit)."""

from __future__ import annotations

import json
import re

import tracemend

from .config import SupportConfig
from .prompts import REPLY_PROMPT

ORDER_ID = re.compile(r"#?\b([A-Za-z]\d{4})\b")


def _offline_plan(message: str) -> dict[str, object]:
    text = message.lower()
    match = ORDER_ID.search(message)
    order_id = match.group(1) if match else None
    if order_id and any(w in text for w in ("refund", "return", "money back")):
        return {"intent": "refund", "order_id": order_id}
    if order_id:
        return {"intent": "order_status", "order_id": order_id}
    return {"intent": "faq", "query": message}


@tracemend.track(kind="llm", name="plan")
def plan(message: str, config: SupportConfig) -> dict[str, object]:
    """Which intent the ticket has and which tool arguments it names."""
    if config.model == "offline":
        tracemend.update_current_span(
            model="offline (scripted)", usage={"prompt_tokens": 0, "completion_tokens": 0}
        )
        return _offline_plan(message)
    from tracemend import llm  # only for real models

    messages = [
        {"role": "system", "content": config.system_prompt},
        {
            "role": "user",
            "content": "Classify this ticket as JSON with keys intent (order_status|refund|faq), "
            f"order_id, query.\nTicket: {message}",
        },
    ]
    response = llm.complete(
        messages, model=config.model, json_mode=True, temperature=config.temperature, purpose="agent"
    )
    tracemend.update_current_span(model=response.model, usage=response.usage.model_dump(), cost=response.cost)
    return json.loads(response.content or "{}")


def keeps_to_policy(prompt: str) -> bool:
    """Whether the offline model's instructions tell it to follow the refund policy's decision."""
    return "refund policy" in prompt.lower()


@tracemend.track(kind="llm", name="compose")
def compose(intent: str, facts: dict[str, object], config: SupportConfig) -> str:
    """The reply to the customer from the facts the tools returned."""
    if intent == "order_status":
        reply = f"Your {facts['item']} (order {facts['order_id']}) is {facts['status']}."
    elif intent == "refund":
        if facts["eligible"]:
            reply = (
                f"Good news: order {facts['order_id']} is {facts['reason']} ({facts['window_days']} days), "
                "so you can return it for a full refund from your order page."
            )
        elif (
            config.model == "offline"
            and not keeps_to_policy(REPLY_PROMPT)
            and facts["reason"] == "outside the refund window"
        ):
            # Without the rule in its prompt, the offline model is "generous" past the window.
            reply = (
                f"Good news: order {facts['order_id']} is outside the refund window ({facts['window_days']} "
                "days), but we will make it right: you can return it for a full refund from your order page."
            )
        else:
            reply = (
                f"Sorry, order {facts['order_id']} cannot be refunded: it is {facts['reason']} "
                f"({facts['window_days']} days)."
            )
    else:
        reply = " ".join(facts.get("answers", []))  # type: ignore[arg-type]
    tracemend.update_current_span(model="offline (scripted)" if config.model == "offline" else config.model)
    return reply[: config.max_reply_chars]
