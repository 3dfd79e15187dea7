"""Which group a stored signature id names: today's id, one of its aliases, or a version-1 id.

Signatures are not stored in the trace store; they are computed from the stored errors whenever the
store is read. Their ids are written elsewhere: regression cases (``provenance.signature_id``), heal
state, ``analyze --json`` documents, commands a person copied. ``resolve_signature`` maps such an id
(or an unambiguous prefix) to the group it names today:

* a version-2 id: the group whose id or one of whose aliases (``Signature.aliases``: the per-message
  ids the corpus pass joined into it) starts with it;
* a version-1 id (tracemend before signature version 2): every stored failure's version-1 id is
  recomputed with the frozen version-1 template (``legacy``), per message and as version 1's corpus
  pass merged it, and the failures it names lead to their version-2 groups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracemend.analyze.legacy import merge_templates_v1, signature_id_v1, template_v1
from tracemend.analyze.listing import SignatureSummary, list_signatures
from tracemend.analyze.signatures import signature_from_dict, signature_parts
from tracemend.errors import AnalyzeError
from tracemend.store import Store


@dataclass
class Resolved:
    group: SignatureSummary
    version: int  # the signature version the given id was of

    @property
    def members(self) -> set[str]:
        """The per-message ids of the group's failures (its id and its aliases)."""
        return {self.group.signature.signature_id, *self.group.signature.aliases}


def resolve_signature(
    store: Store, signature: str, *, since: datetime | None = None, until: datetime | None = None
) -> Resolved | None:
    """The group ``signature`` (an id or prefix, version 2 or 1) names among the stored failures."""
    prefix = signature.strip().lower()
    if not prefix:
        raise AnalyzeError("give a signature id or prefix")
    groups = list_signatures(store, since=since, until=until)
    hits = [
        g
        for g in groups
        if any(i.startswith(prefix) for i in (g.signature.signature_id, *g.signature.aliases))
    ]
    if hits:
        return Resolved(_one(hits, prefix), 2)
    member_of = {i: g for g in groups for i in (g.signature.signature_id, *g.signature.aliases)}
    old_ids = {
        v1: v2s for v1, v2s in v1_to_v2(store, since=since, until=until).items() if v1.startswith(prefix)
    }
    if len(old_ids) > 1:
        raise AnalyzeError(
            f"Signature prefix {prefix!r} is ambiguous ({len(old_ids)} version-1 ids); give more characters."
        )
    named: dict[str, SignatureSummary] = {}
    for v2s in old_ids.values():
        for v2 in v2s & member_of.keys():
            named[member_of[v2].signature.signature_id] = member_of[v2]
    if named:
        # One old id may name several groups now (version 1 merged what version 2 keeps apart): the
        # group with the most failures is the one it meant most of the time.
        return Resolved(max(named.values(), key=lambda g: (g.count, g.signature.signature_id)), 1)
    return None


def _one(groups: list[SignatureSummary], prefix: str) -> SignatureSummary:
    """The one group a version-2 prefix names (an error if it names several)."""
    ids = {g.signature.signature_id for g in groups}
    if len(ids) > 1:
        raise AnalyzeError(
            f"Signature prefix {prefix!r} is ambiguous ({len(ids)} groups); give more characters."
        )
    return groups[0]


def v1_to_v2(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, set[str]]:
    """Every version-1 id of the stored failures (per message and merged) → the version-2 per-message ids."""
    per_message: dict[str, set[str]] = {}
    families: dict[tuple[str, tuple[str, ...], str | None], dict[str, set[str]]] = {}
    memo: dict[tuple[Any, ...], tuple[str, str, tuple[str, ...], str | None, str, str]] = {}
    for _tid, _t, status, entry_point, _commit, error, metadata, output in store.iter_failures(
        since=since, until=until
    ):
        key = (error, status, entry_point, metadata, output)
        parts = memo.get(key)
        if parts is None:
            err = _parse(error)
            err = err if isinstance(err, dict) and err else None
            meta, out = _parse(metadata) or {}, _parse(output)
            id_kind, _kind, types, frame, tmpl = signature_parts(
                err, status, entry_point, meta, out, template_v1
            )
            v2 = signature_from_dict(err, status, entry_point, meta, out)[0]
            parts = memo[key] = (
                id_kind,
                v2,
                tuple(types),
                frame,
                tmpl,
                signature_id_v1(id_kind, types, frame, tmpl),
            )
        id_kind, v2, types, frame, tmpl, v1 = parts
        per_message.setdefault(v1, set()).add(v2)
        families.setdefault((id_kind, types, frame), {}).setdefault(tmpl, set()).add(v2)
    out_map = dict(per_message)
    for (id_kind, types, frame), templates in families.items():
        if len(templates) < 2:
            continue
        for tmpl, merged in merge_templates_v1(templates).items():
            if merged != tmpl:
                out_map.setdefault(signature_id_v1(id_kind, list(types), frame, merged), set()).update(
                    templates[tmpl]
                )
    return out_map


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text
