"""The recorder's process-wide state, and the records of spans in flight.

Standard library only: the decorator, the writer thread and the control functions all import this
module and nothing of each other's, so the capture package has no import cycle.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger("tracemend")

DEFAULT_QUEUE_SIZE = 20_000


class CallSpec:
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


class SpanRecord:
    """One span in flight.

    What every span has is a slot. What only some have (an error, updates, a config, a generator closed
    early, the trace's fate) lives in the instance's ``__dict__``, made when the first of them is set, and
    reads as the class default otherwise: reading an unset slot raises inside CPython, which cost the writer
    about a microsecond per field and span.
    """

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
        "token",
        "otel",  # set when opentelemetry is imported: see capture.otel_join
        "__dict__",
    )
    exc: BaseException | None = None
    tb: Any = None
    config: Any = None
    attrs: dict[str, Any] | None = None
    trace_attrs: dict[str, Any] | None = None
    closed_early: bool = False
    # Set on a trace's root: DROPPED when a span of the trace met a full queue (the writer then drops the
    # whole trace), WRITTEN once the writer handed the root to the store (later spans of it go straight in).
    fate: str | None = None


DROPPED = "dropped"
WRITTEN = "written"


class RecorderState:
    """The on-flag, the queue of finished spans and the counters; one instance per process (:data:`STATE`)."""

    __slots__ = (
        "on",
        "queue",
        "max_queue",
        "dropped",
        "started",
        "internal_errors",
        "logged",
        "lock",
        "config_types",
        "failed",
        "lost",
    )

    def __init__(self) -> None:
        self.on = True
        self.queue: deque[SpanRecord] = deque()
        self.max_queue = DEFAULT_QUEUE_SIZE
        self.dropped = 0
        # Whether the writer thread was started in this process.
        self.started = False
        self.internal_errors = 0
        self.logged: set[str] = set()
        self.lock = threading.Lock()
        # Classes recognised as an agent's config: tracemend.Config registers itself when first imported,
        # and opik.Config is added once the app has imported opik.
        self.config_types: tuple[type, ...] = ()
        # Spans the writer could not serialise (a bug in the recorder), and spans lost because the store
        # could not take them (I/O error, disk full, unusable file): counted apart from queue-full drops.
        self.failed = 0
        self.lost = 0

    def count_dropped(self, n: int) -> None:
        with self.lock:
            self.dropped += n

    def drop(self, rec: SpanRecord) -> None:
        """The queue is full: drop ``rec`` and, with it, the rest of its trace (no orphan spans)."""
        with self.lock:
            self.dropped += 1
        try:
            rec.root.fate = DROPPED
        except AttributeError:
            pass

    def reset(self) -> None:
        """Recording on, default queue size, an empty queue and zero counters (the writer is left alone)."""
        self.queue.clear()
        self.dropped = 0
        self.failed = 0
        self.lost = 0
        self.internal_errors = 0
        self.logged.clear()
        self.on = True
        self.max_queue = DEFAULT_QUEUE_SIZE

    def forget_parent(self) -> None:
        """In a forked child: the parent's queue and writer thread are not this process's to use."""
        self.queue = deque()
        self.lock = threading.Lock()
        self.started = False
        self.dropped = 0
        self.failed = 0
        self.lost = 0


STATE = RecorderState()
STATE.on = os.environ.get("TRACEMEND_DISABLED", "").strip().lower() not in ("1", "true", "yes", "on")
if os.environ.get("TRACEMEND_QUEUE_SIZE", "").isdigit():
    STATE.max_queue = int(os.environ["TRACEMEND_QUEUE_SIZE"])

# The span running in this context (thread, asyncio task); its children and update_current_* find it here.
current_span: ContextVar[SpanRecord | None] = ContextVar("tracemend_current_span", default=None)


def internal_error(where: str) -> None:
    """An error inside the recorder: logged once per place, counted, never raised into user code."""
    STATE.internal_errors += 1
    if where not in STATE.logged:
        STATE.logged.add(where)
        logger.warning(
            "tracemend: internal error in %s (recording continues without it)", where, exc_info=True
        )


def add_config_type(cls: type) -> None:
    """Recognise instances of ``cls`` among a traced call's arguments as the agent's config."""
    if cls not in STATE.config_types:
        STATE.config_types = (*STATE.config_types, cls)
