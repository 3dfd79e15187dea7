"""The signature list (``tracemend signatures``): every signature of the failing traces in a period, with
counts, first and last seen, and the failures that raised nothing beside the exceptions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tracemend.analyze import judged
from tracemend.analyze.findings import EXAMPLES, signature_record, signed_failures
from tracemend.analyze.grouping import group_family
from tracemend.records import Signature
from tracemend.store import TraceSource, from_us, to_us


@dataclass
class SignatureSummary:
    signature: Signature
    count: int
    first_seen: datetime
    last_seen: datetime
    first_revision: str | None
    last_revision: str | None
    example_trace_ids: list[str]
    id_kind: str = "exception"
    judged: int | None = None  # judged failures: the traces their rule (or feedback name) judged


def list_signatures(
    store: TraceSource, *, since: datetime | None = None, until: datetime | None = None, merge: bool = True
) -> list[SignatureSummary]:
    """Every signature of the failing traces in the period, with counts and first/last seen."""
    rows: dict[str, SignatureSummary] = {}
    for trace_id, t_us, commit, parts in signed_failures(store, since=since, until=until):
        sid, kind, types, frame, tmpl, id_kind = parts
        row = rows.get(sid)
        when = from_us(t_us)
        if row is None:
            rows[sid] = SignatureSummary(
                signature_record(sid, kind, types, frame, tmpl),
                1,
                when,
                when,
                commit,
                commit,
                [trace_id],
                id_kind,
            )
            continue
        row.count += 1
        row.last_seen = when
        row.last_revision = commit
        if len(row.example_trace_ids) < EXAMPLES:
            row.example_trace_ids.append(trace_id)
    summaries = list(rows.values())
    if merge:
        summaries = _merge_summaries(summaries)
    for j in judged.list_judged(store, since=since, until=until):
        first, last = from_us(j.first_us), from_us(j.last_us)
        summaries.append(SignatureSummary(j.signature, j.count, first, last, j.first_revision,
                                          j.last_revision, j.example_trace_ids, j.signature.kind, j.judged))
    summaries.sort(key=lambda r: (-r.count, r.first_seen))
    return summaries


def _merge_summaries(rows: Iterable[SignatureSummary]) -> list[SignatureSummary]:
    families: dict[tuple[str, tuple[str, ...], str | None], dict[str, SignatureSummary]] = {}
    for row in rows:
        s = row.signature
        families.setdefault((row.id_kind, tuple(s.exception_types), s.frame), {})[s.signature_id] = row
    out: dict[str, SignatureSummary] = {}
    for members in families.values():
        groups = group_family({k: (r.signature.template, to_us(r.first_seen)) for k, r in members.items()})
        for k, (key, tmpl) in groups.items():
            row = members[k]
            into = out.get(key)
            if into is None:
                into = out[key] = members[key]
                if into.signature.template != tmpl:
                    into.signature = into.signature.model_copy(update={"template": tmpl})
            if into is row:
                continue
            into.signature.aliases.append(k)
            into.count += row.count
            if row.first_seen < into.first_seen:
                into.first_seen, into.first_revision = row.first_seen, row.first_revision
            if row.last_seen > into.last_seen:
                into.last_seen, into.last_revision = row.last_seen, row.last_revision
            into.example_trace_ids = (into.example_trace_ids + row.example_trace_ids)[:EXAMPLES]
    for row in out.values():
        row.signature.aliases.sort()
    return list(out.values())
