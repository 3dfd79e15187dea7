"""The catalog tool: search a category and return one page of results."""

from __future__ import annotations

import math

import tracemend

from .data import PRODUCTS


class PageOutOfRange(LookupError):
    """A page past the end of the results (customers ask for them; so does a pagination bug)."""


def page_of(items: list[dict[str, object]], page: int, size: int) -> list[dict[str, object]]:
    """Items of ``page`` (1-based) when ``items`` are cut into pages of ``size``."""
    pages = max(1, math.ceil(len(items) / size))
    if page < 1 or page > pages:
        raise PageOutOfRange(f"page {page} is out of range ({pages} pages)")
    start = (page - 1) * size
    return items[start : start + size]


class Catalog:
    @classmethod
    @tracemend.track(kind="tool")
    def search(cls, category: str, page: int = 1, page_size: int = 4) -> dict[str, object]:
        """One page of the products in ``category``, with the number of pages."""
        items = [{"name": name, "price": price} for name, price in PRODUCTS.get(category, [])]
        return {
            "category": category,
            "page": page,
            "items": page_of(items, page, page_size),
            "total": len(items),
        }
