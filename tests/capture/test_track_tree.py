"""What ``@track`` records: span trees, configs, updates from inside the call, errors, and replay.

Inputs, redaction, non-JSON values and limits are in ``test_track_values.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import tracemend
from tracemend.capture.config import config_hash
from tracemend.records import Trace
from tracemend.store import Store

from helpers.spine import CODE_VERSION, only_trace, read_traces, run_python, span_by_name


def assert_tree(trace: Trace, expected: dict[str, str | None]) -> None:
    """``expected`` maps span name → parent span name (None for the root)."""
    by_id = {s.span_id: s for s in trace.spans}
    actual = {s.name: (by_id[s.parent_id].name if s.parent_id else None) for s in trace.spans}
    assert actual == expected
    assert all(s.trace_id == trace.trace_id for s in trace.spans)
    assert len(trace.spans) == len(expected)


# --- span trees -----------------------------------------------------------------------------------------


@tracemend.track(kind="tool")
def lookup(order_id: str) -> dict[str, str]:
    return {"order": order_id, "state": "shipped"}


@tracemend.track(kind="llm")
def complete(prompt: str) -> str:
    return f"reply to {prompt}"


@tracemend.track(kind="agent")
def agent(question: str) -> str:
    order = lookup("A1")
    return complete(f"{question} {order['state']}")


def test_nested_calls_form_one_tree(spine_store: Path) -> None:
    assert agent("where?") == "reply to where? shipped"
    trace = only_trace(spine_store)
    assert_tree(trace, {"agent": None, "lookup": "agent", "complete": "agent"})
    assert trace.entry_point == f"{__name__}:agent"
    assert trace.input == {"question": "where?"} and trace.output == "reply to where? shipped"
    assert [s.kind for s in trace.spans] == ["agent", "tool", "llm"]
    assert span_by_name(trace, "lookup").output == {"order": "A1", "state": "shipped"}
    assert trace.code_version.commit == CODE_VERSION
    assert trace.status == "ok" and trace.error is None
    root = trace.root_span()
    assert root is not None and all(root.start_time <= s.start_time for s in trace.spans)
    assert all(s.end_time is not None and s.end_time >= s.start_time for s in trace.spans)


def test_threads_with_copied_context_attach_to_the_parent(spine_store: Path) -> None:
    @tracemend.track
    def worker(i: int) -> int:
        return complete(str(i)) and i

    @tracemend.track
    def fan_out() -> list[int]:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(contextvars.copy_context().run, worker, i) for i in range(4)]
            results = [f.result() for f in futures]
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(worker, 9))
        thread.start()
        thread.join()
        return results

    @tracemend.track
    def unlinked() -> None:
        # A plain thread does not inherit the context: its spans start a trace of their own.
        thread = threading.Thread(target=worker, args=(7,))
        thread.start()
        thread.join()

    assert fan_out() == [0, 1, 2, 3]
    unlinked()
    traces = read_traces(spine_store)
    fan = next(t for t in traces if t.name == "fan_out")
    workers = [s for s in fan.spans if s.name == "worker"]
    assert len(workers) == 5 and all(w.parent_id == fan.root_span().span_id for w in workers)
    for w in workers:
        (child,) = fan.children(w.span_id)
        assert child.name == "complete" and child.input == {"prompt": str(w.input["i"])}
    alone = [t for t in traces if t.name == "worker"]
    assert len(alone) == 1 and alone[0].input == {"i": 7}
    assert {t.name for t in traces} == {"fan_out", "unlinked", "worker"}


def test_asyncio_tasks_and_gather_attach_to_the_right_parent(spine_store: Path) -> None:
    @tracemend.track(kind="tool")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.001 * (3 - i))
        return i

    @tracemend.track
    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return await fetch(i) * 10

    @tracemend.track(kind="agent")
    async def main() -> list[int]:
        task = asyncio.create_task(step(5))
        gathered = await asyncio.gather(step(0), step(1), step(2))
        return [*gathered, await task]

    assert asyncio.run(main()) == [0, 10, 20, 50]
    trace = only_trace(spine_store)
    root = trace.root_span()
    steps = [s for s in trace.spans if s.name == "step"]
    assert len(steps) == 4 and all(s.parent_id == root.span_id for s in steps)
    for s in steps:
        (child,) = trace.children(s.span_id)
        assert child.name == "fetch" and child.input == {"i": s.input["i"]} and child.output == s.input["i"]


def test_generator_that_outlives_its_parent(spine_store: Path) -> None:
    @tracemend.track
    def stream(n: int) -> Any:
        for i in range(n):
            yield complete(str(i))

    @tracemend.track
    def start_stream() -> Any:
        gen = stream(3)
        first = next(gen)  # the generator's span starts here, inside this parent
        return first, gen

    @tracemend.track
    def later() -> int:
        return 1

    first, gen = start_stream()
    rest = list(gen)  # consumed after the parent has returned
    later()
    assert [first, *rest] == ["reply to 0", "reply to 1", "reply to 2"]
    traces = read_traces(spine_store)
    assert [t.name for t in traces] == ["start_stream", "later"]
    tree = traces[0]
    stream_span = span_by_name(tree, "stream")
    assert stream_span.parent_id == tree.root_span().span_id
    assert stream_span.output == ["reply to 0", "reply to 1", "reply to 2"]
    assert stream_span.end_time > tree.root_span().end_time
    completes = [s for s in tree.spans if s.name == "complete"]
    assert len(completes) == 3 and all(s.parent_id == stream_span.span_id for s in completes)
    # The generator's span is current only while its body runs: "later" is a trace of its own.
    assert len(traces[1].spans) == 1


def test_generator_first_iterated_outside_any_span_starts_its_own_trace(spine_store: Path) -> None:
    @tracemend.track
    def stream() -> Any:
        yield 1

    @tracemend.track
    def make() -> Any:
        return stream()

    assert list(make()) == [1]
    traces = read_traces(spine_store)
    assert [t.name for t in traces] == ["make", "stream"]


# --- configs ----------------------------------------------------------------------------------------------


class AgentConfig(tracemend.Config):
    model: str = "gpt-test"
    temperature: float = 0.2
    tools: tuple[str, ...] = ("lookup",)


@tracemend.track
def annotated(question: str, settings: AgentConfig) -> str:
    return question


@tracemend.track
def named(question: str, config: Any = None) -> str:
    return question


@tracemend.track
def scanned(question: str, *extras: Any) -> str:
    return question


FIXED = AgentConfig(model="fixed")


@tracemend.track(config=FIXED)
def fixed(question: str) -> str:
    return question


def test_config_found_by_annotation_name_argument_and_decorator(spine_store: Path) -> None:
    annotated("q", AgentConfig(temperature=0.5))
    annotated("q", settings=AgentConfig(temperature=0.5))
    named("q", config={"model": "dict-model", "temperature": 1})
    scanned("q", 1, AgentConfig(model="scanned"))
    fixed("q")
    t_pos, t_kw, t_dict, t_scan, t_fixed = read_traces(spine_store)
    snapshot = {"model": "gpt-test", "temperature": 0.5, "tools": ["lookup"]}
    for t in (t_pos, t_kw):
        assert t.config == snapshot
        assert t.config_class == f"{__name__}:AgentConfig" and t.config_param == "settings"
        assert t.config_hash == config_hash(snapshot)
    assert t_pos.input["settings"] == snapshot
    assert t_dict.config == {"model": "dict-model", "temperature": 1}
    assert t_dict.config_class is None and t_dict.config_param == "config"
    assert t_scan.config["model"] == "scanned"
    assert t_fixed.config["model"] == "fixed" and t_fixed.config_param is None
    with Store(spine_store) as store:
        assert store.config(t_pos.config_hash) == snapshot


def test_config_hash_is_stable_across_key_order(spine_store: Path) -> None:
    named("q", config={"a": 1, "b": {"x": 1, "y": 2}, "c": [1, 2]})
    named("q", config={"c": [1, 2], "b": {"y": 2, "x": 1}, "a": 1})
    named("q", config={"a": 2, "b": {"x": 1, "y": 2}, "c": [1, 2]})
    first, second, third = read_traces(spine_store)
    assert first.config_hash == second.config_hash != third.config_hash
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})


@pytest.mark.slow  # importing opik takes seconds
def test_opik_config_instance_is_recognised(spine_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "OPIK_URL_OVERRIDE": "http://127.0.0.1:9/api",
        "OPIK_SENTRY_ENABLE": "false",
        "OPIK_ANALYTICS_ENABLE": "false",
        "OPIK_PYTEST_EXPERIMENT_ENABLED": "false",
    }.items():
        monkeypatch.setenv(key, value)
    opik = pytest.importorskip("opik")
    if not isinstance(getattr(opik, "Config", None), type):
        pytest.skip("this opik has no Config class")
    cfg = _make_opik_config(opik)

    @tracemend.track
    def run(question: str, agent_config: Any) -> str:
        return question

    run("q", cfg)
    trace = only_trace(spine_store)
    assert trace.config is not None and trace.config_hash is not None
    assert trace.config_class is not None and trace.config_class.endswith(type(cfg).__qualname__)


def _make_opik_config(opik: Any) -> Any:
    cls = opik.Config
    try:
        return cls(model="m", temperature=0.1)
    except TypeError:
        return cls()


# --- updates from inside the call --------------------------------------------------------------------------


def test_update_current_span_and_trace(spine_store: Path) -> None:
    @tracemend.track(kind="llm")
    def llm_call(prompt: str) -> str:
        tracemend.update_current_span(
            model="gpt-test",
            usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            cost=0.001,
            metadata={"attempt": 1},
        )
        tracemend.update_current_span(cost=0.002, metadata={"retry": True}, provider="scripted")
        tracemend.update_current_trace(tags=["from-llm"], metadata={"user": "u1"})
        return "ok"

    @tracemend.track(tags=["support"])
    def run() -> str:
        llm_call("p")
        tracemend.update_current_trace(status="failed_assertion", error_message="answer cites no order")
        return "done"

    assert run() == "done"
    assert tracemend.current_trace_id() is None
    trace = only_trace(spine_store)
    attrs = span_by_name(trace, "llm_call").attributes
    assert attrs["model"] == "gpt-test" and attrs["usage"]["total_tokens"] == 15
    assert attrs["cost"] == pytest.approx(0.003)
    assert attrs["metadata"] == {"attempt": 1, "retry": True} and attrs["provider"] == "scripted"
    assert trace.tags == ["support", "from-llm"] and trace.metadata == {"user": "u1"}
    assert trace.status == "failed_assertion"
    assert trace.error is not None and trace.error.type == "tracemend.FailedAssertion"
    assert trace.error.message == "answer cites no order"
    with Store(spine_store) as store:
        assert store.count(status="failed_assertion") == 1


def test_ids_visible_inside_the_call(spine_store: Path) -> None:
    seen: list[tuple[str | None, str | None]] = []

    @tracemend.track
    def run() -> None:
        seen.append((tracemend.current_trace_id(), tracemend.current_span_id()))

    run()
    trace = only_trace(spine_store)
    assert seen == [(trace.trace_id, trace.root_span().span_id)]
    assert len(trace.trace_id) == 32 and len(trace.root_span().span_id) == 16


# --- disabled -----------------------------------------------------------------------------------------------


def test_disabled_by_environment_records_nothing(tmp_path: Path) -> None:
    db = tmp_path / "off.db"
    proc = run_python(
        """
        import tracemend
        from tracemend.capture.state import STATE

        @tracemend.track
        def f(x):
            return x + 1

        assert [f(i) for i in range(100)] == list(range(1, 101))
        assert tracemend.flush() == 0
        print(STATE.on, len(STATE.queue), STATE.started)
        """,
        env={"TRACEMEND_DB": str(db), "TRACEMEND_DISABLED": "1"},
    )
    assert proc.stdout.split() == ["False", "0", "False"]
    assert not db.exists()


def test_configure_enabled_false_records_nothing(spine_store: Path) -> None:
    tracemend.configure(enabled=False)

    @tracemend.track
    def f(x: int) -> int:
        return x

    assert f(1) == 1 and asyncio.run(tracemend.track(_async_identity)(2)) == 2
    assert read_traces(spine_store) == []
    tracemend.configure(enabled=True)
    f(3)
    assert [t.input for t in read_traces(spine_store)] == [{"x": 3}]


async def _async_identity(x: int) -> int:
    return x


# --- errors ---------------------------------------------------------------------------------------------------


class AppError(Exception):
    pass


@tracemend.track
def parse_order(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppError(f"bad order payload: {text!r}") from exc


@tracemend.track
def handle(text: str) -> Any:
    try:
        return parse_order(text)
    except AppError:
        {}["missing"]  # raised while handling: chained as context


def test_error_info_type_message_chain_and_frames(spine_store: Path) -> None:
    with pytest.raises(KeyError):
        handle("{not json")
    trace = only_trace(spine_store)
    assert trace.status == "error"
    err = trace.error
    assert [e.type for e in err.chain()] == [
        "KeyError",
        f"{__name__}.AppError",
        "json.decoder.JSONDecodeError",
    ]
    assert [e.cause_kind for e in err.chain()] == ["context", "cause", None]
    assert err.cause.message == "bad order payload: '{not json'"
    this_file = "tests/capture/test_track_tree.py"
    assert err.frames[-1].file == this_file and err.frames[-1].function == "handle" and err.frames[-1].in_app
    app_frames = err.cause.frames
    assert app_frames[-1].function == "parse_order" and app_frames[-1].in_app
    json_frames = err.cause.cause.frames
    library = [f for f in json_frames if not f.in_app]
    assert library and all(f.file.endswith(".py") and f.file.startswith("/") for f in library)
    assert any(f.file.endswith("json/decoder.py") for f in library)
    assert json_frames[0].function == "parse_order" and json_frames[0].file == this_file
    top = err.top_in_app_frame()
    assert top is not None and top.function == "handle"
    # Tracemend's own wrapper frames are not part of the user's error.
    assert not any("/plugin/" in f.file for e in err.chain() for f in e.frames)
    # The inner span carries its own error, as it stood when it left that span.
    inner = span_by_name(trace, "parse_order")
    assert inner.error.type == f"{__name__}.AppError" and inner.error.cause_kind == "cause"


def test_site_packages_frames_are_not_in_app(spine_store: Path) -> None:
    @tracemend.track
    def validate() -> None:
        AgentConfig(temperature="not a number")  # raises inside pydantic

    with pytest.raises(ValueError):
        validate()
    err = only_trace(spine_store).error
    assert err.type == "pydantic_core._pydantic_core.ValidationError"
    assert err.frames[0].function.endswith("<locals>.validate") and err.frames[0].in_app
    assert any(not f.in_app and "site-packages" in f.file for f in err.frames)


# --- replay: a recorded call made again -----------------------------------------------------------------------


@tracemend.track
def variadic(
    a: int, b: int = 10, *rest: int, c: int = 0, settings: AgentConfig | None = None, **extra: int
) -> int:
    temperature = settings.temperature if settings else 0
    return a + b + sum(rest) + c + sum(extra.values()) + int(temperature * 100)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1,), {}),
        ((1, 2), {"c": 3}),
        ((1, 2, 3, 4), {"z": 5}),
        ((1, 2, 3), {"settings": AgentConfig(temperature=0.5)}),
    ],
)
def test_recorded_call_replays_to_the_same_result(
    spine_store: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    from tracemend.replay import call, prepare_call

    expected = variadic(*args, **kwargs)
    trace = only_trace(spine_store)
    fn, r_args, r_kwargs = prepare_call(
        trace.entry_point,
        trace.input,
        config=trace.config,
        config_class=trace.config_class,
        config_param=trace.config_param,
    )
    assert call(fn, r_args, r_kwargs) == expected == trace.output
