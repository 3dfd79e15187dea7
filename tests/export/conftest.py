"""Fixtures of the export tests: traces recorded by a real @track'ed agent into a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def recorded(store_path: Path):
    """A store with two traces of the export agent: one ok, one failing in its tool span."""
    import tracemend
    from tracemend.store import Store

    from helpers.export_agent import ToolFailure, answer

    answer("refunds")
    with pytest.raises(ToolFailure):
        answer("boom")
    tracemend.flush()
    store = Store(store_path)
    yield store
    store.close()
