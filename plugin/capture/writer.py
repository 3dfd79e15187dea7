"""The background writer: drains finished spans from a bounded queue into the store, off the hot path.

A daemon thread wakes every ``POLL_SECONDS`` (or on :func:`flush`), turns queued span records into rows
(binding arguments by name, serialising with limits and redaction, reading error frames) and writes them
in one SQLite transaction. A full queue never blocks the caller: the record is dropped and counted, and
the counts are written to the store so ``tracemend status`` shows them from any process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from tracemend.capture.config import config_hash, config_snapshot, qualified_class
from tracemend.capture.encode import Encoder
from tracemend.capture.errorinfo import FrameClassifier, error_info
from tracemend.capture.redact import Redactor
from tracemend.capture.settings import Settings, from_environment
from tracemend.capture.state import STATE, internal_error
from tracemend.project import project_root, read_code_version
from tracemend.records import CodeVersion, ErrorInfo
from tracemend.store import Store, StoreError

logger = logging.getLogger("tracemend")

POLL_SECONDS = 0.05
BATCH = 2000


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


class Writer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.written = 0
        self.failed = 0
        # The drop count last written to the writers table; drops after the last batch still get reported.
        self._reported_dropped = 0
        self._drain_lock = threading.Lock()
        self._store: Store | None = None
        self._store_error: str | None = None
        self._code_version: CodeVersion | None = None
        self._project = settings.resolved_project()
        self._classifier = FrameClassifier(project_root())
        redactor = Redactor(settings.redact_keys, settings.redact_patterns) if settings.redact else None
        self._encoder = Encoder(
            redactor=redactor,
            max_string_chars=settings.max_string_chars,
            max_items=settings.max_items,
            max_depth=settings.max_depth,
        )
        self._writer_id = f"{os.uname().nodename}:{os.getpid()}:{int(time.time() * 1000)}"

    @property
    def store_error(self) -> str | None:
        return self._store_error

    def _open_store(self) -> Store | None:
        if self._store is None and self._store_error is None:
            try:
                self._store = Store(self.settings.resolved_db_path())
            except StoreError as exc:
                self._store_error = str(exc)
                logger.error("tracemend: traces are not being stored: %s", exc)
        return self._store

    def close(self) -> None:
        with self._drain_lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def drain(self, limit: int | None = None) -> int:
        """Write what is queued (at most ``limit`` spans); returns the number of spans written."""
        total = 0
        queue = STATE.queue
        left = len(queue) if limit is None else limit
        with self._drain_lock:
            while queue and (limit is None or left > 0):
                batch = []
                popleft = queue.popleft
                try:
                    for _ in range(BATCH if limit is None else min(BATCH, left)):
                        batch.append(popleft())
                except IndexError:
                    pass
                left -= len(batch)
                total += self._write(batch)
            if STATE.dropped != self._reported_dropped:
                self._write_stats()
        return total

    def _write_stats(self) -> None:
        store = self._open_store()
        if store is None:
            return
        dropped = STATE.dropped
        writer = (self._writer_id, os.getpid(), time.time_ns() // 1000, self.written, dropped)
        try:
            store.write_rows((), (), (), writer)
            self._reported_dropped = dropped
        except Exception:
            internal_error("writing writer stats")

    def _write(self, batch: list[Any]) -> int:
        store = self._open_store()
        if store is None:
            STATE.count_dropped(len(batch))
            return 0
        if self._code_version is None:
            self._code_version = read_code_version()
        traces: list[tuple[Any, ...]] = []
        spans: list[tuple[Any, ...]] = []
        configs: dict[str, str] = {}
        for rec in batch:
            try:
                self._rows(rec, traces, spans, configs)
            except Exception:
                # Counted as dropped so that written + dropped always equals what was recorded.
                self.failed += 1
                STATE.count_dropped(1)
                internal_error("serialising a span")
        self.written += len(spans)
        dropped = STATE.dropped
        writer = (self._writer_id, os.getpid(), time.time_ns() // 1000, self.written, dropped)
        try:
            store.write_rows(traces, spans, list(configs.items()), writer)
            self._reported_dropped = dropped
        except Exception:
            self.written -= len(spans)
            STATE.count_dropped(len(spans))
            internal_error("writing to the store")
            return 0
        return len(spans)

    def _bind(self, rec: Any) -> dict[str, Any]:
        spec = rec.spec
        args = getattr(rec, "args", None)
        kwargs = getattr(rec, "kwargs", None) or {}
        if args is None:
            return {}
        if spec.signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            bound = spec.signature.bind_partial(*args, **kwargs).arguments
        except TypeError:  # the call itself was invalid; keep what was passed
            return {"args": list(args), "kwargs": kwargs}
        if spec.skip_first and bound:
            first = next(iter(bound))
            bound = {k: v for k, v in bound.items() if k != first}
        return dict(bound)

    def _rows(
        self,
        rec: Any,
        traces: list[tuple[Any, ...]],
        spans: list[tuple[Any, ...]],
        configs: dict[str, str],
    ) -> None:
        enc = self._encoder.encode
        spec = rec.spec
        trace_id = f"{rec.trace_id:032x}"
        span_id = f"{rec.span_id:016x}"
        parent_id = f"{rec.parent_id:016x}" if rec.parent_id else None
        exc = getattr(rec, "exc", None)
        error = error_info(exc, self._classifier, getattr(rec, "tb", None)) if exc is not None else None
        error_dump = error.model_dump() if error is not None else None
        inp = enc(self._bind(rec)) if spec.capture_input else None
        out = enc(getattr(rec, "result", None)) if spec.capture_output and exc is None else None
        attrs = getattr(rec, "attrs", None) or {}
        name = attrs.pop("__name__", spec.name) if attrs else spec.name
        attributes = enc(attrs) if attrs else {}
        if getattr(rec, "closed_early", False):
            attributes["closed_early"] = True
        cfg_obj = getattr(rec, "config", None)
        cfg = cfg_hash = None
        if cfg_obj is not None:
            try:
                cfg = config_snapshot(cfg_obj)
            except Exception:  # a broken config loses its snapshot, not the trace
                internal_error("config snapshot")
                cfg = None
            if cfg is not None:
                cfg = enc(cfg)
                cfg_hash = config_hash(cfg)
                configs[cfg_hash] = json.dumps(cfg)
                attributes["config_hash"] = cfg_hash
        start, end = _iso(rec.start), _iso(rec.end)
        span_body = {
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
        spans.append(
            (
                trace_id,
                span_id,
                parent_id,
                name,
                spec.kind,
                start_us,
                end_us,
                int(error is not None),
                json.dumps(span_body),
            )
        )
        if rec.root is not rec:
            return
        # The root span closes the trace: its row carries the trace-level facts.
        t_attrs = getattr(rec, "trace_attrs", None) or {}
        status = t_attrs.get("status") or ("error" if error is not None else "ok")
        if error is None and status != "ok":
            kind = "FailedAssertion" if status == "failed_assertion" else "ErrorStatus"
            error_dump = ErrorInfo(
                type=f"tracemend.{kind}", message=self._encoder.encode(t_attrs.get("error_message") or "")
            ).model_dump()
        tags = list(dict.fromkeys((*spec.tags, *t_attrs.get("tags", ()))))
        code = self._code_version or CodeVersion()
        trace_body = {
            "trace_id": trace_id,
            "entry_point": spec.entry_point,
            "name": name,
            "project": self._project,
            "environment": self.settings.environment,
            "input": inp or {},
            "output": out,
            "status": status,
            "error": error_dump,
            "start_time": start,
            "end_time": end,
            "config": cfg,
            "config_hash": cfg_hash if cfg is not None else None,
            "config_class": qualified_class(cfg_obj)
            if cfg_obj is not None and not isinstance(cfg_obj, dict)
            else None,
            "config_param": spec.config_param if spec.config is None else None,
            "code_version": code.model_dump(),
            "tags": tags,
            "metadata": enc(t_attrs.get("metadata", {})),
            "session_id": t_attrs.get("session_id"),
            "user_id": t_attrs.get("user_id"),
        }
        traces.append(
            (
                trace_id,
                start_us,
                end_us,
                status,
                spec.entry_point,
                name,
                self._project,
                self.settings.environment,
                code.commit,
                int(code.dirty),
                trace_body["config_hash"],
                error_dump["type"] if error_dump else None,
                json.dumps(trace_body),
            )
        )


_lock = threading.Lock()
_writer: Writer | None = None
_settings: Settings | None = None


def current_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = from_environment()
        STATE.on = _settings.enabled
        STATE.max_queue = _settings.queue_size
    return _settings


def active_writer() -> Writer | None:
    """The writer of this process, if one was created (for counters)."""
    return _writer


def reset_settings() -> None:
    """Forget the settings: the next use reads them from the environment again."""
    global _settings
    _settings = None


def get_writer() -> Writer:
    """The writer for the current settings, created on first use."""
    global _writer
    writer = _writer
    if writer is None:
        with _lock:
            if _writer is None:
                _writer = Writer(current_settings())
            writer = _writer
    return writer


def run_forever() -> None:
    """The writer thread's loop (started by the first traced call)."""
    while True:
        time.sleep(POLL_SECONDS)
        if STATE.queue:
            try:
                get_writer().drain()
            except Exception:
                internal_error("writer")


def flush() -> int:
    """Write every finished span to the store now, from the calling thread. Returns the number written.

    Also waits for a batch the writer thread has already taken off the queue, so that when this returns
    everything recorded before the call is committed (an empty queue alone does not mean that).
    """
    queued = len(STATE.queue)
    if not queued and _writer is None:
        return 0
    try:
        # Only what was queued when flush was called: a producer still running cannot keep it here forever.
        return get_writer().drain(limit=queued)
    except Exception:
        internal_error("flush")
        return 0


def shutdown() -> None:
    """Flush, then close the store; the next traced call writes with the settings in force then."""
    global _writer
    flush()
    with _lock:
        writer, _writer = _writer, None
    if writer is not None:
        writer.close()


def _after_fork() -> None:
    # The parent's SQLite connection does not belong to the child.
    global _lock, _writer
    _lock = threading.Lock()
    _writer = None


os.register_at_fork(after_in_child=_after_fork)
