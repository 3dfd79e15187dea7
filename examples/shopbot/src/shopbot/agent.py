"""shopbot's entry points: ``answer`` (sync) and ``aanswer`` (async), both traced."""

from __future__ import annotations

import asyncio
import re

import tracemend

from .catalog import Catalog
from .config import ShopConfig
from .data import PRODUCTS

_PAGE = re.compile(r"\bpage\s+(\d+)\b", re.IGNORECASE)


@tracemend.track(kind="llm", name="plan")
def plan(message: str, config: ShopConfig) -> dict[str, object]:
    """Which category and page the message asks for (offline: a keyword policy)."""
    tracemend.update_current_span(model=f"{config.model} (keyword policy)")
    text = message.lower()
    category = next((c for c in PRODUCTS if c in text or c.rstrip("s") in text), "lamps")
    match = _PAGE.search(message)
    return {"category": category, "page": int(match.group(1)) if match else 1}


def _reply(result: dict[str, object], config: ShopConfig) -> str:
    items = result["items"]
    lines = [f"{item['name']} ({item['price']:.2f} {config.currency})" for item in items]  # type: ignore[index,union-attr]
    return f"{config.greeting} in {result['category']}, page {result['page']}: " + "; ".join(lines)


@tracemend.track(kind="agent", tags=["shop"])
def answer(message: str, config: ShopConfig) -> str:
    """Answer one shop question."""
    step = plan(message, config)
    result = Catalog.search(str(step["category"]), int(step["page"]), config.page_size)  # type: ignore[arg-type]
    return _reply(result, config)


@tracemend.track(kind="agent", tags=["shop", "async"])
async def aanswer(message: str, config: ShopConfig) -> str:
    """Answer one shop question from async code (the web handler)."""
    await asyncio.sleep(0)
    step = plan(message, config)
    result = Catalog.search(str(step["category"]), int(step["page"]), config.page_size)  # type: ignore[arg-type]
    return _reply(result, config)
