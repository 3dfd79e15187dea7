"""Fixtures of the export tests: traces recorded by a real @track'ed agent into a real SQLite store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def recorded(store_path: Path):
    """A store with two traces of the export agent: one ok, one failing in its tool span."""
    from export_agent import ToolFailure, answer

    import tracemend
    from tracemend.store import Store

    answer("refunds")
    with pytest.raises(ToolFailure):
        answer("boom")
    tracemend.flush()
    store = Store(store_path)
    yield store
    store.close()
