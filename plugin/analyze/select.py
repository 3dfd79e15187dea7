"""Which finding to work on: one from a ``tracemend analyze --json`` document, the gated finding of the newest
deploy for a signature, or an ungated one for a trace's or a signature's failures."""

from __future__ import annotations

import json

from tracemend.analyze.findings import analyze
from tracemend.analyze.migrate import resolve_signature
from tracemend.analyze.ungated import finding_from_store
from tracemend.errors import AnalyzeError
from tracemend.records import Finding, Signature
from tracemend.store import TraceSource


def names(signature: Signature, prefix: str) -> bool:
    """Does ``prefix`` name this signature: its id or one of the per-message ids it joined?"""
    prefix = prefix.strip().lower()
    return any(i.startswith(prefix) for i in (signature.signature_id, *signature.aliases))


def finding_from_json(text: str, *, signature: str | None = None) -> Finding:
    """From a Finding or an ``analyze --json`` document: the one for ``signature`` (an id prefix), else the
    first flagged one (the document lists the most significant first)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AnalyzeError(f"not JSON: {exc}") from None
    candidates = data.get("findings") if isinstance(data, dict) and "findings" in data else [data]
    findings = []
    for item in candidates or []:
        try:
            findings.append(Finding.model_validate(item))
        except ValueError as exc:
            raise AnalyzeError(f"not a Finding: {str(exc).splitlines()[0]}") from None
    if signature:
        findings = [f for f in findings if names(f.signature, signature)]
    flagged = [f for f in findings if f.verdict != "noise"] or findings
    if not flagged:
        raise AnalyzeError("no finding in the file" + (f" for signature {signature!r}" if signature else ""))
    return flagged[0]


def select_finding(
    store: TraceSource,
    *,
    trace_id: str | None = None,
    signature: str | None = None,
    finding_json: str | None = None,
) -> Finding:
    """The finding a person asked for: from ``finding_json`` (see :func:`finding_from_json`), the newest
    deploy's gated finding for ``signature`` when it has one, else built from the store for the trace's or
    the signature's failures (:func:`~tracemend.analyze.ungated.finding_from_store`)."""
    if finding_json is not None:
        return finding_from_json(finding_json, signature=signature)
    if signature:
        try:
            analysis = analyze(store)
        except AnalyzeError:
            analysis = None
        findings = [f for f in (analysis.findings if analysis is not None else []) if f.example_trace_ids]
        for f in findings:
            if names(f.signature, signature):
                return f
        # An id the window's grouping does not show: a member joined over the whole store, or version 1.
        resolved = resolve_signature(store, signature)
        members = resolved.members if resolved is not None else set()
        for f in findings:
            if {f.signature.signature_id, *f.signature.aliases} & members:
                return f
    return finding_from_store(store, trace_id=trace_id, signature=signature)
