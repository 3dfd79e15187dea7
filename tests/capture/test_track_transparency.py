"""``@track`` is transparent: what the call returns, raises, looks like and does is unchanged.

Property-based (hypothesis) over argument values and decorator options, each run with recording on and
off. Generators are in ``test_track_generators.py``; failures inside the recorder in
``test_recorder_failures.py``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracemend

from helpers.spine import read_traces
from helpers.transparency import SETTINGS, decorate, maybe_options, values

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
