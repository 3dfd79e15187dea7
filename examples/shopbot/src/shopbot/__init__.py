"""shopbot: answers shop questions by searching the catalog, one page of results at a time."""

from __future__ import annotations

import os

import tracemend

from .agent import aanswer, answer
from .catalog import Catalog, PageOutOfRange
from .config import ShopConfig

# Like many apps, shopbot sets its tracing up itself: a project name, and where its traces go in production.
tracemend.configure(project="shopbot", db_path=os.environ.get("SHOPBOT_TRACES") or None)

__all__ = ["Catalog", "PageOutOfRange", "ShopConfig", "aanswer", "answer"]
