"""Model failures as a person needs them: credentials fail at once naming the variable, 401/403 are never
retried, and every attempt is counted — across processes too — so a summary equals what the server saw."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracemend import llm
from tracemend.errors import ModelAuthError, ModelError
from tracemend.testing import Reply, chat_body

MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_401_is_not_retried_and_names_the_variable(loopback) -> None:
    loopback.enqueue(Reply(body={"error": {"message": "invalid api key"}}, status=401))
    with llm.track_usage() as usage, pytest.raises(ModelAuthError) as caught:
        llm.complete(MESSAGES, model="openai/gpt-4o-mini")
    assert loopback.request_count == 1
    assert "TRACEMEND_API_KEY" in caught.value.hint
    assert usage.attempts == 1 and usage.failed_calls == 1 and usage.retries == 0


def test_a_403_is_not_retried(loopback) -> None:
    loopback.enqueue(Reply(body={"error": {"message": "forbidden"}}, status=403))
    with pytest.raises(ModelAuthError):
        llm.complete(MESSAGES, model="openai/gpt-4o-mini")
    assert loopback.request_count == 1


def test_a_missing_key_fails_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with llm.allow_model_requests(loopback_only=False), llm.track_usage() as usage:
        with pytest.raises(ModelAuthError) as caught:
            llm.check_model("openai/gpt-4o-mini")
        with pytest.raises(ModelAuthError):
            llm.complete(MESSAGES, model="openai/gpt-4o-mini")
    assert "OPENAI_API_KEY" in str(caught.value) and "OPENAI_API_KEY" in caught.value.hint
    assert usage.attempts == 0  # nothing was sent, nothing retried


def test_server_errors_count_every_attempt(loopback) -> None:
    for _ in range(4):
        loopback.enqueue(Reply(body={"error": {"message": "boom"}}, status=500))
    with llm.track_usage() as usage, pytest.raises(ModelError) as caught:
        llm.complete(MESSAGES, model="openai/gpt-4o-mini")
    assert loopback.request_count == usage.attempts == 4
    assert "HTTP 500" in str(caught.value) and "after 4 attempts" in str(caught.value)
    assert "try again later" in caught.value.hint
    loopback.enqueue(Reply(body={"error": {"message": "boom"}}, status=500))
    with llm.track_usage() as usage:
        llm.complete(MESSAGES, model="openai/gpt-4o-mini")
    assert usage.attempts == 2 and usage.calls == 1 and usage.retries == 1


CHILD = """
from tracemend import llm
llm.complete([{"role": "user", "content": "from the child"}], model="openai/gpt-4o-mini")
"""


def test_the_usage_log_sums_calls_of_this_process_and_its_children(loopback, tmp_path: Path) -> None:
    loopback.responder = lambda request: chat_body("ok", prompt_tokens=7, completion_tokens=3)
    log = tmp_path / "usage.jsonl"
    with llm.usage_log(log):
        llm.complete(MESSAGES, model="openai/gpt-4o-mini")
        env = {**os.environ, "TRACEMEND_ALLOW_MODEL_REQUESTS": "loopback"}
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=300)
    assert "TRACEMEND_USAGE_FILE" not in os.environ
    totals = llm.read_usage_log(log)
    assert totals.attempts == totals.calls == loopback.request_count == 2
    assert totals.prompt_tokens == 14 and totals.completion_tokens == 6
