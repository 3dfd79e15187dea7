"""The corpus pass: word slots that vary like parameters across one family of templates.

``masks`` masks what is a value on its own; a user name, a tool name, a table or a class name is a
plain word there. Across the failures of one family (same kind, exception type chain and frame) such a
slot shows itself statistically. A *skeleton* is a template with one slot taken out; the slot's values
across the templates that share the skeleton are the evidence (after Drain's fixed-length skeletons and
Brain's column statistics, without a tree or a similarity threshold). Once the evidence is enough the
slot becomes a parameter; until then the variants stay apart, because two to four words in a slot are
as likely an enumeration ("Link Up" / "Link Down", a run's status) as a parameter.

A slot is up to ``max_span`` adjacent words, none (a value that is empty this time), or every
occurrence of a word the message repeats. Evidence, in ``GroupingRules``:

* ``min_variants`` distinct values in the slot make it a parameter;
* fewer suffice (``min_variants_masked``) when a template with the same skeleton holds a placeholder
  there: the slot has already shown a value (``Object of type <*>`` beside ``Object of type datetime``);
* the skeleton needs ``min_constants`` constant words, so short messages do not collapse;
* a word right before a placeholder names it ("size <*>") and is kept (``name_guard``);
* a value kept from a structured error body (after a quoted ``'key':``) is never masked here;
* a slot of several words must vary at both ends, or it is really shorter.

It repeats until nothing changes (a slot masked in one round can reveal the next). More evidence only
joins groups, and ``group_family`` keys a group by its oldest member, so a new variant joins an
existing group under that group's key and history is not re-keyed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tracemend.analyze.masks import PLACEHOLDER, merge_placeholders

_P = PLACEHOLDER
MAX_ROUNDS = 4


@dataclass(frozen=True)
class GroupingRules:
    min_variants: int = 5
    min_variants_masked: int = 1
    min_constants: int = 2
    name_guard: bool = True
    # A slot may hold up to this many words ("Google Search" where another message has "bing"), or none.
    max_span: int = 2


DEFAULT_GROUPING = GroupingRules()

Key = tuple[object, ...]
# A slot: (skeleton key, the words in it, their positions, where an empty slot sits or -1).
Slot = tuple[Key, tuple[str, ...], list[int], int]


def _pinned(prev: str) -> bool:
    """A structured body's kept value follows its quoted key (``'code':``)."""
    return prev.endswith("':") and (prev[0] == "'" or prev.startswith("{'"))


class _Skeletons:
    """Exact ids of token prefixes and suffixes, so a skeleton (prefix, slot, suffix) is a pair of ints."""

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], int] = {}

    def prefixes(self, toks: list[str]) -> list[int]:
        ids = self._ids
        out = [0]
        cur = 0
        for tok in toks:
            cur = ids.setdefault((cur, tok), len(ids) + 1)
            out.append(cur)
        return out

    def suffixes(self, toks: list[str]) -> list[int]:
        ids = self._ids
        out = [0] * (len(toks) + 1)
        cur = -1
        out[-1] = cur
        for i in range(len(toks) - 1, -1, -1):
            cur = ids.setdefault((cur, toks[i]), len(ids) + 1)
            out[i] = cur
        return out


def _slots(toks: list[str], rules: GroupingRules, sk: _Skeletons) -> list[Slot]:
    """The candidate slots of one template.

    A slot is a span of up to ``max_span`` free words (or none: the slot is empty this time, as in
    ``tool  (agent`` beside ``tool search (agent``), or every occurrence of a word that occurs more
    than once (a table name in the error and again in its SQL). A word is free unless it is a
    placeholder, names the value after it (``name_guard``) or is a structured body's kept value.
    """
    n = len(toks)
    constants = sum(1 for t in toks if t != _P)
    if constants - 1 < rules.min_constants:
        return []
    free = [t != _P for t in toks]
    for i in range(n):
        if free[i] and (
            (rules.name_guard and i + 1 < n and toks[i + 1] == _P) or (i and _pinned(toks[i - 1]))
        ):
            free[i] = False
    pre = sk.prefixes(toks)
    suf = sk.suffixes(toks)
    out: list[Slot] = []
    empty = rules.max_span > 1 and constants - 1 >= rules.min_constants
    for i in range(n):
        if empty and i:
            out.append(((pre[i], suf[i]), (), [], i))
        if not free[i]:
            continue
        for j in range(i + 1, min(n, i + rules.max_span) + 1):
            if not free[j - 1] or constants - (j - i) < rules.min_constants:
                break
            out.append(((pre[i], suf[j]), tuple(toks[i:j]), list(range(i, j)), -1))
    seen: dict[str, list[int]] = {}
    for i, tok in enumerate(toks):
        if free[i]:
            seen.setdefault(tok, []).append(i)
    for tok, where in seen.items():
        if len(where) > 1 and constants - len(where) >= rules.min_constants:
            skeleton = tuple(None if k in where else t for k, t in enumerate(toks))
            out.append((skeleton, (tok,), where, -1))
    return out


def _varies_at_both_ends(values: set[tuple[str, ...]]) -> bool:
    """A slot of several words must vary at its first and its last word, or it is really shorter
    (``web_search is`` / ``python is``: the slot is one word and ``is`` is template text)."""
    if all(len(v) <= 1 for v in values):
        return True
    firsts = {v[0] for v in values if v}
    lasts = {v[-1] for v in values if v}
    return len(firsts) > 1 and len(lasts) > 1


def generalize(templates: Iterable[str], rules: GroupingRules = DEFAULT_GROUPING) -> dict[str, str]:
    """Map each template of one family to its group's template (itself when nothing varies)."""
    mapping = {t: t for t in templates}
    current = set(mapping)
    sk = _Skeletons()
    for _ in range(MAX_ROUNDS):
        split = {t: t.split(" ") for t in current}
        words: dict[Key, set[tuple[str, ...]]] = {}
        masked: set[Key] = set()
        slots_of: dict[str, list[Slot]] = {}
        for t, toks in split.items():
            slots = slots_of[t] = _slots(toks, rules, sk)
            for key, value, _where, _at in slots:
                words.setdefault(key, set()).add(value)
            if _P in toks:
                # A placeholder in a slot is evidence for the skeleton around it.
                pre = sk.prefixes(toks)
                suf = sk.suffixes(toks)
                for i, tok in enumerate(toks):
                    if tok == _P:
                        masked.add((pre[i], suf[i + 1]))
        wild = {
            key
            for key, vals in words.items()
            if (len(vals) >= rules.min_variants or (key in masked and len(vals) >= rules.min_variants_masked))
            and _varies_at_both_ends(vals)
        }
        if not wild:
            break
        step: dict[str, str] = {}
        for t, slots in slots_of.items():
            hits = [(where, at) for key, _value, where, at in slots if key in wild]
            if not hits:
                continue
            toks = list(split[t])
            for where, at in hits:
                for k in where:
                    toks[k] = _P
                if at >= 0:  # an empty slot: the placeholder goes where the words are elsewhere
                    toks[at] = _P + " " + toks[at]
            step[t] = merge_placeholders(" ".join(toks))
        changed = False
        for t, m in mapping.items():
            new = step.get(m, m)
            if new != m:
                mapping[t] = new
                changed = True
        if not changed:
            break
        current = set(mapping.values())
    return mapping


def group_family(
    members: Mapping[str, tuple[str, int]], rules: GroupingRules = DEFAULT_GROUPING
) -> dict[str, tuple[str, str]]:
    """Each member's ``(group key, group template)``; ``members`` maps a member's own key (its
    per-message signature id) to ``(template, first seen)``.

    The key of a group is the key of its oldest member (first seen, then the smaller key). A new
    variant that joins an existing group is younger than its members, so the group keeps its key;
    when two groups merge, the older key stays and the younger one becomes an alias. So an id stored
    in a regression case or a report still names the group its failures are in.
    """
    group_of = generalize({tmpl for tmpl, _first in members.values()}, rules) if len(members) > 1 else {}
    oldest: dict[str, tuple[int, str]] = {}
    for key, (tmpl, first) in members.items():
        group = group_of.get(tmpl, tmpl)
        best = oldest.get(group)
        if best is None or (first, key) < best:
            oldest[group] = (first, key)
    out = {}
    for key, (tmpl, _first) in members.items():
        group = group_of.get(tmpl, tmpl)
        out[key] = (oldest[group][1], group)
    return out
