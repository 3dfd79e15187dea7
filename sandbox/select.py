"""Which traces to rerun: by id, by failure signature, plus a sample of recent passing ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tracemend.errors import SelectionError
from tracemend.records import Trace
from tracemend.store import StoreError, TraceSource, where

__all__ = ["SelectionError", "sample_passing", "select_traces"]

_FAILING = ("error", "failed_assertion")


def select_traces(
    store: TraceSource, trace_ids: Iterable[str] = (), *, signature: str | None = None, limit: int = 20
) -> tuple[list[Trace], list[Trace]]:
    """``(failing, passing)`` traces (with spans) named by id prefix, or failing with the given signature.

    ``signature`` matches ``tracemend.analyze.signatures.signature_of(trace).signature_id`` (or a prefix of it);
    at most ``limit`` of the newest failing traces with that signature are taken.
    """
    chosen: dict[str, Trace] = {}
    for tid in trace_ids:
        try:
            trace = store.get_trace(tid)
        except StoreError as exc:
            raise SelectionError(str(exc)) from None
        if trace is None:
            raise SelectionError(f"no trace {tid!r} in {where(store)}")
        chosen[trace.trace_id] = trace
    if signature:
        from tracemend.analyze.signatures import signature_of

        found = 0
        for trace in store.iter_traces(status=_FAILING, newest_first=True):
            if found >= limit:
                break
            if signature_of(trace).signature_id.startswith(signature):
                full = store.get_trace(trace.trace_id) or trace
                chosen.setdefault(full.trace_id, full)
                found += 1
        if not found:
            raise SelectionError(f"no failing trace has signature {signature!r}")
    failing = [t for t in chosen.values() if t.status in _FAILING]
    passing = [t for t in chosen.values() if t.status not in _FAILING]
    return failing, passing


def sample_passing(store: TraceSource, traces: Sequence[Trace], *, per_entry_point: int = 3) -> list[Trace]:
    """The newest passing traces of the same entry points as ``traces`` (not already among them), from the
    same environments: a test or rerun that once recorded into this store is never a comparison sample."""
    seen = {t.trace_id for t in traces}
    environments = {t.environment for t in traces}
    out: list[Trace] = []
    for entry_point in dict.fromkeys(t.entry_point for t in traces):
        if not entry_point:  # a trace recorded elsewhere, without an entry point, cannot be rerun
            continue
        taken = 0
        for trace in store.iter_traces(
            status="ok", entry_point=entry_point, newest_first=True, with_spans=True
        ):
            if taken >= per_entry_point:
                break
            if trace.trace_id in seen or trace.environment not in environments:
                continue
            seen.add(trace.trace_id)
            out.append(trace)
            taken += 1
    return out
