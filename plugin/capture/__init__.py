"""``@track``: record a span per call, at a cost of microseconds, without changing what the call does.

The hot path only takes ids and times, snapshots mutable builtin arguments, links the span to its parent
through a context variable and appends the record to a bounded queue. Everything else (binding arguments
to names, serialising, redaction, error frames, SQLite) happens on the background writer's thread.

Inputs are captured as they were when the call began: builtin containers (list, dict, set, tuple) are
copied at entry (up to ``_FREEZE_BUDGET`` containers and ``_FREEZE_DEPTH`` levels), so an agent that
appends to its ``messages`` list during the call, or a caller that mutates an argument afterwards, does
not change what was recorded.
Other objects (pydantic models, class instances) are kept by reference and serialised shortly after the
call ends; mutating such an object right after the call may show in its record.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import random
import sys
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, overload

logger = logging.getLogger("tracemend")

F = TypeVar("F", bound=Callable[..., Any])

_FREEZE_BUDGET = 1000
_FREEZE_DEPTH = 32
_MAX_GENERATOR_ITEMS = 100
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, complex})
# Kept literal (not imported from records) so that importing tracemend does not import pydantic.
SPAN_KINDS = ("agent", "llm", "tool", "retrieval", "general")
# Classes recognised as an agent's config: tracemend.Config registers itself when first imported, and
# opik.Config is added once the app has imported opik.
_config_types: tuple[type, ...] = ()


def add_config_type(cls: type) -> None:
    global _config_types
    if cls not in _config_types:
        _config_types = (*_config_types, cls)


class _State:
    __slots__ = ("on", "queue", "max_queue", "dropped", "started", "internal_errors", "logged", "lock")

    def __init__(self) -> None:
        self.on = True
        self.queue: deque[_Rec] = deque()
        self.max_queue = 20_000
        self.dropped = 0
        self.started = False
        self.internal_errors = 0
        self.logged: set[str] = set()
        self.lock = threading.Lock()


STATE = _State()
STATE.on = os.environ.get("TRACEMEND_DISABLED", "").strip().lower() not in ("1", "true", "yes", "on")
if os.environ.get("TRACEMEND_QUEUE_SIZE", "").isdigit():
    STATE.max_queue = int(os.environ["TRACEMEND_QUEUE_SIZE"])
_clock = time.time_ns
_bits = random.getrandbits
_modules = sys.modules
_current: ContextVar[_Rec | None] = ContextVar("tracemend_current_span", default=None)


class _Spec:
    """What the decorator learned about the function once, at decoration time."""

    __slots__ = (
        "name",
        "kind",
        "entry_point",
        "signature",
        "skip_first",
        "capture_input",
        "capture_output",
        "config",
        "config_param",
        "config_index",
        "tags",
    )


class _Rec:
    """One span in flight. Attributes are set as needed; the writer reads them with getattr defaults."""

    __slots__ = (
        "spec",
        "span_id",
        "trace_id",
        "parent_id",
        "root",
        "start",
        "end",
        "args",
        "kwargs",
        "result",
        "exc",
        "token",
        "config",
        "attrs",
        "trace_attrs",
        "closed_early",
        "tb",
    )


def _internal_error(where: str) -> None:
    """An error inside the recorder: logged once per place, counted, never raised into user code."""
    STATE.internal_errors += 1
    if where not in STATE.logged:
        STATE.logged.add(where)
        logger.warning(
            "tracemend: internal error in %s (recording continues without it)", where, exc_info=True
        )


# --- hot path ---------------------------------------------------------------------------------------


def _freeze(value: Any, memo: dict[int, Any], depth: int = 0) -> Any:
    """A copy of builtin containers at call time, so later mutation does not rewrite history.

    ``memo`` maps each container already copied (by id) to its copy, as ``copy.deepcopy`` does: shared
    and self-containing structures stay shared and cyclic in the copy (the encoder then marks the cycle).
    Bounded in nodes (``_FREEZE_BUDGET``) and depth (``_FREEZE_DEPTH``); beyond that, values are kept
    by reference rather than recursing towards the interpreter's limit.
    """
    cls = type(value)
    if cls in _IMMUTABLE or depth >= _FREEZE_DEPTH:
        return value
    if cls is not list and cls is not dict and cls is not tuple and cls is not set:
        return value
    key = id(value)
    copied = memo.get(key)
    if copied is not None:
        return copied
    if len(memo) >= _FREEZE_BUDGET:
        return value
    depth += 1
    if cls is list:
        out_list: list[Any] = []
        memo[key] = out_list
        out_list.extend([_freeze(v, memo, depth) for v in value])
        return out_list
    if cls is dict:
        out_dict: dict[Any, Any] = {}
        memo[key] = out_dict
        for k, v in value.items():
            out_dict[k] = _freeze(v, memo, depth)
        return out_dict
    if cls is tuple:
        memo[key] = value  # a tuple cannot hold itself except through a list or dict copied above
        out_tuple = tuple([_freeze(v, memo, depth) for v in value])
        memo[key] = out_tuple
        return out_tuple
    memo[key] = out_set = set(value)
    return out_set


def _freeze_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    for a in args:
        if type(a) not in _IMMUTABLE:
            memo: dict[int, Any] = {}
            return tuple([_freeze(v, memo) for v in args])
    return args


def _freeze_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    for v in kwargs.values():
        if type(v) not in _IMMUTABLE:
            memo: dict[int, Any] = {}
            return {k: _freeze(v, memo) for k, v in kwargs.items()}
    return kwargs


def _find_config(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if spec.config is not None:
        return spec.config
    index = spec.config_index
    if index is not None:
        if index < len(args):
            return args[index]
        return kwargs.get(spec.config_param)
    types = _config_types
    for a in args:
        if isinstance(a, types):
            return a
    if kwargs:
        for v in kwargs.values():
            if isinstance(v, types):
                return v
    return None


def _open(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Rec | None:
    """Start a span (not yet current). None when the recorder itself failed."""
    try:
        rec = _Rec()
        rec.spec = spec
        rec.span_id = _bits(64) or 1
        parent = _current.get()
        if parent is None:
            rec.trace_id = _bits(128) or 1
            rec.root = rec
            rec.parent_id = 0
            if "opentelemetry.trace" in _modules:  # the app may run inside an OTel span: join its trace
                _join_otel(rec)
            if not STATE.started:
                _start_writer()
        else:
            rec.trace_id = parent.trace_id
            rec.root = parent.root
            rec.parent_id = parent.span_id
        if spec.capture_input:
            rec.args = _freeze_args(args)
            rec.kwargs = _freeze_kwargs(kwargs) if kwargs else kwargs
        config = _find_config(spec, args, kwargs)
        if config is not None:
            rec.config = config
            root = rec.root
            if getattr(root, "config", None) is None:
                root.config = config
        rec.start = _clock()
        return rec
    except Exception:
        _internal_error("span start")
        return None


def _join_otel(rec: _Rec) -> None:
    """Note the active OpenTelemetry span's ids on the trace; the OTLP export hangs the trace under it.

    Ids are kept as ints here (formatting 128-bit hex costs about a microsecond); the exporter formats them.
    """
    try:
        ctx = _modules["opentelemetry.trace"].get_current_span().get_span_context()
        trace_id = ctx.trace_id
        if trace_id:  # 0 is the invalid id: no span is active
            rec.trace_attrs = {"metadata": {"otel.trace_id": trace_id, "otel.parent_span_id": ctx.span_id}}
    except Exception:
        _internal_error("reading the OpenTelemetry context")


def _close(rec: _Rec, result: Any, exc: BaseException | None) -> None:
    """End a span and hand it to the writer; never blocks (a full queue drops and counts)."""
    try:
        rec.end = _clock()
        if exc is not None:
            rec.exc = exc
            # The traceback as it stood when the exception left this span; it grows as it propagates.
            rec.tb = exc.__traceback__
        elif rec.spec.capture_output:
            rec.result = _freeze(result, {})
        queue = STATE.queue
        if len(queue) < STATE.max_queue:
            queue.append(rec)
        else:
            with STATE.lock:
                STATE.dropped += 1
    except Exception:
        _internal_error("span end")


def _enter(rec: _Rec) -> None:
    rec.token = _current.set(rec)


def _exit(rec: _Rec) -> None:
    try:
        _current.reset(rec.token)
    except Exception:
        _internal_error("context reset")


# --- wrappers ---------------------------------------------------------------------------------------


def _wrap_function(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not STATE.on:
            return fn(*args, **kwargs)
        rec = _open(spec, args, kwargs)
        if rec is None:
            return fn(*args, **kwargs)
        rec.token = _current.set(rec)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _exit(rec)
            _close(rec, None, exc)
            raise
        _exit(rec)
        _close(rec, result, None)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not STATE.on:
            return await fn(*args, **kwargs)
        rec = _open(spec, args, kwargs)
        if rec is None:
            return await fn(*args, **kwargs)
        rec.token = _current.set(rec)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _exit(rec)
            _close(rec, None, exc)
            raise
        _exit(rec)
        _close(rec, result, None)
        return result

    return wrapper


def _wrap_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    # The span is current only while the generator body runs, not while the consumer holds it.
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not STATE.on:
            return (yield from fn(*args, **kwargs))
        rec = _open(spec, args, kwargs)
        if rec is None:
            return (yield from fn(*args, **kwargs))
        items: list[Any] = []
        try:
            _enter(rec)
            try:
                gen = fn(*args, **kwargs)
            finally:
                _exit(rec)
        except BaseException as exc:
            _close(rec, None, exc)
            raise
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            _enter(rec)
            try:
                if thrown is not None:
                    to_throw, thrown = thrown, None
                    item = gen.throw(to_throw)
                else:
                    item = gen.send(sent)
            except StopIteration as stop:
                _exit(rec)
                _close(rec, items, None)
                return stop.value
            except BaseException as exc:
                _exit(rec)
                _close(rec, None, exc)
                raise
            _exit(rec)
            if len(items) < _MAX_GENERATOR_ITEMS:
                items.append(item)
            try:
                sent = yield item
            except GeneratorExit:
                # The consumer stopped early: close the inner generator and record what it produced.
                _enter(rec)
                try:
                    gen.close()
                finally:
                    _exit(rec)
                rec.closed_early = True
                _close(rec, items, None)
                raise
            except BaseException as exc:
                thrown = exc
                sent = None

    return wrapper


def _wrap_async_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    # One loop for traced and untraced calls (rec is None), so asend/athrow/aclose reach the inner
    # generator either way; an async generator has no ``yield from`` to forward them for us.
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rec = _open(spec, args, kwargs) if STATE.on else None
        items: list[Any] = []
        try:
            if rec is not None:
                _enter(rec)
            try:
                agen = fn(*args, **kwargs)
            finally:
                if rec is not None:
                    _exit(rec)
        except BaseException as exc:
            if rec is not None:
                _close(rec, None, exc)
            raise
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            if rec is not None:
                _enter(rec)
            try:
                if thrown is not None:
                    to_throw, thrown = thrown, None
                    item = await agen.athrow(to_throw)
                else:
                    item = await agen.asend(sent)
            except StopAsyncIteration:
                if rec is not None:
                    _exit(rec)
                    _close(rec, items, None)
                return
            except BaseException as exc:
                if rec is not None:
                    _exit(rec)
                    _close(rec, None, exc)
                raise
            if rec is not None:
                _exit(rec)
                if len(items) < _MAX_GENERATOR_ITEMS:
                    items.append(item)
            try:
                sent = yield item
            except GeneratorExit:
                # The consumer stopped early (aclose): close the inner generator too.
                if rec is None:
                    await agen.aclose()
                    raise
                _enter(rec)
                try:
                    await agen.aclose()
                finally:
                    _exit(rec)
                rec.closed_early = True
                _close(rec, items, None)
                raise
            except BaseException as exc:
                thrown = exc
                sent = None

    return wrapper


# --- decoration -------------------------------------------------------------------------------------


def _note_opik_config() -> None:
    opik = sys.modules.get("opik")  # only if the app already imported it: we never import opik here
    opik_config = getattr(opik, "Config", None) if opik is not None else None
    if isinstance(opik_config, type):
        add_config_type(opik_config)


def _is_config_annotation(annotation: Any, types: tuple[type, ...]) -> bool:
    candidates = typing.get_args(annotation) or (annotation,)
    return any(isinstance(c, type) and issubclass(c, types) for c in candidates)


def _may_hold_config(annotation: Any) -> bool:
    # A parameter named "config" counts unless its annotation rules a config out (``config: str``):
    # unannotated, Any, dicts, mappings and unions holding one of those are accepted.
    if annotation is Any:
        return True
    candidates = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for c in candidates:
        origin = typing.get_origin(c) or c
        if c is Any or (isinstance(origin, type) and issubclass(origin, (dict, Mapping, *_config_types))):
            return True
    return False


def _make_spec(
    fn: Callable[..., Any],
    *,
    name: str | None,
    kind: str,
    capture_input: bool,
    capture_output: bool,
    config: Any,
    tags: list[str] | tuple[str, ...] | None,
) -> _Spec:
    if kind not in SPAN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SPAN_KINDS)}; got {kind!r}")
    spec = _Spec()
    # Callable objects and functools.partial have no __name__ / __qualname__ of their own.
    fn_name = getattr(fn, "__name__", None) or type(fn).__name__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None) or type(fn).__module__
    spec.name = name or fn_name
    spec.kind = kind
    spec.entry_point = f"{module}:{qualname}"
    spec.capture_input = capture_input
    spec.capture_output = capture_output
    spec.config = config
    spec.tags = tuple(tags or ())
    _note_opik_config()
    spec.config_param = None
    spec.config_index = None
    try:
        spec.signature = inspect.signature(fn)
    except (TypeError, ValueError):
        spec.signature = None
    params = list(spec.signature.parameters.values()) if spec.signature else []
    spec.skip_first = bool(params) and params[0].name in ("self", "cls")
    if config is None and params:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: fall back to scanning the arguments
            hints = {}
        for index, param in enumerate(params):
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue  # keyword-only parameters after *args may still be the config
            annotated = _is_config_annotation(hints.get(param.name), _config_types)
            named = param.name in ("config", "agent_config") and _may_hold_config(hints.get(param.name, Any))
            if annotated or named:
                spec.config_param = param.name
                spec.config_index = index if param.kind != param.KEYWORD_ONLY else 10**6
                break
    return spec


def _decorate(fn: Any, **options: Any) -> Any:
    # Applied above @staticmethod / @classmethod: wrap the function inside and rewrap it.
    if isinstance(fn, staticmethod | classmethod):
        return type(fn)(_decorate(fn.__func__, **options))
    if not callable(fn):
        raise TypeError(f"@tracemend.track needs a function; got {type(fn).__name__}")
    spec = _make_spec(fn, **options)
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


# --- updates from inside a traced call --------------------------------------------------------------


def update_current_span(
    *,
    name: str | None = None,
    model: str | None = None,
    usage: Any = None,
    cost: float | None = None,
    metadata: dict[str, Any] | None = None,
    **attributes: Any,
) -> None:
    """Add model, token usage, cost (USD), metadata or other attributes to the span that is running."""
    rec = _current.get()
    if rec is None:
        return
    attrs = getattr(rec, "attrs", None)
    if attrs is None:
        attrs = rec.attrs = {}
    if name is not None:
        attrs["__name__"] = name
    if model is not None:
        attrs["model"] = model
    if usage is not None:
        attrs["usage"] = usage
    if cost is not None:
        attrs["cost"] = attrs.get("cost", 0.0) + float(cost)
    if metadata:
        attrs.setdefault("metadata", {}).update(metadata)
    attrs.update(attributes)


def update_current_trace(
    *,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    status: str | None = None,
    error_message: str | None = None,
) -> None:
    """Add tags or metadata to the running trace, or mark it failed without an exception.

    ``status="failed_assertion"`` or ``status="error"`` with an ``error_message`` records a failure that
    the analyzer groups like an exception.
    """
    rec = _current.get()
    if rec is None:
        return
    root = rec.root
    attrs = getattr(root, "trace_attrs", None)
    if attrs is None:
        attrs = root.trace_attrs = {}
    if tags:
        attrs.setdefault("tags", []).extend(tags)
    if metadata:
        attrs.setdefault("metadata", {}).update(metadata)
    if status is not None:
        if status not in ("ok", "error", "failed_assertion"):
            raise ValueError(f"status must be ok, error or failed_assertion; got {status!r}")
        attrs["status"] = status
    if error_message is not None:
        attrs["error_message"] = error_message


def current_trace_id() -> str | None:
    """The id of the trace being recorded in this context, as stored (32 hex digits)."""
    rec = _current.get()
    return None if rec is None else f"{rec.trace_id:032x}"


def current_span_id() -> str | None:
    rec = _current.get()
    return None if rec is None else f"{rec.span_id:016x}"


def _start_writer() -> None:
    # The thread imports the writer (pydantic, sqlite3, ...) itself, so the first traced call stays cheap;
    # records queue up meanwhile.
    with STATE.lock:
        if STATE.started:
            return
        STATE.started = True
    if not _hooks_installed:
        _install_hooks()
    _flush_in_multiprocessing_child()
    threading.Thread(target=_writer_main, name="tracemend-writer", daemon=True).start()


def _writer_main() -> None:
    # Importing the writer can meet the main thread importing it too (exit hook, flush()), and the
    # import machinery may then hand this thread a partially initialised module for a moment: retry.
    for attempt in range(20):
        try:
            from tracemend.capture.writer import run_forever
        except ImportError:
            time.sleep(0.01 * (attempt + 1))
            continue
        except Exception:
            break
        finally:
            _writer_imported.set()
        run_forever()
        return
    _internal_error("writer start")
    with STATE.lock:
        STATE.started = False  # the next root span tries again


def _flush_in_multiprocessing_child() -> None:
    # A multiprocessing child started by fork ends with os._exit(), which skips atexit: without this
    # every span it recorded but had not written yet is lost. Its own exit function runs finalizers.
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    try:
        if mp.parent_process() is not None:
            from multiprocessing import util

            util.Finalize(None, _flush_at_exit, exitpriority=100)
    except Exception:
        _internal_error("multiprocessing exit hook")


_hooks_installed = False
# Set once the writer thread has imported the writer (pydantic, sqlite3, ...), successfully or not.
_writer_imported = threading.Event()


def _install_hooks() -> None:
    global _hooks_installed
    _hooks_installed = True
    atexit.register(_flush_at_exit)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork)


def _before_fork() -> None:
    # A fork while the writer thread is importing would give the child half-imported modules that
    # nothing will ever finish (that thread does not exist there): the child could never write.
    # Wait for the import, once per process and only if a fork happens in the first moments.
    if STATE.started and not _writer_imported.is_set():
        _writer_imported.wait(10)


def _flush_at_exit() -> None:
    # Also when the queue is empty: the writer thread may hold a batch it has not committed yet.
    if STATE.queue or STATE.started:
        try:
            from tracemend.capture.writer import flush

            flush()
        except Exception:
            _internal_error("flush at exit")


def _after_fork() -> None:
    # The parent's queue and writer thread do not belong to the child; its records are the parent's to write.
    STATE.queue = deque()
    STATE.lock = threading.Lock()
    STATE.started = False
    STATE.dropped = 0
