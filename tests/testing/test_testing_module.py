"""`tracemend.testing`: the public helpers tracemend's own tests use and users test their agents with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tracemend
from tracemend import llm, testing
from tracemend.capture import control
from tracemend.testing import LoopbackServer, Reply, chat_body, scripted_model, temporary_store, turn


def _post(server: LoopbackServer, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.api_base + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_importing_it_loads_no_heavy_library() -> None:
    code = (
        "import sys, tracemend.testing\n"
        "heavy = {'litellm', 'opik', 'pydantic', 'yaml', 'opentelemetry'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_turn_counts_the_assistant_messages_already_sent() -> None:
    assert turn({"messages": [{"role": "user", "content": "hi"}]}) == 0
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "x"},
        {"role": "assistant", "content": "ok"},
    ]
    assert turn({"messages": history}) == 2
    assert turn({}) == 0


def test_the_responder_sees_each_request_and_a_broken_one_answers_500() -> None:
    def responder(request: dict) -> dict | str:
        if turn(request) == 0:
            return chat_body(None, tool_calls=[{"name": "read_file", "arguments": {"path": "a.py"}}])
        raise RuntimeError("no answer for this turn")

    with LoopbackServer(responder) as server:
        status, body = _post(server, {"model": "m", "messages": [{"role": "user", "content": "go"}]})
        assert status == 200
        call = body["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call["name"] == "read_file" and json.loads(call["arguments"]) == {"path": "a.py"}
        later = {
            "model": "m",
            "messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "x"}],
        }
        status, body = _post(server, later)
        assert status == 500 and "no answer for this turn" in body["error"]["message"]
        assert server.request_count == 2
        server.enqueue(Reply(body={"error": {"message": "slow down"}}, status=429))
        server.clear()
        assert server.requests == [] and _post(server, later)[0] == 500  # the queued 429 was forgotten


def test_env_points_tracemend_model_calls_at_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with LoopbackServer(lambda request: f"hello from {request['model']}") as server:
        env = server.env()
        assert env["TRACEMEND_API_BASE"] == server.api_base
        assert env["TRACEMEND_ALLOW_MODEL_REQUESTS"] == "loopback"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with llm.allow_model_requests():
            answer = llm.complete([{"role": "user", "content": "hi"}], model="openai/any-name")
    assert answer.content == "hello from any-name" and not answer.scripted


def test_scripted_model_replays_the_recorded_answers(tmp_path: Path) -> None:
    model = scripted_model(
        tmp_path / "answers" / "model.yaml",
        [
            {"match": {"purpose": "triage"}, "response": {"content": "investigate"}},
            {"tool_calls": [{"name": "read_file", "arguments": {"path": "app.py"}}]},
        ],
    )
    assert model == f"scripted:{(tmp_path / 'answers' / 'model.yaml').resolve()}"
    user = [{"role": "user", "content": "why?"}]
    triage = llm.complete(user, model=model, purpose="triage")
    assert triage.content == "investigate" and triage.scripted
    other = llm.complete(user, model=model, purpose="diagnose")
    assert [c.name for c in other.tool_calls] == ["read_file"] and other.tool_calls[0].arguments == {
        "path": "app.py"
    }
    plain = scripted_model(tmp_path / "plain.yaml", ["PASS"])
    assert llm.complete(user, model=plain).content == "PASS"


def test_temporary_store_catches_the_traces_and_restores_the_recorder() -> None:
    before = {name: os.environ.get(name) for name in ("TRACEMEND_DB", "TRACEMEND_CODE_VERSION")}
    commit = "c0ffee" * 6 + "c0ff"

    @tracemend.track
    def double(x: int) -> int:
        return 2 * x

    with temporary_store(code_version=commit) as store:
        assert os.environ["TRACEMEND_DB"] == str(store.path)
        double(21)
        tracemend.flush()
        (trace,) = store.iter_traces()
        assert trace.output == 42 and trace.code_version.commit == commit
        folder = store.path.parent
    assert {name: os.environ.get(name) for name in before} == before
    assert not folder.exists()
    assert control.stats()["queued"] == 0


def test_reset_recorder_is_the_recorders_own() -> None:
    assert testing.reset_recorder is control.reset_recorder
