"""Sync code calling async code: :func:`run_sync`, and :func:`sync_twin` to define a function once (async)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def run_sync(coro_factory: Callable[[], Coroutine[Any, Any, R]]) -> R:
    """Run a coroutine to completion from sync code, whether or not this thread already runs a loop.

    Inside a running loop (a notebook, an async test) the coroutine runs on a helper thread with its own loop,
    since the caller's loop cannot be re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    result: dict[str, Any] = {}

    def runner() -> None:
        try:
            result["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=runner, name="tracemend-llm-sync")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def sync_twin(afunc: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """The blocking version of an async function, with its signature and docstring.

    ``complete = sync_twin(acomplete)`` is named ``complete`` (the leading ``a`` dropped);
    ``inspect.signature(complete)`` is ``acomplete``'s.
    """

    @functools.wraps(afunc)
    def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_sync(lambda: afunc(*args, **kwargs))

    name = afunc.__name__.removeprefix("a")
    twin.__name__ = name
    twin.__qualname__ = afunc.__qualname__[: -len(afunc.__name__)] + name
    return twin
