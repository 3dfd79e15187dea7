"""A finding for one trace's or one signature's failures, without the gate.

``tracemend triage --trace/--signature`` and ``tracemend diagnose TRACE/--signature`` start from a failure a
person named rather than from a deploy's gated findings. The counts are by revision: the window is the
newest revision the signature failed on, the baseline every revision deployed before it. There is no
statistical test: the verdict is "new" when the baseline has no such failure, else "regression", and the
p- and q-values are 1. A trace that raised nothing but failed a judge (or got negative feedback), and a
judged signature, get the same kind of finding, with the traces judged as exposure.
"""

from __future__ import annotations

from collections import Counter

from tracemend.analyze.findings import signed_failures
from tracemend.analyze.judged import judged_finding
from tracemend.analyze.migrate import resolve_signature
from tracemend.analyze.signatures import signature_of
from tracemend.errors import AnalyzeError
from tracemend.records import Finding
from tracemend.store import TraceSource, where

EXAMPLES = 5


def finding_from_store(store: TraceSource, *, trace_id: str | None = None, signature: str | None = None) -> Finding:
    """The finding of ``trace_id``'s signature (that trace first among the examples), or of the signature
    whose id (or one of whose aliases, or a version-1 id of whose failures) starts with ``signature``.
    The counts are the whole group's, as the corpus pass joins it over the store."""
    first = None
    if trace_id:
        first = store.get_trace(trace_id, with_spans=False)
        if first is None:
            raise AnalyzeError(f"no trace {trace_id!r} in {where(store)}")
        if first.status == "ok":
            quality = judged_finding(store, trace_id=first.trace_id)
            if quality is not None:
                return quality
            raise AnalyzeError(f"trace {first.trace_id[:12]} did not fail (status ok, no failed score)")
        wanted = signature_of(first).signature_id
    elif signature:
        wanted = signature.strip().lower()
    else:
        raise AnalyzeError("give a trace id or a signature")

    resolved = resolve_signature(store, wanted)
    if resolved is None or resolved.group.judged is not None:  # a failure that raised nothing
        named = resolved.group.signature.signature_id if resolved is not None else wanted
        quality = judged_finding(store, signature=named)
        if quality is not None:
            return quality
        raise AnalyzeError(f"no failing trace with signature {wanted!r}")
    sig = resolved.group.signature
    members = resolved.members
    failures: list[tuple[str, str | None]] = []  # (trace id, commit), oldest first
    for tid, _t_us, commit, (sid, *_rest) in signed_failures(store):
        if sid in members:
            failures.append((tid, commit))

    per_rev = Counter(commit or "unknown" for _tid, commit in failures)
    head = failures[-1][1]
    versions = [c for c, *_ in store.code_versions()]
    window_exposure = store.count(revision=head) if head else store.count()
    baseline_revs = versions[: versions.index(head)] if head in versions else []
    baseline_exposure = sum(store.count(revision=r) for r in baseline_revs)
    baseline_count = sum(per_rev[r] for r in baseline_revs)
    expected = baseline_count / baseline_exposure * window_exposure if baseline_exposure else 0.0
    newest = [tid for tid, commit in reversed(failures) if commit == head]
    if first is not None:
        newest = [first.trace_id, *(tid for tid in newest if tid != first.trace_id)]
    return Finding(
        signature=sig,
        baseline_count=baseline_count,
        baseline_exposure=baseline_exposure,
        window_count=per_rev[head or "unknown"],
        window_exposure=window_exposure,
        expected=expected,
        p_value=1.0,
        q_value=1.0,
        verdict="new" if baseline_count == 0 else "regression",
        example_trace_ids=newest[:EXAMPLES],
        first_revision=next((commit for _tid, commit in failures if commit), None),
    )
