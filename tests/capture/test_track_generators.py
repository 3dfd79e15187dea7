"""``@track`` on generators and async generators: send/throw/close (and their async forms) behave exactly
as undecorated, compared over scripts of operations with recording on and off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import tracemend

from helpers.spine import read_traces
from helpers.transparency import SETTINGS, decorate, maybe_options

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


# Each operation of a script: the generator method and the async generator method that perform it.
METHODS = {
    "next": ("__next__", "__anext__"),
    "send": ("send", "asend"),
    "throw": ("throw", "athrow"),
    "close": ("close", "aclose"),
}


def perform(gen_obj: Any, op: tuple[Any, ...], is_async: bool) -> Any:
    """Start ``op`` on the generator: its result, or for an async generator the awaitable of it."""
    method = getattr(gen_obj, METHODS[op[0]][is_async])
    if op[0] == "send":
        return method(op[1])
    if op[0] == "throw":
        return method(Caught("c") if op[1] == "caught" else Uncaught("u"))
    return method()


def outcome_kind(op: tuple[Any, ...]) -> str:
    return "closed" if op[0] == "close" else "yield"


def run_script(gen_obj: Any, script: list[tuple[Any, ...]]) -> list[Any]:
    outcomes: list[Any] = []
    for op in script:
        try:
            outcomes.append((outcome_kind(op), perform(gen_obj, op, False)))
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
            outcomes.append((outcome_kind(op), await perform(agen_obj, op, True)))
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
