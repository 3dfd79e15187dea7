"""The ``recording`` fixture: each transparency property runs with recording on and off."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracemend


@pytest.fixture(params=[True, False], ids=["recording", "disabled"])
def recording(request: pytest.FixtureRequest, spine_store: Path) -> bool:
    tracemend.configure(enabled=request.param)
    return request.param
