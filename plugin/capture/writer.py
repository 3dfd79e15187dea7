"""The background writer: drains finished spans from a bounded queue into the store, off the hot path.

A daemon thread wakes every ``POLL_SECONDS`` (or on :func:`flush`), turns queued span records into rows
(:mod:`tracemend.capture.serialise`) and writes them in one SQLite transaction per batch.

Nothing is lost silently, and a trace is kept or lost whole:

- A full queue never blocks the caller: the span is dropped and its trace marked; the writer drops the
  trace's other spans too, so the store holds no orphan spans. Children wait here until their root arrives
  and are written in the root's transaction.
- Spans the store cannot take (disk full, I/O error, a read-only or unusable file) count as *lost*, apart
  from queue-full *drops*, logged once.
- The store file is checked on each batch (device and inode): deleted or replaced while the app runs, it is
  created again at its path, and that is logged once.

Redaction: with RE2, a batch's strings are collected while encoding and scanned at once; only spans where
something looked secret are encoded again, scrubbing each string.

The writer thread serialises a batch while a store thread commits the previous one, in statements of up to
256 rows (``store.inserts``), under ``forkguard`` (a fork waits until SQLite is idle).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from tracemend.capture import forkguard
from tracemend.capture.encode import Encoder
from tracemend.capture.errorinfo import FrameClassifier
from tracemend.capture.redact import Redactor
from tracemend.capture.serialise import Built, RowBuilder
from tracemend.capture.settings import Settings, from_environment
from tracemend.capture.state import DROPPED, STATE, WRITTEN, SpanRecord, internal_error
from tracemend.project import project_root, read_code_version
from tracemend.store import Store, StoreError

logger = logging.getLogger("tracemend")

POLL_SECONDS = 0.05
# At most this many spans per transaction: a backlog is written in large ones (each index
# page is then rewritten once for many rows); an idle app's spans go in small ones.
BATCH = 10_000


def _redactor(settings: Settings) -> Redactor | None:
    """configure()'s keys and patterns and the project's ``[tool.tracemend] redact_keys``/``redact_patterns``."""
    if not settings.redact:
        return None
    keys, patterns = list(settings.redact_keys), list(settings.redact_patterns)
    try:
        from tracemend.settings import get

        keys += [k for k in get("redact_keys") if k not in keys]
        patterns += [p for p in get("redact_patterns") if p not in patterns]
    except Exception:  # a broken pyproject.toml must not stop recording; configure()'s lists still apply
        internal_error("reading redact_keys / redact_patterns")
    usable = []
    for pattern in patterns:
        try:
            re.compile(pattern)
            usable.append(pattern)
        except re.error as exc:
            logger.error(
                "tracemend: redact pattern %r is not a regular expression (%s); ignored", pattern, exc
            )
    return Redactor(keys, usable)


class StoreStage:
    """Runs store jobs in order on a thread of its own; at most two wait, so serialising never runs far ahead."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(maxsize=2)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="tracemend-store", daemon=True)
                    self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                with forkguard.guard():
                    job()
            except Exception:
                internal_error("the store thread")
            finally:
                self._jobs.task_done()

    def wait(self) -> None:
        """Return once every job submitted so far has run."""
        if self._thread is not None:
            self._jobs.join()


class Writer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.written = 0
        # The drop count last written to the writers table; drops after the last batch still get reported.
        self._reported_dropped = 0
        self._drain_lock = threading.Lock()
        self._path = settings.resolved_db_path()
        self._store: Store | None = None
        self._store_error: str | None = None
        self._identity: tuple[int, int] | None = None
        self._code_read = False
        self._logged: set[str] = set()
        self.redactor = _redactor(settings)
        self._batched = self.redactor is not None and self.redactor.batched
        self._encoder = Encoder(
            redactor=self.redactor,
            max_string_chars=settings.max_string_chars,
            max_items=settings.max_items,
            max_depth=settings.max_depth,
            scrub=not self._batched,
        )
        self._builder = RowBuilder(
            self._encoder,
            FrameClassifier(project_root()),
            settings.resolved_project(),
            settings.environment,
        )
        # Spans whose trace's root has not arrived yet: id(root) → spans, oldest trace first.
        self._pending: dict[int, list[SpanRecord]] = {}
        self._pending_count = 0
        # Where the writer's time goes (nanoseconds), for bench/overhead.py.
        # Wall and thread-CPU nanoseconds per stage (the redaction scan is part of serialising).
        self.timings = {
            "serialise_ns": 0,
            "serialise_cpu_ns": 0,
            "redact_ns": 0,
            "store_ns": 0,
            "store_cpu_ns": 0,
            "spans": 0,
            "rescanned": 0,
        }
        self._stage = StoreStage()
        self._writer_id = f"{os.uname().nodename}:{os.getpid()}:{int(time.time() * 1000)}"

    @property
    def store_error(self) -> str | None:
        return self._store_error

    def _log_once(self, key: str, level: int, message: str, *args: Any) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.log(level, message, *args)

    def _open_store(self) -> Store | None:
        if self._store is None and self._store_error is None:
            try:
                store = Store(self._path)
                st = os.stat(store.path)
            except (StoreError, OSError) as exc:
                self._store_error = str(exc)
                logger.error("tracemend: traces are not being stored: %s", exc)
                return None
            if store.read_only:
                store.close()
                self._store_error = f"the trace store at {self._path} is read-only"
                logger.error("tracemend: traces are not being stored: %s", self._store_error)
                return None
            self._store, self._identity = store, (st.st_dev, st.st_ino)
        return self._store

    def _check_store(self) -> None:
        """A store deleted or replaced under us (another inode at the path) is opened again at its path."""
        if self._store is None:
            return
        try:
            st = os.stat(self._path)
            if (st.st_dev, st.st_ino) == self._identity:
                return
        except OSError:
            pass
        self._log_once(
            "replaced",
            logging.WARNING,
            "tracemend: the trace store %s was deleted or replaced while recording; writing to a new store "
            "at that path (logged once)",
            self._path,
        )
        # The WAL file at the path may still be the old store's (a file moved over the store leaves it
        # there), and the new store would read its frames: empty it through the old connection first.
        # Closing is then safe: SQLite skips the checkpoint and the removal of the WAL file by name (which
        # may belong to a new store by now) when the database file it has open was unlinked or replaced.
        try:
            self._store.release_wal()
            self._store.close()
        except Exception:
            pass
        self._store = None
        self._identity = None

    def close(self) -> None:
        with self._drain_lock:
            self._stage.wait()
            if self._store is not None:
                with forkguard.guard():
                    self._store.close()
                self._store = None

    def drain(self, limit: int | None = None, *, final: bool = False, wait: bool = False) -> int:
        """Write what is queued (at most ``limit`` spans).

        ``final`` also writes spans still waiting for their trace's root (a flush: the root may never come);
        ``wait`` returns only once the store has committed everything, with the number of spans written.
        """
        queue = STATE.queue
        left = len(queue) if limit is None else limit
        with self._drain_lock:
            before = self.written
            while queue and (limit is None or left > 0):
                batch = []
                popleft = queue.popleft
                try:
                    for _ in range(BATCH if limit is None else min(BATCH, left)):
                        batch.append(popleft())
                except IndexError:
                    pass
                left -= len(batch)
                self._write(self._gather(batch))
            if final and self._pending:
                self._write(self._gather([], final=True))
            if STATE.dropped != self._reported_dropped:
                self._stage.submit(self._commit_stats)
            if wait:
                self._stage.wait()
            return self.written - before

    def has_news(self) -> bool:
        """Drops the store has not been told about yet."""
        return STATE.dropped != self._reported_dropped

    def _gather(self, batch: list[SpanRecord], final: bool = False) -> list[SpanRecord]:
        """The spans to write now: whole traces (a root with the children that waited for it), spans of
        traces already written, and nothing of a trace that lost a span to a full queue."""
        ready: list[SpanRecord] = []
        pending = self._pending
        dropped = 0
        for rec in batch:
            root = rec.root
            fate = root.fate
            if fate is DROPPED:
                dropped += 1
            elif rec is root:
                waiting = pending.pop(id(root), None)
                if waiting:
                    self._pending_count -= len(waiting)
                    ready.extend(waiting)
                ready.append(rec)
            elif fate is WRITTEN:
                ready.append(rec)
            else:
                pending.setdefault(id(root), []).append(rec)
                self._pending_count += 1
        if pending:
            for key, recs in list(pending.items()):
                if recs[0].root.fate is DROPPED:
                    del pending[key]
                    self._pending_count -= len(recs)
                    dropped += len(recs)
            # Traces that never end must not hold memory without bound: the oldest go, counted.
            while self._pending_count > STATE.max_queue and pending:
                recs = pending.pop(next(iter(pending)))
                recs[0].root.fate = DROPPED
                self._pending_count -= len(recs)
                dropped += len(recs)
            if final:
                for recs in pending.values():
                    ready.extend(recs)
                pending.clear()
                self._pending_count = 0
        if dropped:
            STATE.count_dropped(dropped)
        return ready

    def _build(self, ready: list[SpanRecord]) -> list[Built]:
        builder = self._builder
        builder.new_batch()
        built: list[Built] = []
        failed_roots: set[int] = set()
        for rec in ready:
            try:
                built.append(builder.build(rec))
            except Exception:
                internal_error("serialising a span")
                failed_roots.add(id(rec.root))
        if self._batched and built:
            started = time.perf_counter_ns()
            redactor = self.redactor
            assert redactor is not None
            if redactor.suspect([text for b in built for text in b.texts]):
                self._encoder.scrub = True
                try:
                    for index, b in enumerate(built):
                        if b.texts and redactor.suspect(b.texts):
                            self.timings["rescanned"] += 1
                            try:
                                built[index] = builder.build(b.rec)
                            except Exception:
                                internal_error("serialising a span")
                                failed_roots.add(id(b.rec.root))
                finally:
                    self._encoder.scrub = False
            self.timings["redact_ns"] += time.perf_counter_ns() - started
        if failed_roots:
            # A trace with a span that could not be serialised is lost whole (counted as failed).
            kept = [b for b in built if id(b.rec.root) not in failed_roots]
            for b in built:
                if id(b.rec.root) in failed_roots:
                    b.rec.root.fate = DROPPED
            failed = len(ready) - len(kept)
            with STATE.lock:
                STATE.failed += failed
            built = kept
        return built

    def _write(self, ready: list[SpanRecord]) -> None:
        if not ready:
            return
        if not self._code_read:
            self._code_read = True
            self._builder.set_code_version(read_code_version())
        started, cpu = time.perf_counter_ns(), time.thread_time_ns()
        built = self._build(ready)
        self.timings["serialise_ns"] += time.perf_counter_ns() - started
        self.timings["serialise_cpu_ns"] += time.thread_time_ns() - cpu
        if not built:
            return
        for b in built:
            if b.trace is not None:
                b.rec.fate = WRITTEN  # handed to the store: the trace's later spans go straight after it
        self._stage.submit(functools.partial(self._commit, built))

    def _commit(self, built: list[Built]) -> None:
        """One batch in one transaction (on the store thread), with the writer's counts."""
        traces = [b.trace for b in built if b.trace is not None]
        spans = [b.span for b in built]
        configs = list({row[0]: row for b in built for row in b.configs}.values())
        self._check_store()
        store = self._open_store()
        if store is None:
            self._lose(built, self._store_error or "the store cannot be opened")
            return
        written = self.written + len(spans)
        dropped = STATE.dropped
        writer = (self._writer_id, os.getpid(), time.time_ns() // 1000, written, dropped)
        started, cpu = time.perf_counter_ns(), time.thread_time_ns()
        try:
            store.write_rows(traces, spans, configs, writer)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._lose(built, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            internal_error("writing to the store")
            self._lose(built, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.timings["store_ns"] += time.perf_counter_ns() - started
            self.timings["store_cpu_ns"] += time.thread_time_ns() - cpu
        self.written = written
        self._reported_dropped = dropped
        self.timings["spans"] += len(spans)

    def _lose(self, built: list[Built], reason: str) -> None:
        """Spans the store could not take: counted as lost (not as queue-full drops), logged once per reason."""
        with STATE.lock:
            STATE.lost += len(built)
        for b in built:
            b.rec.root.fate = DROPPED  # the rest of these traces would be orphans
        self._log_once(
            "lost:" + reason.split(":")[0],
            logging.ERROR,
            "tracemend: %d span(s) could not be written to the trace store at %s: %s (counted as lost in "
            "tracemend.stats(); logged once)",
            len(built),
            self._path,
            reason,
        )

    def _commit_stats(self) -> None:
        """The writers row alone: drops the store has not been told about (on the store thread)."""
        if STATE.dropped == self._reported_dropped:
            return
        self._check_store()
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
        writer = _writer
        if STATE.queue or (writer is not None and writer.has_news()):
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
        return get_writer().drain(limit=queued, final=True, wait=True)
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
