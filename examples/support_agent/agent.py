"""The support agent's entry point."""

from __future__ import annotations

import tracemend

from .config import SupportConfig
from .model import compose, plan
from .tools import lookup_order, refund_policy, search_faq


@tracemend.track(kind="agent", tags=["support"])
def handle_ticket(message: str, customer_id: str, config: SupportConfig | None = None) -> str:
    """Answer one support ticket."""
    config = config or SupportConfig()
    step = plan(message, config)
    intent = str(step.get("intent", "faq"))
    if intent in ("order_status", "refund") and step.get("order_id"):
        order = lookup_order(str(step["order_id"]))
        facts: dict[str, object] = dict(order)
        if intent == "refund":
            facts.update(refund_policy(str(order["region"]), order["days_since_delivery"]))  # type: ignore[arg-type]
        return compose(intent, facts, config)
    return compose("faq", {"answers": search_faq(str(step.get("query", message)))}, config)
