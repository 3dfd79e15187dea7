"""``@track`` is transparent: what the call returns, raises, looks like and does is unchanged.

Property-based (hypothesis) over argument values, decorator options, and scripts of generator
operations, each run with recording on and off; plus the recorder failing in every place we can make
it fail, which must never reach user code.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tracemend
from tracemend import capture
from tracemend.capture import encode as serialize
from tracemend.store import Store

from helpers.spine import read_traces

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
options = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=10),
        "kind": st.sampled_from(["agent", "llm", "tool", "retrieval", "general"]),
        "capture_input": st.booleans(),
        "capture_output": st.booleans(),
        "tags": st.lists(st.text(max_size=5), max_size=3),
    },
)


def decorate(fn: Any, opts: dict[str, Any] | None) -> Any:
    """``@track`` bare when opts is None, else ``@track(**opts)``."""
    return tracemend.track(fn) if opts is None else tracemend.track(**opts)(fn)


maybe_options = st.none() | options


@pytest.fixture(params=[True, False], ids=["recording", "disabled"])
def recording(request: pytest.FixtureRequest, spine_store: Path) -> bool:
    capture.STATE.on = request.param
    return request.param


# --- sample functions with assorted signatures ---------------------------------------------------------


def f_plain(a, b=2, *rest, c, d=4, **extra):  # noqa: ANN001, ANN002, ANN003, ANN201
    """Plain function with every kind of parameter."""
    return [a, b, rest, c, d, extra]


def f_posonly(x: int, /, y: str = "y", *, z: list[int] | None = None) -> tuple[Any, ...]:
    return (x, y, z)


def f_noargs() -> object:
    return SENTINEL


SENTINEL = object()


# --- return values, exceptions and metadata ------------------------------------------------------------


@SETTINGS
@given(value=values, opts=maybe_options)
def test_same_return_object(recording: bool, value: Any, opts: dict[str, Any] | None) -> None:
    calls = []

    def identity(v: Any) -> Any:
        calls.append(v)
        return v

    traced = decorate(identity, opts)
    assert traced(value) is value
    assert calls == [value] and calls[0] is value


@SETTINGS
@given(
    a=values,
    c=values,
    rest=st.lists(values, max_size=3),
    extra=st.dictionaries(st.sampled_from("pqr"), values),
)
def test_every_parameter_kind_passes_through(
    recording: bool, a: Any, c: Any, rest: list[Any], extra: Any
) -> None:
    traced = tracemend.track(f_plain)
    assert traced(a, 1, *rest, c=c, **extra) == f_plain(a, 1, *rest, c=c, **extra)
    assert tracemend.track(f_noargs)() is SENTINEL
    assert tracemend.track(f_posonly)(3, z=[1]) == (3, "y", [1])
    with pytest.raises(TypeError):
        tracemend.track(f_posonly)(x=3)  # a bad call fails exactly as without the decorator


def _tb_entries(exc: BaseException) -> list[tuple[str, str, str | None]]:
    return [(f.filename, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]


exceptions = st.sampled_from(
    [ValueError, KeyError, RuntimeError, ZeroDivisionError, KeyboardInterrupt, SystemExit]
)


@SETTINGS
@given(exc_type=exceptions, message=st.text(max_size=30), opts=maybe_options)
def test_same_exception_object_and_traceback(
    recording: bool, exc_type: type[BaseException], message: str, opts: dict[str, Any] | None
) -> None:
    raised: list[BaseException] = []

    def fail(msg: str) -> None:
        err = exc_type(msg)
        raised.append(err)
        raise err

    def call(fn: Any) -> BaseException:
        try:
            fn(message)
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt/SystemExit included on purpose
            return exc
        raise AssertionError("did not raise")

    bare_exc = call(fail)
    traced_exc = call(decorate(fail, opts))
    assert traced_exc is raised[-1]
    assert len(raised) == 2
    # The user's frames (everything below the caller) are a suffix of the traced traceback.
    bare_frames = _tb_entries(bare_exc)[1:]
    traced_frames = _tb_entries(traced_exc)
    assert traced_frames[-len(bare_frames) :] == bare_frames
    assert traced_frames[-1][1] == "fail"


def _async_fn(x: int) -> Any:
    async def inner(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    return inner


KINDS = {
    "function": lambda: lambda x: x,
    "coroutine": lambda: _make_coroutine(),
    "generator": lambda: _make_generator(),
    "async_generator": lambda: _make_async_generator(),
}


def _make_coroutine() -> Any:
    async def co(x: int, *, y: str = "a") -> int:
        """A coroutine."""
        return x

    return co


def _make_generator() -> Any:
    def gen(x: int) -> Any:
        """A generator."""
        yield x
        return x

    return gen


def _make_async_generator() -> Any:
    async def agen(x: int) -> Any:
        """An async generator."""
        yield x

    return agen


PREDICATES = (
    inspect.iscoroutinefunction,
    inspect.isgeneratorfunction,
    inspect.isasyncgenfunction,
    inspect.isfunction,
    callable,
)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bare", [True, False], ids=["bare", "options"])
def test_signature_metadata_and_nature_preserved(kind: str, bare: bool) -> None:
    fn = KINDS[kind]()
    fn.custom_attribute = {"kept": True}
    traced = tracemend.track(fn) if bare else tracemend.track(name="x", kind="tool", tags=["t"])(fn)
    assert inspect.signature(traced) == inspect.signature(fn)
    for attr in ("__name__", "__qualname__", "__doc__", "__module__", "__annotations__"):
        assert getattr(traced, attr) == getattr(fn, attr), attr
    assert traced.__wrapped__ is fn
    assert traced.custom_attribute == {"kept": True}
    assert [p(traced) for p in PREDICATES] == [p(fn) for p in PREDICATES]


@SETTINGS
@given(x=st.integers(), y=st.text(max_size=5), opts=maybe_options)
def test_coroutine_result_and_exception(recording: bool, x: int, y: str, opts: dict[str, Any] | None) -> None:
    err = LookupError(y)

    async def co(x: int, y: str) -> Any:
        await asyncio.sleep(0)
        if x % 3 == 0:
            raise err
        return (x, y)

    traced = decorate(co, opts)
    if x % 3 == 0:
        with pytest.raises(LookupError) as info:
            asyncio.run(traced(x, y))
        assert info.value is err
        assert _tb_entries(info.value)[-1][1] == "co"
    else:
        assert asyncio.run(traced(x, y)) == (x, y)


# --- generators: send / throw / close scripts -----------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.just(("next",)),
        st.tuples(st.just("send"), st.integers(-5, 5)),
        st.tuples(st.just("throw"), st.sampled_from(["caught", "uncaught"])),
        st.just(("close",)),
    ),
    max_size=8,
)


class Caught(Exception):
    pass


class Uncaught(Exception):
    pass


def make_gen(log: list[Any]) -> Any:
    def gen(n: int) -> Any:
        total = 0
        try:
            for i in range(n):
                try:
                    got = yield (i, total)
                except Caught as exc:
                    got = -100
                    log.append(("caught", str(exc)))
                total += got or 0
            return ("done", total)
        finally:
            log.append("finally")

    return gen


def run_script(gen_obj: Any, script: list[tuple[Any, ...]]) -> list[Any]:
    outcomes: list[Any] = []
    for op in script:
        try:
            if op[0] == "next":
                outcomes.append(("yield", next(gen_obj)))
            elif op[0] == "send":
                outcomes.append(("yield", gen_obj.send(op[1])))
            elif op[0] == "throw":
                exc = Caught("c") if op[1] == "caught" else Uncaught("u")
                outcomes.append(("yield", gen_obj.throw(exc)))
            else:
                outcomes.append(("closed", gen_obj.close()))
        except StopIteration as stop:
            outcomes.append(("return", stop.value))
        except (Caught, Uncaught, TypeError) as exc:
            outcomes.append(("raised", type(exc).__name__, str(exc)))
    return outcomes


@SETTINGS
@given(n=st.integers(0, 4), script=ops, opts=maybe_options)
@example(n=2, script=[("next",), ("throw", "caught"), ("send", 3)], opts=None)
@example(n=3, script=[("next",), ("close",), ("next",)], opts=None)
@example(n=3, script=[("next",), ("throw", "uncaught"), ("next",)], opts={"name": "g"})
def test_generator_send_throw_close(
    recording: bool, n: int, script: list[Any], opts: dict[str, Any] | None
) -> None:
    bare_log: list[Any] = []
    traced_log: list[Any] = []
    bare = run_script(make_gen(bare_log)(n), script)
    traced = run_script(decorate(make_gen(traced_log), opts)(n), script)
    assert traced == bare
    assert traced_log == bare_log


def make_agen(log: list[Any]) -> Any:
    async def agen(n: int) -> Any:
        total = 0
        try:
            for i in range(n):
                try:
                    got = yield (i, total)
                except Caught as exc:
                    got = -100
                    log.append(("caught", str(exc)))
                await asyncio.sleep(0)
                total += got or 0
        finally:
            log.append("finally")

    return agen


async def run_async_script(agen_obj: Any, script: list[tuple[Any, ...]]) -> list[Any]:
    outcomes: list[Any] = []
    for op in script:
        try:
            if op[0] == "next":
                outcomes.append(("yield", await agen_obj.__anext__()))
            elif op[0] == "send":
                outcomes.append(("yield", await agen_obj.asend(op[1])))
            elif op[0] == "throw":
                exc = Caught("c") if op[1] == "caught" else Uncaught("u")
                outcomes.append(("yield", await agen_obj.athrow(exc)))
            else:
                outcomes.append(("closed", await agen_obj.aclose()))
        except StopAsyncIteration:
            outcomes.append(("stop",))
        except (Caught, Uncaught, TypeError, RuntimeError) as exc:
            outcomes.append(("raised", type(exc).__name__, str(exc)))
    return outcomes


@SETTINGS
@given(n=st.integers(0, 4), script=ops, opts=maybe_options)
@example(n=2, script=[("next",), ("throw", "caught"), ("send", 3)], opts=None)
@example(n=3, script=[("next",), ("close",), ("next",)], opts=None)
@example(n=3, script=[("next",), ("throw", "uncaught"), ("next",)], opts={"name": "g"})
def test_async_generator_asend_athrow_aclose(
    recording: bool, n: int, script: list[Any], opts: dict[str, Any] | None
) -> None:
    bare_log: list[Any] = []
    traced_log: list[Any] = []

    async def both() -> tuple[list[Any], list[Any]]:
        bare = await run_async_script(make_agen(bare_log)(n), script)
        traced = await run_async_script(decorate(make_agen(traced_log), opts)(n), script)
        return bare, traced

    bare, traced = asyncio.run(both())
    assert traced == bare
    assert traced_log == bare_log


def test_generator_return_value_and_early_close_recorded(spine_store: Path) -> None:
    @tracemend.track
    def numbers(n: int) -> Any:
        yield from range(n)
        return "finished"

    def consume() -> Any:
        return (yield from numbers(3))

    gen = consume()
    assert list(gen) == [0, 1, 2]
    early = numbers(10)
    assert next(early) == 0 and next(early) == 1
    early.close()
    traces = read_traces(spine_store)
    assert [t.output for t in traces] == [[0, 1, 2], [0, 1]]
    assert traces[1].spans[0].attributes.get("closed_early") is True


# --- methods, staticmethods, classmethods ---------------------------------------------------------------


class Agent:
    factor = 3

    def __init__(self, base: int) -> None:
        self.base = base

    @tracemend.track
    def method(self, x: int) -> int:
        return self.base + x

    @tracemend.track(kind="tool")
    @staticmethod
    def static_above(x: int) -> int:
        return x * 2

    @staticmethod
    @tracemend.track(kind="tool")
    def static_below(x: int) -> int:
        return x * 5

    @tracemend.track
    @classmethod
    def class_above(cls, x: int) -> int:
        return cls.factor * x

    @classmethod
    @tracemend.track(name="cb")
    def class_below(cls, x: int) -> int:
        return cls.factor + x

    @tracemend.track
    async def amethod(self, x: int) -> int:
        return self.base - x


class SubAgent(Agent):
    factor = 10


@SETTINGS
@given(x=st.integers(-1000, 1000))
def test_methods_static_and_class_methods(recording: bool, x: int) -> None:
    agent = Agent(7)
    assert agent.method(x) == 7 + x
    assert Agent.method(agent, x) == 7 + x
    assert Agent.static_above(x) == agent.static_above(x) == 2 * x
    assert Agent.static_below(x) == agent.static_below(x) == 5 * x
    assert Agent.class_above(x) == 3 * x and SubAgent.class_above(x) == 10 * x
    assert SubAgent(1).class_below(x) == 10 + x
    assert asyncio.run(agent.amethod(x)) == 7 - x
    assert isinstance(Agent.__dict__["static_above"], staticmethod)
    assert isinstance(Agent.__dict__["class_above"], classmethod)
    assert inspect.signature(Agent.method) == inspect.signature(Agent.method.__wrapped__)


def test_method_inputs_leave_out_self_and_cls(spine_store: Path) -> None:
    Agent(7).method(1)
    SubAgent.class_above(2)
    Agent.static_above(3)
    traces = read_traces(spine_store)
    assert [t.input for t in traces] == [{"x": 1}, {"x": 2}, {"x": 3}]
    assert traces[0].entry_point == f"{__name__}:Agent.method"


# --- errors inside the recorder never reach user code --------------------------------------------------


def _internal_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tracemend" and "internal error" in r.getMessage()]


def test_span_start_failure_is_logged_once_and_call_happens(
    spine_store: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("recorder bug")

    monkeypatch.setattr(capture, "_find_config", broken)
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        return x + 1

    @tracemend.track
    def fails() -> None:
        raise ValueError("user error")

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        assert [work(i) for i in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(ValueError, match="user error"):
            fails()
    assert calls == [0, 1, 2, 3, 4]
    assert len(_internal_warnings(caplog)) == 1
    assert capture.STATE.internal_errors == 6
    assert read_traces(spine_store) == []


def test_span_end_failure_is_swallowed(spine_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ExplodingQueue(list):
        def append(self, item: Any) -> None:
            raise MemoryError("queue bug")

    monkeypatch.setattr(capture.STATE, "queue", ExplodingQueue())
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        return x

    assert work(4) == 4 and calls == [4]
    assert capture.STATE.internal_errors == 1


def test_encoder_failure_loses_the_span_not_the_call(
    spine_store: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any, value: Any) -> Any:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(serialize.Encoder, "encode", broken)
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        return x * 3

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        assert [work(i) for i in range(4)] == [0, 3, 6, 9]
        tracemend.flush()
    assert calls == [0, 1, 2, 3]
    assert len(_internal_warnings(caplog)) == 1
    # Nothing vanishes silently: the lost spans are counted as dropped, in this process and in the store.
    assert tracemend.stats()["dropped"] == 4
    with Store(spine_store) as store:
        assert store.count() == 0
        assert sum(w.dropped for w in store.writer_stats()) == 4


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_object_with_raising_repr_is_recorded(spine_store: Path) -> None:
    @tracemend.track
    def takes(obj: Any, items: set[Any]) -> Any:
        return obj

    bad = BadRepr()
    assert takes(bad, {BadRepr(), BadRepr()}) is bad
    trace = read_traces(spine_store)[0]
    assert trace.input["obj"]["__repr__"] == "<unrepresentable: RuntimeError>"
    assert trace.input["obj"]["__type__"].endswith("BadRepr")
    assert len(trace.input["items"]) == 2
    assert trace.output["__repr__"] == "<unrepresentable: RuntimeError>"


def test_broken_config_keeps_the_trace(spine_store: Path, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenConfig(tracemend.Config):
        model: str = "m"

        def model_dump(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("config bug")

    calls: list[str] = []

    @tracemend.track
    def run(question: str, config: BrokenConfig) -> str:
        calls.append(question)
        return "answer"

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        assert run("q", BrokenConfig()) == "answer"
        assert run("q2", config=BrokenConfig()) == "answer"
        traces = read_traces(spine_store)
    assert calls == ["q", "q2"]
    assert [t.output for t in traces] == ["answer", "answer"]
    assert all(t.config is None for t in traces)
    assert len(_internal_warnings(caplog)) == 1


def test_unusable_store_never_reaches_user_code(
    tmp_path: Path, spine_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = tmp_path / "not-a-store.db"
    foreign.write_bytes(b"hello, I am a text file\n")
    tracemend.configure(db_path=foreign)

    @tracemend.track
    def work(x: int) -> int:
        return -x

    with caplog.at_level(logging.ERROR, logger="tracemend"):
        assert [work(i) for i in range(3)] == [0, -1, -2]
        tracemend.flush()
    assert foreign.read_bytes() == b"hello, I am a text file\n"
    assert tracemend.stats()["dropped"] == 3
    assert "not a tracemend store" in (tracemend.stats()["store_error"] or "")


def test_functools_partial_and_callable_objects(spine_store: Path) -> None:
    class Callable_:
        def __call__(self, x: int) -> int:
            return x + 100

    partial = functools.partial(lambda a, b: a - b, 10)
    assert tracemend.track(partial)(4) == 6
    assert tracemend.track(Callable_())(1) == 101
    traces = read_traces(spine_store)
    assert [t.name for t in traces] == ["partial", "Callable_"]
    assert [t.input for t in traces] == [{"b": 4}, {"x": 1}]
