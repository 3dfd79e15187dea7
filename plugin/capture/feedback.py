"""``tracemend.feedback``: a person's judgment of a trace (a thumbs-down in a UI), stored as a score.

Called from the app, usually in a request handler, so it is built like the decorator: it checks its
arguments, appends one tuple to a queue and returns (a few microseconds, ``bench/feedback.py``); it never
raises into the caller and never waits for the store. A daemon thread of its own writes what is queued in
one short transaction. Why not write at once: the app's thread would wait on SQLite's lock while a writer
(this process's or another's) commits a batch, and would load pydantic and the store on its first
thumbs-down. Why not the span writer's queue: feedback often arrives long after its trace was written, from
a process that never traced anything, and mixing it into the span batches would tie two unrelated record
shapes together.

What is queued is written at once by the thread, by :func:`tracemend.flush`, and at exit.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections import deque
from typing import Any

from tracemend.capture.state import STATE, internal_error, logger

MAX_REASON_CHARS = 4000
MAX_NAME_CHARS = 100
POLL = 0.2
_HEX = frozenset("0123456789abcdef")

# (score id, trace id, value, name, reason, category, created ns)
_Item = tuple[Any, ...]
_pending: deque[_Item] = deque()
_wake = threading.Event()
_drain_lock = threading.Lock()
_start_lock = threading.Lock()
_started = False
_hooked = False
_counts = {"queued": 0, "written": 0, "rejected": 0, "failed": 0}
_store: Any = None
_store_path: Any = None


def feedback(
    trace_id: str | None,
    score: bool | float,
    *,
    name: str = "user",
    reason: str | None = None,
    category: str | None = None,
) -> None:
    """Record a person's judgment of a trace: ``score`` is True/1 (good) … False/0 (bad); below 0.5 is
    negative feedback, which the analyzer treats as a failure with the signature ``name`` + ``category``.

    ``trace_id`` is what :func:`tracemend.current_trace_id` returned while the trace ran. Never raises:
    bad arguments are logged once and the feedback is dropped (``feedback_stats()`` counts it). With
    recording off (``TRACEMEND_DISABLED=1``, ``configure(enabled=False)``) it does nothing.
    """
    if not STATE.on:  # recording is off: there is no trace to score
        return
    try:
        item = _item(trace_id, score, name, reason, category)
        if item is None:
            _counts["rejected"] += 1
            return
        _pending.append(item)
        _counts["queued"] += 1
        if not _started:
            _start()
        _wake.set()
    except Exception:
        internal_error("feedback")


_warned: set[str] = set()


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning("tracemend.feedback: %s; this feedback was dropped", message)


def _item(trace_id: Any, score: Any, name: Any, reason: Any, category: Any) -> _Item | None:
    if (
        not isinstance(trace_id, str)
        or len(trace_id.strip()) != 32
        or not _HEX.issuperset(trace_id.strip().lower())
    ):
        _warn(f"trace_id must be the 32 hex digits of tracemend.current_trace_id(), got {trace_id!r:.60}")
        return None
    if isinstance(score, bool):
        value = 1.0 if score else 0.0
    elif isinstance(score, int | float) and not math.isnan(score) and 0.0 <= score <= 1.0:
        value = float(score)
    else:
        _warn(f"score must be True/False or a number from 0 (bad) to 1 (good), got {score!r:.60}")
        return None
    if not isinstance(name, str) or not name.strip():
        _warn(f"name must be a non-empty string, got {name!r:.60}")
        return None
    if reason is not None and not isinstance(reason, str):
        reason = str(reason)
    if category is not None and not isinstance(category, str):
        category = str(category)
    return (
        os.urandom(8).hex(),
        trace_id.strip().lower(),
        value,
        name.strip()[:MAX_NAME_CHARS],
        reason,
        category,
        time.time_ns(),
    )


def _start() -> None:
    global _started, _hooked
    with _start_lock:
        if _started:
            return
        _started = True
        if not _hooked:
            _hooked = True
            atexit.register(flush_feedback)
            os.register_at_fork(after_in_child=_forget_parent)
        threading.Thread(target=_run, name="tracemend-feedback", daemon=True).start()


def _run() -> None:
    while True:
        _wake.wait(POLL)
        _wake.clear()
        if _pending:
            flush_feedback()


def flush_feedback() -> int:
    """Write what is queued now, from the calling thread; returns how many were written."""
    if not _pending and not _drain_lock.locked():
        return 0
    try:
        with _drain_lock:
            batch = []
            while _pending:
                batch.append(_pending.popleft())
            return _write(batch) if batch else 0
    except Exception:
        internal_error("writing feedback")
        return 0


def feedback_score(
    trace_id: str,
    value: float,
    *,
    name: str = "user",
    reason: str | None = None,
    category: str | None = None,
    created_ns: int | None = None,
    score_id: str | None = None,
    scrub: Any = None,
) -> Any:
    """The :class:`~tracemend.records.Score` of one feedback (``tracemend feedback`` writes it directly).
    ``scrub`` redacts the person's text (the recorder's redactor)."""
    from datetime import UTC, datetime

    from tracemend.records import Score

    def clean(text: str | None, limit: int) -> str | None:
        if text is None:
            return None
        text = text[:limit]
        return scrub(text) if scrub is not None else text

    ns = created_ns if created_ns is not None else time.time_ns()
    return Score(
        score_id=f"fb-{score_id or os.urandom(8).hex()}",
        trace_id=trace_id,
        source="feedback",
        name=name,
        verdict="fail" if value < 0.5 else "pass",
        value=value,
        category=clean(category, 200) or None,
        reason=clean(reason, MAX_REASON_CHARS) or "",
        created_at=datetime.fromtimestamp(ns / 1e9, tz=UTC),
    )


def recorder_scrub() -> Any:
    """The redaction the recorder applies to text (None when redaction is off)."""
    from tracemend.capture.redact import Redactor
    from tracemend.capture.writer import current_settings

    settings = current_settings()
    return Redactor(settings.redact_keys, settings.redact_patterns).scrub if settings.redact else None


def _write(batch: list[_Item]) -> int:
    global _store, _store_path
    from tracemend.capture.writer import current_settings
    from tracemend.store import Store

    try:
        path = current_settings().resolved_db_path()
        if _store is None or _store_path != path:
            if _store is not None:
                _store.close()
            _store, _store_path = None, None
            _store = Store(path)
            _store_path = path
        scrub = recorder_scrub()
        scores = [
            feedback_score(
                tid,
                value,
                name=name,
                reason=reason,
                category=category,
                created_ns=ns,
                score_id=sid,
                scrub=scrub,
            )
            for sid, tid, value, name, reason, category, ns in batch
        ]
        _store.add_scores(scores)
    except Exception:
        _counts["failed"] += len(batch)
        internal_error("writing feedback")
        return 0
    _counts["written"] += len(batch)
    return len(batch)


def close_feedback() -> None:
    """Write what is queued and close the store connection (a later feedback opens it again)."""
    global _store, _store_path
    flush_feedback()
    with _drain_lock:
        if _store is not None:
            _store.close()
        _store, _store_path = None, None


def feedback_stats() -> dict[str, int]:
    """This process's feedback counters: queued, written, rejected (bad arguments), failed (store errors),
    and pending (not written yet)."""
    return {**_counts, "pending": len(_pending)}


def _forget_parent() -> None:
    # The parent's queue is written by the parent; its thread and store connection are not the child's.
    global _started, _store, _store_path, _drain_lock, _start_lock
    _pending.clear()
    _started = False
    _store, _store_path = None, None
    _drain_lock = threading.Lock()
    _start_lock = threading.Lock()
