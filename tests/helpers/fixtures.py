"""Fixtures for the trace-spine tests: an isolated store per test and a recorder reset to a known state.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.spine import CODE_VERSION, REPO, reset_recorder


@pytest.fixture
def spine_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store file for this test; the recorder writes there and nowhere else."""
    path = tmp_path / "traces.db"
    monkeypatch.setenv("TRACEMEND_DB", str(path))
    # A fixed code version: no git subprocess per test, and a value tests can filter on.
    monkeypatch.setenv("TRACEMEND_CODE_VERSION", CODE_VERSION)
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(REPO))
    for name in ("TRACEMEND_DISABLED", "TRACEMEND_QUEUE_SIZE", "TRACEMEND_NO_REDACT", "TRACEMEND_ENV"):
        monkeypatch.delenv(name, raising=False)
    reset_recorder()
    yield path
    reset_recorder()
