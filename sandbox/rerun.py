"""Rerun recorded traces in subprocesses: one process per input, bounded parallelism, per-run timeout.

Each run calls the trace's entry point with its recorded input and config (optionally overridden) in a
child process whose working directory is the given checkout, and records the new trace into a temporary
store that is read back and then deleted. The child gets a reduced environment (an allowlist), runs in
its own process group so that a timeout kills everything it started, and its crash (``os._exit``, a
segfault) or hang is reported as the run's result rather than raised.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend.capture.redact import default_redactor
from tracemend.records import ErrorInfo, RerunResult, Trace

__all__ = ["ENV_ALLOWLIST", "parse_overrides", "recorded_result", "rerun_traces", "sandbox_env"]

# Variables a rerun inherits, by exact name; anything else (API keys included) only when named in
# ``pass_env`` or ``[tool.tracemend] rerun_env``. Never a prefix: a ``TRACEMEND_``-prefixed secret or
# ``PYTHONSTARTUP`` in the parent's environment stays there.
ENV_ALLOWLIST = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    # tracemend's settings that shape the rerun's trace or keep a test suite offline
    "TRACEMEND_ENV",
    "TRACEMEND_PROJECT",
    "TRACEMEND_ALLOW_MODEL_REQUESTS",
)
# Set by the sandbox for each run (see ``_Batch.child_env``); the parent's values must not leak into the child.
_OWN_VARS = ("TRACEMEND_DB", "TRACEMEND_CODE_VERSION", "TRACEMEND_PROJECT_ROOT", "TRACEMEND_DISABLED")
_STDERR_TAIL = 4000


def sandbox_env(
    pass_env: Iterable[str] | None = None, environ: dict[str, str] | None = None
) -> dict[str, str]:
    """The allowlisted variables of ``environ`` (default: this process's), plus those named in ``pass_env``
    and, when ``environ`` is this process's, in ``[tool.tracemend] rerun_env``."""
    source = dict(os.environ if environ is None else environ)
    named = set(pass_env or ())
    if environ is None:
        from tracemend.settings import get

        named.update(get("rerun_env"))
    wanted = set(ENV_ALLOWLIST) | named
    env = {key: value for key, value in source.items() if key in wanted}
    for key in _OWN_VARS:
        env.pop(key, None)
    return env


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["model=gpt-4o", "temperature=0"]`` → ``{"model": "gpt-4o", "temperature": 0}``.

    Values are parsed as JSON when they are valid JSON (numbers, true/false/null, lists, objects, quoted
    strings) and kept as strings otherwise. Raises ValueError for an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def recorded_result(trace: Trace) -> RerunResult:
    """The recorded trace itself as a result (the "before" side when nothing was rerun)."""
    return RerunResult(
        source_trace_id=trace.trace_id,
        status=trace.status,
        trace=trace,
        error=trace.error,
        output=trace.output,
        duration_ms=trace.duration_ms or 0.0,
    )


class _Live:
    """Child processes still running, so an interrupt can kill them (they are in their own sessions)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.cancelled = False

    def kill_all(self) -> None:
        with self.lock:
            self.cancelled = True
            for proc in list(self.procs):
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill()


def _crash_message(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the process was killed by {name}"
    return f"the process exited with code {returncode} before the call returned"


@dataclass
class _Batch:
    """What the reruns of one :func:`rerun_traces` call share."""

    workdir: Path
    timeout: float
    overrides: dict[str, Any] | None
    env: dict[str, str]
    code_version: str | None
    source_root: Path | None
    live: _Live = field(default_factory=_Live)

    def child_env(self, db_path: Path) -> dict[str, str]:
        from tracemend.sandbox.importpath import tree_pythonpath

        env = dict(self.env)
        env.update(
            TRACEMEND_DB=str(db_path),
            # Pinned: the rerun's traces go to its own store even if the agent configures another one.
            TRACEMEND_RUN_DB=str(db_path),
            TRACEMEND_PROJECT_ROOT=str(self.workdir),
            # The tree under test first; the user's entries for their checkout point into the tree.
            PYTHONPATH=tree_pythonpath(self.workdir, self.source_root, self.env.get("PYTHONPATH", "")),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONSAFEPATH="1",
            # A crash in C code (segfault) leaves the Python stack in the stderr tail.
            PYTHONFAULTHANDLER="1",
        )
        if self.code_version:
            env["TRACEMEND_CODE_VERSION"] = self.code_version
        return env

    def spec(self, trace: Trace) -> dict[str, Any]:
        return {
            "entry_point": trace.entry_point,
            "input": trace.input,
            "config": trace.config,
            "config_class": trace.config_class,
            "config_param": trace.config_param,
            "overrides": self.overrides or None,
            "source_root": str(self.source_root) if self.source_root else None,
        }

    def wait(self, command: list[str], env: dict[str, str], tmp: Path) -> tuple[int, bool]:
        """Run the child in its own session; ``(return code, timed out)``. Its stderr goes to ``tmp``."""
        with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
            with self.live.lock:
                if self.live.cancelled:
                    raise KeyboardInterrupt
                proc = subprocess.Popen(
                    command,
                    cwd=self.workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
                self.live.procs.add(proc)
            timed_out = False
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            finally:
                with self.live.lock:
                    self.live.procs.discard(proc)
            # Whatever the child started is killed too (a daemon it spawned keeps no files open here).
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode, timed_out

    def run(self, trace: Trace) -> RerunResult:
        tmp = Path(tempfile.mkdtemp(prefix="tracemend-rerun-"))
        try:
            spec_path, result_path, db_path = tmp / "spec.json", tmp / "result.json", tmp / "rerun.db"
            spec_path.write_text(json.dumps(self.spec(trace), default=repr))
            command = [sys.executable, "-m", "tracemend.sandbox._runner", str(spec_path), str(result_path)]
            started = time.monotonic()
            returncode, timed_out = self.wait(command, self.child_env(db_path), tmp)
            wall_ms = (time.monotonic() - started) * 1000.0
            stderr_tail = (tmp / "stderr").read_bytes()[-_STDERR_TAIL:].decode("utf-8", "replace")
            result = json.loads(result_path.read_text()) if result_path.exists() else None
            new_trace = _read_trace(db_path, trace.entry_point)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # What the child wrote itself (its result file, its stderr) is redacted like its recorded trace:
        # it is shown to people and to the diagnosing model.
        redactor = default_redactor()
        if redactor is not None:
            stderr_tail = redactor.scrub(stderr_tail)
            if result is not None:
                result = redactor.redact(result)
        made = functools.partial(
            RerunResult, source_trace_id=trace.trace_id, duration_ms=wall_ms, stderr_tail=stderr_tail
        )
        if timed_out:
            message = f"no result after {self.timeout:g} s; the process group was killed"
            return made(status="timeout", trace=new_trace, error=ErrorInfo(type="timeout", message=message))
        if result is None:
            error = ErrorInfo(type="crashed", message=_crash_message(returncode))
            return made(status="crashed", trace=new_trace, error=error)
        error = ErrorInfo.model_validate(result["error"]) if result.get("error") else None
        if new_trace is None:
            return made(status=result["status"], error=error, output=result.get("output"))
        output = new_trace.output if new_trace.status == "ok" else result.get("output")
        return made(
            status=new_trace.status,
            trace=new_trace,
            error=new_trace.error or error,
            output=output,
            duration_ms=new_trace.duration_ms or wall_ms,
        )


def _read_trace(db_path: Path, entry_point: str) -> Trace | None:
    if not db_path.exists():
        return None
    from tracemend.store import Store, StoreError

    try:
        with Store(db_path, create=False) as store:
            for trace in store.iter_traces(
                entry_point=entry_point, newest_first=True, limit=1, with_spans=True
            ):
                return trace
            for trace in store.iter_traces(newest_first=True, limit=1, with_spans=True):
                return trace
    except StoreError:
        return None
    return None


def rerun_traces(
    traces: Sequence[Trace],
    *,
    workdir: Path,
    timeout: float = 30,
    parallel: int = 2,
    config_overrides: dict[str, Any] | None = None,
    pass_env: list[str] | None = None,
    progress: bool | Callable[[RerunResult], None] = False,
    code_version: str | None = None,
    source_root: Path | None = None,
) -> list[RerunResult]:
    """Rerun each trace's recorded call in ``workdir``; results in the order of ``traces``.

    ``progress``: True shows a bar on stderr; a function is called with each result as it is collected
    (the CLI reports progress its own way, as a bar in a terminal and a line per rerun in a log).

    ``code_version`` is recorded on the new traces (``TRACEMEND_CODE_VERSION``); ``source_root`` is the
    user's repository when ``workdir`` is a worktree of it, so that modules installed from it in
    editable mode load from the worktree instead.
    """
    batch = _Batch(
        workdir=Path(workdir).resolve(),
        timeout=timeout,
        overrides=config_overrides,
        env=sandbox_env(pass_env),
        code_version=code_version,
        source_root=source_root,
    )
    live = batch.live
    results: list[RerunResult | None] = [None] * len(traces)

    def job(index: int) -> None:
        results[index] = batch.run(traces[index])

    bar = None
    report = progress if callable(progress) else None
    if progress is True and traces:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("rerunning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="tracemend-rerun")
    try:
        with bar if bar is not None else contextlib.nullcontext():
            task = bar.add_task("rerun", total=len(traces)) if bar is not None else None
            futures = [pool.submit(job, i) for i in range(len(traces))]
            for index, future in enumerate(futures):
                while True:
                    try:
                        future.result(timeout=0.2)
                        break
                    except TimeoutError:
                        continue
                if bar is not None and task is not None:
                    bar.advance(task)
                done = results[index]
                if report is not None and done is not None:
                    report(done)
    except BaseException:
        live.kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]
