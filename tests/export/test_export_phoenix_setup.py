"""The Phoenix round trip is part of CI: when pip cannot install Phoenix, the test fails and says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.phoenix import ensure_phoenix_venv

pytestmark = [pytest.mark.slow]


def test_unreachable_registry_fails_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACEMEND_PHOENIX_VENV", str(tmp_path / "phoenix-venv"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no configured mirrors
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # a closed port: the registry is down
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "2")
    with pytest.raises(pytest.fail.Exception) as failed:
        ensure_phoenix_venv()
    message = str(failed.value)
    assert "Could not install Arize Phoenix" in message and "package index reachable" in message
    assert "arize-phoenix" in message
    assert not (tmp_path / "phoenix-venv" / ".tracemend-phoenix-ready").exists()
