"""The tools the agent can call. Each is traced as a tool span."""

from __future__ import annotations

import re

import tracemend

from .data import FAQ, ORDERS, REFUND_WINDOWS


class OrderNotFound(LookupError):
    pass


@tracemend.track(kind="tool")
def lookup_order(order_id: str) -> dict[str, object]:
    """The order with this id (ids are case-insensitive, with or without a leading '#')."""
    key = order_id.strip().lstrip("#").upper()
    order = ORDERS.get(key)
    if order is None:
        raise OrderNotFound(f"order {order_id!r} not found")
    return {"order_id": key, **order}


@tracemend.track(kind="tool")
def refund_policy(region: str, days_since_delivery: int | None) -> dict[str, object]:
    """Whether an order delivered ``days_since_delivery`` days ago can still be refunded."""
    window = REFUND_WINDOWS[region]
    if days_since_delivery is None:
        return {"eligible": False, "window_days": window, "reason": "not delivered yet"}
    eligible = days_since_delivery <= window
    reason = "within the refund window" if eligible else "outside the refund window"
    return {"eligible": eligible, "window_days": window, "reason": reason}


@tracemend.track(kind="retrieval")
def search_faq(query: str) -> list[str]:
    words = set(re.findall(r"[a-z]+", query.lower()))
    return [answer for topic, answer in FAQ.items() if topic in words] or [FAQ["hours"]]
