"""Build a diagnosis request from the store: a trace id, a signature, or a failed build's log."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tracemend.diagnose.agent import DiagnoseError, DiagnoseRequest
from tracemend.records import Trace

if TYPE_CHECKING:
    from tracemend.store import Store

_SCAN_LIMIT = 5000


def signature_key(trace: Trace) -> tuple[str, str]:
    """(signature id, readable template) of a failing trace: the analyzer's when available."""
    try:
        from tracemend.analyze.signatures import signature_of  # the analyzer's stage
    except ImportError:
        signature_of = None
    if signature_of is not None:
        sig = signature_of(trace)
        if sig is not None:
            kind = sig.exception_types[0].rsplit(".", 1)[-1] if sig.exception_types else sig.kind
            where = f" in {sig.frame}" if sig.frame else ""
            return sig.signature_id, f"{kind}: {sig.template}{where}"
    err = trace.error
    if err is None:
        return f"status:{trace.status}", f"{trace.entry_point} ended with status {trace.status}"
    frame = err.top_in_app_frame()
    where = f"{frame.module or frame.file}:{frame.function}" if frame else "?"
    import hashlib

    digest = hashlib.sha1(f"{err.type}|{where}".encode()).hexdigest()[:16]
    return digest, f"{err.type} at {where}"


def _suspect_diff(repo: Path, store: Store, revision: str | None) -> str:
    from tracemend import vcs
    from tracemend.triage import previous_deployed

    if not revision:
        return ""
    try:
        r = vcs.open_repo(repo)
        base = previous_deployed(store, revision)
        if base is None or not vcs.has_revision(r, base) or not vcs.has_revision(r, revision):
            return ""
        return vcs.diff(r, base, revision)
    except vcs.VcsError:
        return ""


def _passing_sample(store: Store, entry_point: str, n: int) -> list[Trace]:
    if n <= 0:
        return []
    return list(
        store.iter_traces(status="ok", entry_point=entry_point, newest_first=True, limit=n, with_spans=True)
    )


def request_for_trace(
    store: Store, repo: Path, trace_id: str, *, passing: int = 3, siblings: int = 4
) -> DiagnoseRequest:
    trace = store.get_trace(trace_id)
    if trace is None:
        raise DiagnoseError(f"no trace {trace_id!r} in {store.path}")
    if trace.status == "ok":
        raise DiagnoseError(f"trace {trace.trace_id[:12]} did not fail (status ok): nothing to diagnose")
    sig_id, template = signature_key(trace)
    failing = [trace]
    for other in store.iter_traces(
        status=["error", "failed_assertion"],
        entry_point=trace.entry_point,
        newest_first=True,
        limit=200,
        with_spans=True,
    ):
        if len(failing) > siblings:
            break
        if other.trace_id != trace.trace_id and signature_key(other)[0] == sig_id:
            failing.append(other)
    return DiagnoseRequest(
        repo=repo,
        failing=failing,
        passing=_passing_sample(store, trace.entry_point, passing),
        suspect_diff=_suspect_diff(repo, store, trace.code_version.commit),
        signature_id=sig_id,
        signature_text=template,
    )


def request_for_signature(
    store: Store, repo: Path, signature: str, *, passing: int = 3, limit: int = 5
) -> DiagnoseRequest:
    prefix = signature.strip().lower()
    failing: list[Trace] = []
    sig_id, template = None, None
    for trace in store.iter_traces(
        status=["error", "failed_assertion"], newest_first=True, limit=_SCAN_LIMIT
    ):
        key, text = signature_key(trace)
        if key.startswith(prefix) and (sig_id is None or key == sig_id):
            sig_id, template = key, text
            full = store.get_trace(trace.trace_id)
            if full is not None:
                failing.append(full)
            if len(failing) >= limit:
                break
    if not failing:
        raise DiagnoseError(
            f"no failing trace with signature {signature!r} in the newest {_SCAN_LIMIT} failures"
        )
    return DiagnoseRequest(
        repo=repo,
        failing=failing,
        passing=_passing_sample(store, failing[0].entry_point, passing),
        suspect_diff=_suspect_diff(repo, store, failing[0].code_version.commit),
        signature_id=sig_id,
        signature_text=template,
    )


def request_for_build_log(repo: Path, log_path: Path) -> DiagnoseRequest:
    """A failed build or install: its log plus the last commit's diff, straight to diagnosis."""
    from tracemend import vcs

    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DiagnoseError(f"{log_path}: cannot read the build log ({exc.strerror})") from None
    r = vcs.open_repo(repo)
    parent = vcs.parent_of(r, "HEAD")
    diff = vcs.diff(r, parent, "HEAD") if parent else ""
    last_line = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "build failed")
    return DiagnoseRequest(
        repo=vcs.repo_root(r),
        build_log=text,
        suspect_diff=diff,
        signature_id=None,
        signature_text=f"build failure: {last_line.strip()[:200]}",
    )
