"""Fixtures for the model-access and assertions tests: no real model requests, a loopback server on demand.

Used by ``tests/llm/conftest.py`` and ``tests/assertions/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

for _key, _value in {
    "OPIK_URL_OVERRIDE": "http://127.0.0.1:9/api",
    "OPIK_SENTRY_ENABLE": "false",
    "OPIK_ANALYTICS_ENABLE": "false",
    "OPIK_PYTEST_EXPERIMENT_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}.items():
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402

from tracemend import llm  # noqa: E402
from tracemend.testing import LoopbackServer  # noqa: E402


@pytest.fixture(autouse=True)
def _no_model_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Like pydantic-ai's ALLOW_MODEL_REQUESTS = False: any real request in these tests is a bug.
    for name in list(os.environ):
        if name.startswith("TRACEMEND_") and name not in ("TRACEMEND_ALLOW_MODEL_REQUESTS",):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRACEMEND_RETRY_BASE_DELAY", "0.01")
    with llm.forbid_model_requests():
        yield


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch):
    """A loopback OpenAI-compatible server, wired in as the api_base, with loopback requests allowed."""
    with LoopbackServer() as server, llm.allow_model_requests(loopback_only=True):
        monkeypatch.setenv("TRACEMEND_API_BASE", server.api_base)
        monkeypatch.setenv("TRACEMEND_API_KEY", "test-key")
        _warm_up(server)
        yield server


_warmed = False


def _warm_up(server: LoopbackServer) -> None:
    # litellm imports much of itself on the first request. That must happen here, not first inside a
    # pytester run: pytester drops the modules a run imported, which leaves litellm (and importlib.metadata)
    # half-torn for the runs after it.
    global _warmed
    if _warmed:
        return
    for model in ("openai/gpt-4o-mini", "openai/warm-up"):
        llm.complete([{"role": "user", "content": "warm-up"}], model=model, json_mode=True)
    server.clear()
    _warmed = True
