"""``@track``: record a span per call, at a cost of microseconds, without changing what the call does.

The hot path only takes ids and times, snapshots mutable builtin arguments (``snapshot``), links the span
to its parent through a context variable and appends the record to a bounded queue. Everything else
(binding arguments to names, serialising, redaction, error frames, SQLite) happens on the background
writer's thread.

One core serves the four kinds of callables: :func:`_open` starts a span and makes it current,
:func:`_close` leaves its context and hands it to the writer. The function and coroutine wrappers call
them around the call; the generator wrappers keep the span current only while the generator's body runs
(:class:`_GeneratorSpan`), and forward ``send``/``throw``/``close`` (and their async forms) to it.

Inputs are captured as they were when the call began: builtin containers are copied at entry, so an
agent that appends to its ``messages`` list during the call, or a caller that mutates an argument
afterwards, does not change what was recorded. Other objects (pydantic models, class instances) are
kept by reference and serialised shortly after the call ends; mutating such an object right after the
call may show in its record.
"""

from __future__ import annotations

import functools
import inspect
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from tracemend.capture.lifecycle import start_writer
from tracemend.capture.otel_join import enter_otel, join_otel, leave_otel
from tracemend.capture.snapshot import freeze, freeze_args, freeze_kwargs
from tracemend.capture.spec import make_spec
from tracemend.capture.state import STATE, CallSpec, SpanRecord, current_span, internal_error

F = TypeVar("F", bound=Callable[..., Any])

MAX_GENERATOR_ITEMS = 100
_clock = time.time_ns
_bits = random.getrandbits
_modules = sys.modules
# Bound once: CPython calls a method of a name bound by ``import`` through a plain attribute lookup
# (it assumes a module), which would build a bound method on every span.
_get_current = current_span.get
_set_current = current_span.set
_reset_current = current_span.reset


# --- the core: open a span, make it current, close it --------------------------------------------


def _find_config(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if spec.config is not None:
        return spec.config
    index = spec.config_index
    if index is not None:
        if index < len(args):
            return args[index]
        return kwargs.get(spec.config_param)
    config_types = STATE.config_types
    for a in args:
        if isinstance(a, config_types):
            return a
    if kwargs:
        for v in kwargs.values():
            if isinstance(v, config_types):
                return v
    return None


def _open(spec: CallSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanRecord | None:
    """Start a span and make it current. None when the recorder itself failed."""
    try:
        rec = SpanRecord()
        rec.spec = spec
        rec.span_id = _bits(64) or 1
        parent = _get_current()
        if parent is None:
            rec.root = rec
            rec.parent_id = 0
            if not STATE.started:
                start_writer()
        else:
            rec.trace_id = parent.trace_id
            rec.root = parent.root
            rec.parent_id = parent.span_id
        if spec.capture_input:
            rec.args = freeze_args(args)
            rec.kwargs = freeze_kwargs(kwargs) if kwargs else kwargs
        config = _find_config(spec, args, kwargs)
        if config is not None:
            rec.config = config
            root = rec.root
            if getattr(root, "config", None) is None:
                root.config = config
        rec.start = _clock()
        if parent is None:
            # 16 bits of the start time (in 2**30 ns, about a second; they wrap every 19.5 hours), then 112
            # random bits: a second's traces sit together in the store's indexes, which makes SQLite's
            # inserts into a large store 2.3-2.7x cheaper than for uniformly random ids
            # (bench/store_inserts.py), while the printed 12-digit prefix keeps 32 random bits.
            rec.trace_id = ((rec.start >> 30) & 0xFFFF) << 112 | _bits(112) or 1
        rec.token = _set_current(rec)
        if "opentelemetry.trace" in _modules:  # the app may run inside an OTel span: join its trace
            join_otel(rec, parent)
        return rec
    except Exception:
        internal_error("span start")
        return None


def _close(rec: SpanRecord, result: Any, exc: BaseException | None) -> None:
    """Leave the span's context, end it and hand it to the writer; never blocks (a full queue drops and counts)."""
    if "opentelemetry.trace" in _modules:
        leave_otel(rec)
    try:
        _reset_current(rec.token)
    except Exception:
        internal_error("context reset")
    try:
        rec.end = _clock()
        if exc is not None:
            rec.exc = exc
            # The traceback as it stood when the exception left this span; it grows as it propagates.
            rec.tb = exc.__traceback__
        elif rec.spec.capture_output:
            rec.result = freeze(result, {})
        queue = STATE.queue
        if len(queue) < STATE.max_queue:
            queue.append(rec)
        else:
            STATE.drop(rec)  # the whole trace goes: the writer drops its other spans too
    except Exception:
        internal_error("span end")


class _GeneratorSpan:
    """A generator's span across its steps: current only while the body runs; yielded items collected."""

    __slots__ = ("rec", "items")

    def __init__(self, rec: SpanRecord) -> None:
        self.rec = rec
        self.items: list[Any] = []

    def resume(self) -> None:
        self.rec.token = _set_current(self.rec)
        if "opentelemetry.trace" in _modules:
            enter_otel(self.rec)

    def pause(self, item: Any) -> None:
        if "opentelemetry.trace" in _modules:
            leave_otel(self.rec)
        try:
            _reset_current(self.rec.token)
        except Exception:
            internal_error("context reset")
        if len(self.items) < MAX_GENERATOR_ITEMS:
            self.items.append(item)

    def end(self, exc: BaseException | None = None, *, closed_early: bool = False) -> None:
        if closed_early:
            # The consumer stopped before the end: what it produced so far is the output.
            self.rec.closed_early = True
        _close(self.rec, self.items if exc is None else None, exc)


class _Untraced(_GeneratorSpan):
    """Stands in for the span when an async generator runs without recording."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def pause(self, item: Any) -> None:
        pass

    def end(self, exc: BaseException | None = None, *, closed_early: bool = False) -> None:
        pass


_UNTRACED = _Untraced()


# --- one small wrapper per kind of callable ----------------------------------------------------------


def _wrap_function(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _open(spec, args, kwargs) if STATE.on else None
        if rec is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _close(rec, None, exc)
            raise
        _close(rec, result, None)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _open(spec, args, kwargs) if STATE.on else None
        if rec is None:
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _close(rec, None, exc)
            raise
        _close(rec, result, None)
        return result

    return wrapper


def _wrap_generator(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _open(spec, args, kwargs) if STATE.on else None
        if rec is None:
            return (yield from fn(*args, **kwargs))
        span = _GeneratorSpan(rec)
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            span.end(exc)
            raise
        send = gen.send
        step, arg = send, None
        while True:
            try:
                item = step(arg)
            except StopIteration as stop:
                span.end()
                return stop.value
            except BaseException as exc:
                span.end(exc)
                raise
            span.pause(item)
            try:
                arg = yield item
                step = send
            except GeneratorExit:
                span.resume()
                try:
                    gen.close()
                except BaseException as exc:
                    span.end(exc)
                    raise
                span.end(closed_early=True)
                raise
            except BaseException as exc:
                step, arg = gen.throw, exc
            span.resume()

    return wrapper


def _wrap_async_generator(fn: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    # One loop for traced and untraced calls: an async generator has no ``yield from`` to forward
    # asend/athrow/aclose for us.
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _open(spec, args, kwargs) if STATE.on else None
        span = _UNTRACED if rec is None else _GeneratorSpan(rec)
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            span.end(exc)
            raise
        asend = agen.asend
        step, arg = asend, None
        while True:
            try:
                item = await step(arg)
            except StopAsyncIteration:
                span.end()
                return
            except BaseException as exc:
                span.end(exc)
                raise
            span.pause(item)
            try:
                arg = yield item
                step = asend
            except GeneratorExit:
                span.resume()
                try:
                    await agen.aclose()
                except BaseException as exc:
                    span.end(exc)
                    raise
                span.end(closed_early=True)
                raise
            except BaseException as exc:
                step, arg = agen.athrow, exc
            span.resume()

    return wrapper


# --- decoration -------------------------------------------------------------------------------------


def _decorate(fn: Any, **options: Any) -> Any:
    # Applied above @staticmethod / @classmethod: wrap the function inside and rewrap it.
    if isinstance(fn, staticmethod | classmethod):
        return type(fn)(_decorate(fn.__func__, **options))
    if not callable(fn):
        raise TypeError(f"@tracemend.track needs a function; got {type(fn).__name__}")
    spec = make_spec(fn, **options)
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, spec)
    if inspect.iscoroutinefunction(fn):
        return _wrap_coroutine(fn, spec)
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, spec)
    return _wrap_function(fn, spec)


@overload
def track(fn: F, /) -> F: ...


@overload
def track(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "general",
    capture_input: bool = True,
    capture_output: bool = True,
    config: Any = None,
    tags: list[str] | tuple[str, ...] | None = None,
) -> Callable[[F], F]: ...


def track(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    kind: str = "general",
    capture_input: bool = True,
    capture_output: bool = True,
    config: Any = None,
    tags: list[str] | tuple[str, ...] | None = None,
) -> Any:
    """Record each call of the decorated function as a span (a trace when it is the outermost one).

    Use bare (``@track``) or with options (``@track(kind="tool", config=cfg)``). Works on functions,
    coroutines, generators, async generators, methods, static and class methods. The wrapped function
    keeps its signature, return value, exceptions and sync/async/generator nature.
    """
    options = {
        "name": name,
        "kind": kind,
        "capture_input": capture_input,
        "capture_output": capture_output,
        "config": config,
        "tags": tags,
    }
    if fn is not None:
        return _decorate(fn, **options)
    return lambda f: _decorate(f, **options)
