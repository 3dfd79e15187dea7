"""Process-wide control of the recorder: settings, flushing, counters, and a reset for tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tracemend.capture.state import STATE


def configure(
    *,
    enabled: bool | None = None,
    db_path: str | Path | None = None,
    project: str | None = None,
    environment: str | None = None,
    queue_size: int | None = None,
    redact: bool | None = None,
    redact_keys: list[str] | None = None,
    redact_patterns: list[str] | None = None,
    max_string_chars: int | None = None,
) -> None:
    """Change process-wide settings; arguments left as None keep their value (from the environment).

    ``enabled=False`` turns recording off (one flag check per call). Other settings apply to spans
    written after the call: what is queued is flushed with the old settings first.
    """
    from tracemend.capture.writer import current_settings
    from tracemend.capture.writer import shutdown as shutdown_writer

    settings = current_settings()
    if enabled is not None:
        settings.enabled = enabled
        STATE.on = enabled
    if queue_size is not None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        settings.queue_size = STATE.max_queue = queue_size
    changes: dict[str, Any] = {
        "db_path": Path(db_path) if db_path is not None else None,
        "project": project,
        "environment": environment,
        "redact": redact,
        "redact_keys": redact_keys,
        "redact_patterns": redact_patterns,
        "max_string_chars": max_string_chars,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        shutdown_writer()
        for key, value in changes.items():
            setattr(settings, key, value)


def flush() -> int:
    """Write every finished span to the store now (also done at exit). Returns how many were written."""
    # Nothing was ever recorded: do not load the writer. Otherwise a batch may be in flight on the
    # writer thread even when the queue is empty, and flush waits for it.
    if "tracemend.capture.feedback" in sys.modules:
        from tracemend.capture.feedback import flush_feedback

        flush_feedback()
    if not STATE.queue and not STATE.started:
        return 0
    from tracemend.capture.writer import flush as _flush

    return _flush()


def shutdown() -> None:
    """Flush and close the store connection (a later traced call opens it again)."""
    if "tracemend.capture.feedback" in sys.modules:
        from tracemend.capture.feedback import close_feedback

        close_feedback()
    from tracemend.capture.writer import shutdown as _shutdown

    _shutdown()


def stats() -> dict[str, Any]:
    """This process's recorder counters.

    ``written``: spans stored; ``dropped``: spans of traces dropped because the queue was full (a trace goes
    whole); ``lost``: spans the store could not take (I/O error, disk full, a read-only or unusable file,
    ``store_error`` says which); ``failed``: spans that could not be serialised (a recorder bug, logged);
    ``queued``: waiting for the writer; ``internal_errors``: errors inside the recorder, each logged once.
    """
    written = 0
    store_error = None
    if "tracemend.capture.writer" in sys.modules:
        from tracemend.capture.writer import active_writer

        current = active_writer()
        if current is not None:
            written, store_error = current.written, current.store_error
    return {
        "enabled": STATE.on,
        "written": written,
        "dropped": STATE.dropped,
        "lost": STATE.lost,
        "failed": STATE.failed,
        "queued": len(STATE.queue),
        "internal_errors": STATE.internal_errors,
        "store_error": store_error,
    }


def reset_recorder() -> None:
    """Flush what was queued, forget the writer and its settings, and zero the counters.

    For test suites (``tracemend.testing.reset_recorder``): the next traced call starts from the
    environment's settings, as in a new process.
    """
    from tracemend.capture.writer import reset_settings

    shutdown()
    reset_settings()
    STATE.reset()
