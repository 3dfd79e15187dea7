"""Span records → store rows, on the writer thread: arguments bound by name, values encoded with limits and
redaction, times, error frames, config snapshots, and the trace row when the record is a trace's root.

This is the writer's per-span cost, so the common cases take short paths: arguments that bind by position
skip ``inspect.Signature.bind``, times reuse the formatted second, a config object is snapshotted once per
batch, and JSON is written by orjson (the standard library's encoder where orjson cannot: huge ints).
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

from tracemend.capture.config import config_hash, config_snapshot, qualified_class
from tracemend.capture.encode import Encoder
from tracemend.capture.errorinfo import MAX_MESSAGE, FrameClassifier, error_info
from tracemend.capture.state import CallSpec, SpanRecord, internal_error
from tracemend.records import CodeVersion, ErrorInfo

try:
    import orjson

    def dumps(value: Any) -> str:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # ints beyond 64 bits: the standard encoder prints them
            return json.dumps(value, ensure_ascii=False)

except ImportError:  # pragma: no cover - orjson comes with opik

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)


def _text_or_none(encoder: Encoder, value: Any) -> str | None:
    return None if value is None else encoder.text(str(value), MAX_TAG)


_SIMPLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
MAX_TAG = 200


class Built:
    """The rows of one span record, and the strings that still have to be scanned for secrets."""

    __slots__ = ("rec", "span", "trace", "configs", "texts")

    def __init__(self, rec: SpanRecord) -> None:
        self.rec = rec
        self.span: tuple[Any, ...] = ()
        self.trace: tuple[Any, ...] | None = None
        self.configs: list[tuple[str, str]] = []
        self.texts: list[str] = []


class _Binder:
    """Binding by position without ``Signature.bind``, for signatures of plain parameters."""

    __slots__ = ("positional", "order", "after_first")

    def __init__(self, signature: inspect.Signature) -> None:
        params = list(signature.parameters.values())
        self.positional = tuple(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.after_first = self.positional[1:]
        self.order = {p.name: i for i, p in enumerate(params)}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if len(args) > len(self.positional):
            return None
        bound = dict(zip(self.positional, args))  # noqa: B905 (strict= costs a keyword call)
        if kwargs:
            order = self.order
            for key in kwargs:
                if key in bound or key not in order:
                    return None  # an invalid call: Signature.bind says how
            bound.update(kwargs)
            bound = dict(sorted(bound.items(), key=lambda item: order[item[0]]))
        return bound


_binders: dict[int, tuple[CallSpec, _Binder | None]] = {}


def _binder(spec: CallSpec) -> _Binder | None:
    hit = _binders.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    signature = spec.signature
    simple = signature is not None and all(p.kind in _SIMPLE for p in signature.parameters.values())
    binder = _Binder(signature) if simple and signature is not None else None
    if len(_binders) > 4096:  # decorated closures made per call must not grow this without end
        _binders.clear()
    _binders[id(spec)] = (spec, binder)
    return binder


def flat_input(rec: SpanRecord, encoder: Encoder) -> dict[str, Any] | None:
    """The encoded arguments of a call made by position with plain values (see :meth:`Encoder.flat`);
    None when :func:`bind` and the general encoder are needed."""
    args = getattr(rec, "args", None)
    if args is None or getattr(rec, "kwargs", None):
        return None
    spec = rec.spec
    binder = _binder(spec)
    if binder is None or len(args) > len(binder.positional):
        return None
    if spec.skip_first:
        return encoder.flat(binder.after_first, args[1:])
    return encoder.flat(binder.positional, args)


def bind(rec: SpanRecord) -> dict[str, Any]:
    """The call's arguments by parameter name (self/cls left out)."""
    spec = rec.spec
    args = getattr(rec, "args", None)
    kwargs = getattr(rec, "kwargs", None) or {}
    if args is None:
        return {}
    if spec.signature is None:
        return {"args": list(args), "kwargs": kwargs}
    binder = _binder(spec)
    bound = binder.bind(args, kwargs) if binder is not None else None
    if bound is None:
        try:
            bound = dict(spec.signature.bind_partial(*args, **kwargs).arguments)
        except TypeError:  # the call itself was invalid; keep what was passed
            return {"args": list(args), "kwargs": kwargs}
    if spec.skip_first and bound:
        first = next(iter(bound))
        del bound[first]
    return bound


class Clock:
    """ISO-8601 UTC times from nanoseconds; the date and time of day are formatted once per second."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, ns: int) -> str:
        second, rest = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%06d+00:00" % (self._prefix, rest // 1000)  # noqa: UP031 (faster than a format spec)


class RowBuilder:
    """Builds the rows of span records for one writer (its encoder, frame classifier and settings)."""

    def __init__(self, encoder: Encoder, classifier: FrameClassifier, project: str, environment: str) -> None:
        self.encoder = encoder
        self.classifier = classifier
        self.project = project
        self.environment = environment
        self.clock = Clock()
        self.code = CodeVersion()
        self._code_dump: dict[str, Any] = self.code.model_dump()
        # Config object → (the object, snapshot, hash, row, texts); the object is held so its id stays unique.
        self._configs: dict[int, tuple[Any, Any, Any, Any, list[str]]] = {}

    def set_code_version(self, code: CodeVersion) -> None:
        self.code = code
        self._code_dump = code.model_dump()

    def new_batch(self) -> None:
        self._configs.clear()

    def _message(self, text: str) -> str:
        return self.encoder.text(text, MAX_MESSAGE)

    def _config(self, obj: Any, built: Built) -> tuple[dict[str, Any] | None, str | None]:
        """The config's snapshot and hash; the config row goes with every span that uses it (the store
        keeps one). Snapshotted once per batch, except when scrubbing (the redacted snapshot differs)."""
        scrub = self.encoder.scrub
        hit = self._configs.get(id(obj))
        if hit is not None and hit[0] is obj and not scrub:
            _, snapshot, digest, row, texts = hit
            built.texts.extend(texts)
        else:
            try:
                snapshot = config_snapshot(obj)
            except Exception:  # a broken config loses its snapshot, not the trace
                internal_error("config snapshot")
                snapshot = None
            digest = row = None
            first = len(built.texts)
            if snapshot is not None:
                snapshot = self.encoder.encode(snapshot)
                digest = config_hash(snapshot)
                row = (digest, dumps(snapshot))
            if not scrub:
                self._configs[id(obj)] = (obj, snapshot, digest, row, built.texts[first:])
        if row is not None:
            built.configs.append(row)
        return snapshot, digest

    def build(self, rec: SpanRecord) -> Built:
        built = Built(rec)
        encoder = self.encoder
        encoder.texts = built.texts
        enc = encoder.encode
        spec = rec.spec
        # bytes.hex() formats ids about twice as fast as format specs do.
        trace_id = rec.trace_id.to_bytes(16, "big").hex()
        span_id = rec.span_id.to_bytes(8, "big").hex()
        parent_id = rec.parent_id.to_bytes(8, "big").hex() if rec.parent_id else None
        exc = rec.exc
        error_dump = None
        if exc is not None:
            error = error_info(exc, self.classifier, rec.tb, text=self._message)
            error_dump = error.model_dump()
        inp = None
        if spec.capture_input:
            inp = flat_input(rec, encoder)
            if inp is None:
                inp = enc(bind(rec))
        out = enc(getattr(rec, "result", None)) if spec.capture_output and exc is None else None
        attrs = rec.attrs
        name = spec.name
        attributes: dict[str, Any] = {}
        if attrs:
            if "__name__" in attrs:
                attrs = dict(attrs)
                name = encoder.text(str(attrs.pop("__name__")), MAX_TAG)
            attributes = enc(attrs)
        if rec.closed_early:
            attributes["closed_early"] = True
        cfg_obj = rec.config
        cfg = cfg_hash = None
        if cfg_obj is not None:
            cfg, cfg_hash = self._config(cfg_obj, built)
            if cfg_hash is not None:
                attributes["config_hash"] = cfg_hash
        clock = self.clock
        start, end = clock.iso(rec.start), clock.iso(rec.end)
        body = {
            "span_id": span_id,
            "trace_id": trace_id,
            "parent_id": parent_id,
            "name": name,
            "kind": spec.kind,
            "start_time": start,
            "end_time": end,
            "input": inp,
            "output": out,
            "error": error_dump,
            "attributes": attributes,
        }
        start_us, end_us = rec.start // 1000, rec.end // 1000
        built.span = (
            trace_id,
            span_id,
            parent_id,
            name,
            spec.kind,
            start_us,
            end_us,
            int(exc is not None),
            dumps(body),
        )
        if rec.root is rec:
            built.trace = self._trace_row(rec, body, error_dump, cfg, cfg_hash, cfg_obj, start_us, end_us)
        return built

    def _trace_row(
        self,
        rec: SpanRecord,
        span: dict[str, Any],
        error_dump: dict[str, Any] | None,
        cfg: dict[str, Any] | None,
        cfg_hash: str | None,
        cfg_obj: Any,
        start_us: int,
        end_us: int,
    ) -> tuple[Any, ...]:
        # The root span closes the trace: its row carries the trace-level facts.
        encoder = self.encoder
        spec = rec.spec
        t_attrs = rec.trace_attrs or {}
        status = t_attrs.get("status") or ("error" if error_dump is not None else "ok")
        if error_dump is None and status != "ok":
            kind = "FailedAssertion" if status == "failed_assertion" else "ErrorStatus"
            message = t_attrs.get("error_message") or ""
            error_dump = ErrorInfo(
                type=f"tracemend.{kind}",
                message=self._message(message if isinstance(message, str) else str(message)),
            ).model_dump()
        extra_tags = t_attrs.get("tags") if t_attrs else None
        if extra_tags:
            tags = [encoder.text(str(t), MAX_TAG) for t in dict.fromkeys((*spec.tags, *extra_tags))]
        else:
            tags = [encoder.text(t, MAX_TAG) for t in spec.tags] if spec.tags else []
        metadata = t_attrs.get("metadata") if t_attrs else None
        code = self.code
        body = {
            "trace_id": span["trace_id"],
            "entry_point": spec.entry_point,
            "name": span["name"],
            "project": self.project,
            "environment": self.environment,
            "input": span["input"] or {},
            "output": span["output"],
            "status": status,
            "error": error_dump,
            "start_time": span["start_time"],
            "end_time": span["end_time"],
            "config": cfg,
            "config_hash": cfg_hash if cfg is not None else None,
            "config_class": qualified_class(cfg_obj)
            if cfg_obj is not None and not isinstance(cfg_obj, dict)
            else None,
            "config_param": spec.config_param if spec.config is None else None,
            "code_version": self._code_dump,
            "tags": tags,
            "metadata": encoder.encode(metadata) if metadata else {},
            "session_id": _text_or_none(encoder, t_attrs.get("session_id")) if t_attrs else None,
            "user_id": _text_or_none(encoder, t_attrs.get("user_id")) if t_attrs else None,
        }
        return (
            span["trace_id"],
            start_us,
            end_us,
            status,
            spec.entry_point,
            span["name"],
            self.project,
            self.environment,
            code.commit,
            int(code.dirty),
            body["config_hash"],
            error_dump["type"] if error_dump else None,
            dumps(body),
        )
