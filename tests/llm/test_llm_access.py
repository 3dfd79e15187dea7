"""tracemend.llm: the real litellm HTTP path against a loopback server, the scripted model, settings, usage."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from tracemend import llm
from tracemend.testing import Reply, chat_body, rate_limited

MODEL = "openai/gpt-4o-mini"
USER = [{"role": "user", "content": "What is the refund window?"}]


# --- the real litellm path against the loopback server ------------------------------------------------


def test_chat_completion_over_http(loopback):
    loopback.responder = lambda request: chat_body(
        "30 days", model="gpt-4o-mini", prompt_tokens=100, completion_tokens=20
    )
    response = llm.complete(USER, model=MODEL, purpose="unit")
    assert response.content == "30 days"
    assert response.scripted is False
    assert response.finish_reason == "stop"
    assert response.usage.prompt_tokens == 100 and response.usage.completion_tokens == 20
    # gpt-4o-mini is in litellm's local cost map: 100 * 0.15/M + 20 * 0.6/M
    assert response.cost == pytest.approx(100 * 0.15e-6 + 20 * 0.6e-6)
    sent = loopback.requests[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["messages"] == USER


def test_unknown_model_costs_zero(loopback):
    loopback.responder = lambda request: chat_body("hi", model="my-local-model")
    response = llm.complete(USER, model="openai/my-local-model")
    assert response.cost == 0.0
    assert response.usage.total_tokens == 15


def test_tool_calls_are_parsed(loopback):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    loopback.responder = lambda request: chat_body(
        None, tool_calls=[{"name": "read_file", "arguments": {"path": "support_agent/tools.py"}}]
    )
    response = llm.complete(USER, model=MODEL, tools=tools)
    assert response.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("read_file", {"path": "support_agent/tools.py"})
    ]
    assert loopback.requests[-1]["tools"][0]["function"]["name"] == "read_file"
    # The assistant message round-trips into the next request in OpenAI form.
    message = response.assistant_message()
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"path": "support_agent/tools.py"}


def test_json_mode_sends_response_format(loopback):
    loopback.responder = lambda request: chat_body('{"a": 1}')
    llm.complete(USER, model=MODEL, json_mode=True, temperature=0.0)
    sent = loopback.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["temperature"] == 0.0


def test_rate_limit_then_success_is_retried(loopback):
    loopback.enqueue(rate_limited(), rate_limited())
    loopback.responder = lambda request: chat_body("after the storm")
    with llm.track_usage() as usage:
        response = llm.complete(USER, model=MODEL)
    assert response.content == "after the storm"
    assert loopback.request_count == 3
    assert usage.retries == 2 and usage.calls == 1 and usage.failed_calls == 0


def test_malformed_body_is_retried(loopback):
    loopback.enqueue(Reply(raw=b"{this is not json"))
    loopback.responder = lambda request: chat_body("fine now")
    assert llm.complete(USER, model=MODEL).content == "fine now"
    assert loopback.request_count == 2


def test_truncated_body_is_retried(loopback):
    loopback.enqueue(Reply(body=chat_body("a long answer " * 20), truncate=True))
    loopback.responder = lambda request: chat_body("whole answer")
    assert llm.complete(USER, model=MODEL).content == "whole answer"
    assert loopback.request_count == 2


def test_malformed_tool_arguments_are_retried(loopback):
    loopback.enqueue(Reply(body=chat_body(None, tool_calls=[{"name": "f", "arguments": '{"path": '}])))
    loopback.responder = lambda request: chat_body(
        None, tool_calls=[{"name": "f", "arguments": {"path": "x"}}]
    )
    response = llm.complete(USER, model=MODEL)
    assert response.tool_calls[0].arguments == {"path": "x"}


def test_slow_answer_times_out_then_fails_closed(loopback, monkeypatch):
    monkeypatch.setenv("TRACEMEND_MAX_RETRIES", "1")
    loopback.responder = lambda request: Reply(body=chat_body("too late"), delay=1.5)
    with llm.track_usage() as usage, pytest.raises(llm.ModelError, match="2 attempts"):
        llm.complete(USER, model=MODEL, timeout=0.3)
    assert loopback.request_count == 2
    assert usage.failed_calls == 1 and usage.calls == 0


def test_slow_answer_then_fast_one_succeeds(loopback):
    loopback.enqueue(Reply(body=chat_body("slow"), delay=1.5))
    loopback.responder = lambda request: chat_body("fast")
    assert llm.complete(USER, model=MODEL, timeout=0.3).content == "fast"


def test_client_errors_are_not_retried(loopback):
    loopback.responder = lambda request: Reply(body={"error": {"message": "bad request: nope"}}, status=400)
    with pytest.raises(llm.ModelError, match="BadRequest"):
        llm.complete(USER, model=MODEL)
    assert loopback.request_count == 1


def test_truncated_answer_reports_finish_reason(loopback):
    loopback.responder = lambda request: chat_body('{"verdict": "PA', finish_reason="length")
    response = llm.complete(USER, model=MODEL)
    assert response.finish_reason == "length"


def test_concurrency_is_bounded(loopback, monkeypatch):
    monkeypatch.setenv("TRACEMEND_CONCURRENCY", "3")
    import threading

    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def responder(request):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        import time

        time.sleep(0.1)
        with lock:
            active["now"] -= 1
        return chat_body("ok")

    loopback.responder = responder

    async def many():
        return await asyncio.gather(*(llm.acomplete(USER, model=MODEL) for _ in range(9)))

    results = asyncio.run(many())
    assert len(results) == 9
    assert active["max"] == 3


# --- the request policy -------------------------------------------------------------------------------


def test_real_requests_are_forbidden_by_default_in_tests(loopback):
    llm.set_request_policy(llm.RequestPolicy(real=False, loopback=False))
    with pytest.raises(llm.ModelRequestsForbidden):
        llm.complete(USER, model=MODEL)
    assert loopback.request_count == 0


def test_loopback_allowance_does_not_cover_remote_servers(monkeypatch):
    llm.set_request_policy(llm.RequestPolicy(real=False, loopback=True))
    monkeypatch.setenv("TRACEMEND_API_BASE", "https://api.example.com/v1")
    with pytest.raises(llm.ModelRequestsForbidden, match="api.example.com"):
        llm.complete(USER, model=MODEL)


def test_allow_model_requests_context_restores(monkeypatch):
    assert not llm.request_policy().loopback
    with llm.allow_model_requests():
        assert llm.request_policy().loopback and not llm.request_policy().real
    assert not llm.request_policy().loopback


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", (True, False)),
        ("0", (False, False)),
        ("false", (False, False)),
        ("loopback", (False, True)),
        ("1", (True, False)),
    ],
)
def test_policy_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("TRACEMEND_ALLOW_MODEL_REQUESTS", value)
    assert llm.policy_from_env() == expected


# --- settings -----------------------------------------------------------------------------------------


def test_models_resolve_from_env_then_pyproject(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.tracemend]
            model = "openai/gpt-4o"
            judge_model = "anthropic/claude-3-5-haiku-latest"
            timeout = 12
            concurrency = 4
            """
        )
    )
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(tmp_path))
    assert llm.resolve_model() == "openai/gpt-4o"
    assert llm.resolve_model("judge") == "anthropic/claude-3-5-haiku-latest"
    assert llm.resolve_model("triage") == "openai/gpt-4o"  # falls back to the default model
    settings = llm.load_settings()
    assert (settings.timeout, settings.concurrency) == (12.0, 4)
    monkeypatch.setenv("TRACEMEND_JUDGE_MODEL", "openai/o3-mini")
    monkeypatch.setenv("TRACEMEND_CONCURRENCY", "16")
    assert llm.resolve_model("judge") == "openai/o3-mini"
    assert llm.load_settings().concurrency == 16
    with pytest.raises(ValueError, match="unknown model role"):
        llm.resolve_model("critic")


def test_bad_setting_names_its_source(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.tracemend]\ntimeout = "soon"\n')
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(llm.ModelError, match=r"\[tool.tracemend\] timeout"):
        llm.load_settings()


def test_default_model_without_config(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(tmp_path))
    assert llm.resolve_model("diagnose") == llm.DEFAULT_MODEL


# --- the scripted model -------------------------------------------------------------------------------


def _script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "answers.yaml"
    path.write_text(textwrap.dedent(text))
    return f"scripted:{path}"


def test_scripted_matching_rules(tmp_path):
    model = _script(
        tmp_path,
        """
        answers:
          - match: {purpose: triage}
            response: {content: '{"decision": "investigate"}'}
          - match: {purpose: diagnose, turn: 0}
            response: {tool_calls: [{name: read_file, arguments: {path: support_agent/tools.py}}]}
          - match: {purpose: diagnose, turn: 1}
            response: {content: done}
          - match: {purpose: judge, contains: ["refund window", "30 days"]}
            response: {content: judged}
          - match: {}
            response: {content: fallback}
        """,
    )
    assert llm.complete(USER, model=model, purpose="triage").content == '{"decision": "investigate"}'
    first = llm.complete(USER, model=model, purpose="diagnose")
    assert first.tool_calls[0].name == "read_file" and first.tool_calls[0].arguments == {
        "path": "support_agent/tools.py"
    }
    assert first.finish_reason == "tool_calls" and first.tool_calls[0].id
    follow_up = [*USER, first.assistant_message(), {"role": "tool", "tool_call_id": "x", "content": "..."}]
    assert llm.complete(follow_up, model=model, purpose="diagnose").content == "done"
    judge_msgs = [{"role": "user", "content": "the refund window is 30 days"}]
    assert llm.complete(judge_msgs, model=model, purpose="judge").content == "judged"
    # Only one of the substrings present: the judge entry does not match, the catch-all does.
    assert (
        llm.complete([{"role": "user", "content": "refund window"}], model=model, purpose="judge").content
        == "fallback"
    )


def test_scripted_is_stateless_and_labelled(tmp_path):
    model = _script(tmp_path, "answers:\n  - response: {content: same}\n")
    with llm.track_usage() as usage:
        answers = [llm.complete(USER, model=model, purpose="p") for _ in range(3)]
    assert {a.content for a in answers} == {"same"}
    assert all(a.scripted and a.cost == 0.0 and a.usage.prompt_tokens > 0 for a in answers)
    assert usage.calls == 3 and usage.scripted_calls == 3 and usage.cost == 0.0
    assert usage.by_purpose == {"p": 3}


def test_scripted_needs_no_permission(tmp_path):
    assert not llm.request_policy().real
    model = _script(tmp_path, "answers:\n  - response: {content: offline}\n")
    assert llm.complete(USER, model=model).content == "offline"


def test_scripted_no_match_names_purpose_turn_and_file(tmp_path):
    model = _script(tmp_path, "answers:\n  - match: {purpose: triage}\n    response: {content: x}\n")
    with pytest.raises(llm.ModelError, match=r"answers.yaml: no answer matches purpose='judge' turn=0"):
        llm.complete(USER, model=model, purpose="judge")


def test_scripted_bad_file_is_a_clear_error(tmp_path):
    model = _script(tmp_path, "answers:\n  - match: {purpos: triage}\n    response: {content: x}\n")
    with pytest.raises(llm.ModelError, match=r"answers.0.match.purpos"):
        llm.complete(USER, model=model)
    with pytest.raises(llm.ModelError, match="cannot read"):
        llm.complete(USER, model=f"scripted:{tmp_path / 'missing.yaml'}")


def test_recorder_appends_exact_key_entries(tmp_path, loopback):
    loopback.responder = lambda request: chat_body("recorded answer", model="gpt-4o-mini")
    path = tmp_path / "recorded.yaml"
    path.write_text(
        "# recorded from a real model\nanswers:\n  - match: {purpose: other}\n    response: {content: other}\n"
    )
    real = llm.complete(USER, model=MODEL, purpose="judge")
    key = llm.record_answer(path, USER, real, purpose="judge")
    assert key == llm.request_key(USER)
    assert path.read_text().startswith("# recorded from a real model")
    replayed = llm.complete(USER, model=f"scripted:{path}", purpose="judge")
    assert replayed.content == "recorded answer" and replayed.scripted
    # A different request does not hit the exact-key entry.
    with pytest.raises(llm.ModelError, match="no answer matches"):
        llm.complete([{"role": "user", "content": "other"}], model=f"scripted:{path}", purpose="judge")


def test_record_to_env_records_real_answers(tmp_path, loopback, monkeypatch):
    path = tmp_path / "rec.yaml"
    monkeypatch.setenv("TRACEMEND_RECORD_TO", str(path))
    loopback.responder = lambda request: chat_body(
        None, tool_calls=[{"name": "grep", "arguments": {"q": "x"}}]
    )
    llm.complete(USER, model=MODEL, purpose="diagnose")
    monkeypatch.delenv("TRACEMEND_RECORD_TO")
    replayed = llm.complete(USER, model=f"scripted:{path}", purpose="diagnose")
    assert replayed.tool_calls[0].name == "grep" and replayed.tool_calls[0].arguments == {"q": "x"}


# --- structured output --------------------------------------------------------------------------------


class Decision(BaseModel):
    decision: str
    confidence: float


def test_structured_over_http(loopback):
    loopback.responder = lambda request: chat_body(
        '```json\n{"decision": "investigate", "confidence": 0.8}\n```'
    )
    value, response = llm.structured(USER, Decision, model=MODEL, purpose="triage")
    assert value == Decision(decision="investigate", confidence=0.8)
    assert loopback.requests[-1]["response_format"] == {"type": "json_object"}
    assert "json schema" in loopback.requests[-1]["messages"][-1]["content"].lower()


def test_structured_reasks_with_the_error_then_succeeds(tmp_path):
    model = _script(
        tmp_path,
        """
        answers:
          - match: {turn: 0}
            response: {content: '{"decision": "investigate"}'}
          - match: {turn: 1, contains: ["confidence"]}
            response: {content: '{"decision": "investigate", "confidence": 0.5}'}
        """,
    )
    value, response = llm.structured(USER, Decision, model=model)
    assert value.confidence == 0.5 and response.scripted


def test_structured_fails_closed(loopback):
    loopback.responder = lambda request: chat_body("I think you should investigate.")
    with pytest.raises(llm.StructuredOutputError) as info:
        llm.structured(USER, Decision, model=MODEL, retries=1)
    assert loopback.request_count == 2
    assert len(info.value.errors) == 2 and info.value.raw == "I think you should investigate."


def test_structured_truncated_json_fails_closed(loopback):
    loopback.responder = lambda request: chat_body('{"decision": "inv', finish_reason="length")
    with pytest.raises(llm.StructuredOutputError, match="cut off"):
        llm.structured(USER, Decision, model=MODEL, retries=0)


def test_sync_wrapper_works_inside_a_running_loop(tmp_path):
    model = _script(tmp_path, "answers:\n  - response: {content: nested}\n")

    async def inside():
        return llm.complete(USER, model=model)

    assert asyncio.run(inside()).content == "nested"


def test_usage_totals_are_per_process(tmp_path):
    model = _script(tmp_path, "answers:\n  - response: {content: x}\n")
    before = llm.usage_totals()
    llm.complete(USER, model=model)
    after = llm.usage_totals()
    assert after["calls"] == before["calls"] + 1
    assert after["scripted_calls"] == before["scripted_calls"] + 1
    assert after["total_tokens"] > before["total_tokens"]
