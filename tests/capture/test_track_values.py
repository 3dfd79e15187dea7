"""What ``@track`` records of values: inputs bound by name and snapshotted at entry, redaction, non-JSON
values, limits and cycles, capture flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tracemend

from helpers.spine import only_trace, read_traces

# --- inputs and mutation ----------------------------------------------------------------------------------


def test_inputs_bound_by_parameter_name(spine_store: Path) -> None:
    @tracemend.track
    def f(a: int, b: int = 2, /, *rest: int, c: str, d: str = "d", **extra: Any) -> None:
        return None

    f(1, 3, 4, 5, c="x", z=6)
    f(1, c="y")
    traces = read_traces(spine_store)
    assert traces[0].input == {"a": 1, "b": 3, "rest": [4, 5], "c": "x", "extra": {"z": 6}}
    # Only what the caller passed: defaults are the function's business when it is replayed.
    assert traces[1].input == {"a": 1, "c": "y"}


def test_builtin_containers_are_snapshotted_at_entry(spine_store: Path) -> None:
    """The rule in capture.py: builtin containers are copied at entry, other objects kept by reference."""

    @tracemend.track
    def chat(messages: list[dict[str, str]], options: dict[str, Any]) -> list[str]:
        messages.append({"role": "assistant", "content": "appended during the call"})
        options["nested"]["seen"] = True
        out = ["answer"]
        return out

    messages = [{"role": "user", "content": "hi"}]
    options = {"nested": {"seen": False}, "tags": ("a", "b")}
    out = chat(messages, options)
    messages[0]["content"] = "mutated after the call"
    out.append("mutated output")
    trace = only_trace(spine_store)
    assert trace.input == {
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"nested": {"seen": False}, "tags": ["a", "b"]},
    }
    assert trace.output == ["answer"]


def test_non_builtin_objects_are_recorded_by_reference_as_documented(spine_store: Path) -> None:
    class Box:
        def __init__(self) -> None:
            self.items: list[int] = []

        def __repr__(self) -> str:
            return f"Box({self.items})"

    @tracemend.track
    def fill(box: Box) -> None:
        box.items.append(1)

    box = Box()
    fill(box)
    trace = only_trace(spine_store)  # flushed before any later mutation
    assert trace.input["box"] == {"__repr__": "Box([1])", "__type__": f"{__name__}.{Box.__qualname__}"}


# --- redaction, non-JSON values, limits, cycles -------------------------------------------------------------

SECRETS = {
    "openai": "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0kLmN",
    "anthropic": "sk-ant-" + "api03-abcdefghijklmnopqrstuvwx",
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "github": "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "bearer": "Bearer " + "eyJhbGciOi.abc123def456.ghi789jkl",
}


def test_secrets_are_redacted_but_token_counts_are_not(spine_store: Path) -> None:
    @tracemend.track
    def call_llm(prompt: str, api_key: str, options: dict[str, Any]) -> dict[str, Any]:
        return {"text": f"used {SECRETS['openai']}", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}

    options = {
        "max_tokens": 256,
        "password": "hunter2",
        "clientSecret": "s3",
        "OPENAI_API_KEY": "k",
        "access_token": "t",
        "headers": {"Authorization": SECRETS["bearer"], "X-Trace": "fine"},
        "author": "Ada",
    }
    prompt = " | ".join(f"{k}={v}" for k, v in SECRETS.items())
    call_llm(prompt, api_key="plain-looking", options=options)
    trace = only_trace(spine_store)
    stored = json.dumps(trace.model_dump(mode="json"))
    for name, secret in SECRETS.items():
        assert secret.split()[-1] not in stored, name
    assert "hunter2" not in stored and "plain-looking" not in stored
    assert trace.input["api_key"] == "[REDACTED]"
    opts = trace.input["options"]
    assert opts["max_tokens"] == 256 and opts["author"] == "Ada" and opts["headers"]["X-Trace"] == "fine"
    for key in ("password", "clientSecret", "OPENAI_API_KEY", "access_token"):
        assert opts[key] == "[REDACTED]", key
    assert opts["headers"]["Authorization"] == "[REDACTED]"
    assert trace.output["usage"] == {"prompt_tokens": 3, "completion_tokens": 4}
    assert trace.input["prompt"].count("[REDACTED]") == len(SECRETS)


def test_redaction_is_configurable(spine_store: Path) -> None:
    tracemend.configure(redact_keys=["ssn"], redact_patterns=[r"\b\d{3}-\d{2}-\d{4}\b"])

    @tracemend.track
    def f(ssn: str, note: str, password: str) -> None:
        return None

    f("123-45-6789", "customer 987-65-4321 called", "pw")
    trace = only_trace(spine_store)
    assert trace.input == {
        "ssn": "[REDACTED]",
        "note": "customer [REDACTED] called",
        "password": "[REDACTED]",
    }

    tracemend.configure(redact=False)
    f("1", "987-65-4321", "pw")
    assert read_traces(spine_store)[-1].input == {"ssn": "1", "note": "987-65-4321", "password": "pw"}


def test_secret_at_the_truncation_boundary_is_not_leaked(spine_store: Path) -> None:
    tracemend.configure(max_string_chars=100)

    @tracemend.track
    def f(text: str) -> None:
        return None

    key = SECRETS["openai"]
    f("x" * 90 + " " + key + " tail")
    stored = only_trace(spine_store).input["text"]
    assert key[:12] not in stored
    assert stored.endswith(f"…[truncated, {90 + 1 + len(key) + 5} chars]")


def test_non_json_values_huge_values_and_cycles(spine_store: Path) -> None:
    class Opaque:
        __slots__ = ()

        def __repr__(self) -> str:
            return "<Opaque " + "z" * 5000 + ">"

    cyclic_list: list[Any] = [1]
    cyclic_list.append(cyclic_list)
    cyclic_dict: dict[str, Any] = {"name": "d"}
    cyclic_dict["self"] = cyclic_dict
    deep: list[Any] = []
    node = deep
    for _ in range(3000):
        node.append([])
        node = node[0]

    @tracemend.track
    def f(obj: Any, big: str, many: list[int], blob: bytes, cl: Any, cd: Any, deep: Any, nums: Any) -> Any:
        return {1: "int key", "set": {3, 1, 2}}

    f(
        Opaque(),
        "a" * 50_000,
        list(range(1000)),
        b"\x00" * 10,
        cyclic_list,
        cyclic_dict,
        deep,
        [float("nan"), 1.5, 2**64, 2**20000],
    )
    trace = only_trace(spine_store)
    inp = trace.input
    assert inp["obj"]["__type__"].endswith("Opaque")
    assert (
        inp["obj"]["__repr__"].startswith("<Opaque zzz")
        and "[truncated, 5009 chars]" in inp["obj"]["__repr__"]
    )
    assert len(inp["big"]) < 11_000 and inp["big"].endswith("…[truncated, 50000 chars]")
    assert len(inp["many"]) == 201 and inp["many"][-1] == "…[+800 more items]"
    assert inp["blob"] == {"__bytes__": 10}
    assert inp["cl"] == [1, "<cycle>"]
    assert inp["cd"]["name"] == "d" and inp["cd"]["self"] == "<cycle>"
    assert "depth limit" in json.dumps(inp["deep"])
    assert inp["nums"] == [
        "nan",
        1.5,
        2**64,
        {"__repr__": "<int of 20001 bits>", "__type__": "builtins.int", "__note__": "huge int"},
    ]
    assert trace.output == {"1": "int key", "set": [1, 2, 3]}


def test_capture_flags_and_span_names(spine_store: Path) -> None:
    @tracemend.track(name="renamed", capture_input=False, capture_output=False)
    def secretive(x: int) -> int:
        tracemend.update_current_span(name="renamed-at-runtime")
        return x

    assert secretive(5) == 5
    trace = only_trace(spine_store)
    assert trace.input == {} and trace.output is None
    assert trace.spans[0].name == "renamed-at-runtime"
    with pytest.raises(ValueError, match="kind must be one of"):
        tracemend.track(kind="nope")(lambda: None)


def test_queue_records_are_not_shared_between_tests(spine_store: Path) -> None:
    stats = tracemend.stats()
    assert stats["dropped"] == 0 and not stats["queued"]
