"""Signature version 1's message template, frozen: how ids stored before version 2 map to today's.

Version 1 (tracemend before issue 16) masked hosts by a list of top-level domains, every quoted string
and whole JSON bodies, and merged word slots with 4+ variants. Signatures are not stored in the trace
store (they are computed from the stored errors at analysis time), but their ids are written into
regression cases, heal state and ``analyze --json`` documents. ``migrate.py`` recomputes a version-1 id
for stored failures with this module so an old id still finds its failures. Do not change it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

VERSION = 1
MAX_TEMPLATE_CHARS = 1000

_TLDS = r"(?:com|net|org|io|ai|dev|app|cloud|local|internal|edu|gov|co|us|uk|de|cn|jp|localdomain|lan)"

_P = "<*>"
# Each structured shape has its own expression, run only when its trigger character is present, so a
# plain message pays for one pass of the generic rule alone.
_JSON_RE = re.compile(
    r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\[(?=[\s\d\"'{\[-])(?:[^\[\]]|\[[^\[\]]*\])*\]"
)
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>()\[\]{},]+")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A quote opens and closes at a word boundary, so the apostrophe in "isn't" is not a quote.
_QUOTE_RE = re.compile(
    r"(?<![\w\\])(?:\"(?:[^\"\\\n]|\\.){0,400}\"|'(?:[^'\\\n]|\\.){0,400}'(?!\w)|`[^`\n]{0,400}`)"
)
# Rooted, home- or dot-relative, Windows-drive paths, or anything with two or more slashes.
_PATH_RE = re.compile(
    r"(?<![\w.~/\\-])(?:~|\.{1,2}|[A-Za-z]:)?(?:[/\\]+[\w.@%+~$-]+)+[/\\]?|\b[\w.-]+(?:/+[\w.@%+~$-]+){2,}/?"
)
# The value of key=value (it may be empty: the slot is there either way).
_KV_RE = re.compile(r"(?<==)(?:<\*>|[^\s,;&)\]}<>\"'])*")
# Applied to one whitespace-separated token at a time.
_GENERIC_RE = re.compile(
    r"(?<![\w.+#%$-])(?:"
    # colon-separated hex groups: MAC addresses, IPv6 (their letters would otherwise split the slot)
    r"(?:[0-9a-fA-F]{1,4}:){2,}[0-9a-fA-F]{1,4}[\w.+#%$:-]*"
    # anything token-like with a digit: numbers in any form, ids with prefixes (call_…, req_…, blk_…),
    # hex and hashes, UUIDs, IPs, versions, clock times, durations, sizes, memory addresses
    r"|[\w.+#%$-]*?\d[\w.+#%$-]*"
    # host names under a common top-level domain
    rf"|(?:[a-zA-Z0-9-]+\.)+{_TLDS}\b"
    # literal booleans and nulls are values, not words
    r"|(?:true|false|True|False|TRUE|FALSE|null|None|nil|NaN|undefined)\b"
    # long hex runs without a digit (hashes, tokens)
    r"|[a-fA-F]{12,}\b"
    r")"
)
_UNITS = r"(?:[KMGTP]i?B|B|bytes?|[munµ]?s|secs?|seconds?|mins?|minutes?|hours?|hrs?|days?|%)"
# Placeholders separated only by punctuation or space form one slot ("<*>:<*>", "<*> <*>", "<*>/<*>"),
# and a unit after a number belongs to the value ("<*> KB", "<*> ms"), whatever the unit.
_MERGE_RE = re.compile(rf"<\*>(?:(?:[\s:/.,@#|_+-]*<\*>)+|\s?{_UNITS}\b)+")
# Month and weekday names are date parts; a following day number is masked anyway and merged.
_DATE_WORDS = frozenset(
    [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Sept",
        "Oct",
        "Nov",
        "Dec",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
)
_FOLD = bytes.maketrans(b"123456789", b"000000000")
_MSG_CACHE: dict[bytes, str] = {}
_TOKEN_CACHE: dict[str, str] = {}
_CACHE_MAX = 100_000


def _token(token: str) -> str:
    """One whitespace-separated token with its parameters masked (cached by the caller)."""
    if token in _DATE_WORDS or token.rstrip(",") in _DATE_WORDS:
        return _P
    text = token
    if "://" in text:
        text = _URL_RE.sub(_P, text)
    if "@" in text:
        text = _EMAIL_RE.sub(_P, text)
    if "/" in text or "\\" in text:
        text = _PATH_RE.sub(_P, text)
    if "=" in text:
        text = _KV_RE.sub(_P, text)
    return _GENERIC_RE.sub(_P, text)


def _template(folded: str) -> str:
    text = folded
    # Shapes that span several tokens are masked on the whole message first, only when present.
    if "{" in text or "[" in text:
        text = _JSON_RE.sub(_P, text)
    if '"' in text or "'" in text or "`" in text:
        text = _QUOTE_RE.sub(_P, text)
    cache = _TOKEN_CACHE
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    parts = []
    for tok in text.split():
        out = cache.get(tok)
        if out is None:
            out = cache[tok] = _token(tok)
        parts.append(out)
    text = " ".join(parts)
    if "<*>" in text:
        text = _MERGE_RE.sub(_P, text)
    if len(text) > MAX_TEMPLATE_CHARS:
        text = text[:MAX_TEMPLATE_CHARS] + "…"
    return text


def _fold(message: str) -> bytes:
    return message.encode("utf-8", "surrogatepass").translate(_FOLD)


def template_v1(message: str) -> str:
    """The message with its parameters replaced by ``<*>``; equal outputs mean the same group.

    Deterministic and context-free: the result depends on this message alone, so a signature keyed
    on it is stable across processes and over time.
    """
    if not message:
        return ""
    # No rule tells one digit from another, so messages equal up to their digits share a template:
    # caching on the digit-folded message is exact, and most of a real error stream hits it.
    key = _fold(message)
    hit = _MSG_CACHE.get(key)
    if hit is not None:
        return hit
    result = _template(key.decode("utf-8", "surrogatepass"))
    if len(_MSG_CACHE) >= _CACHE_MAX:
        _MSG_CACHE.clear()
    _MSG_CACHE[key] = result
    return result


# --- second pass: words that vary like parameters -----------------------------------------------

MIN_VARIANTS = 4
MIN_CONSTANT_TOKENS = 2


def merge_templates_v1(templates: Iterable[str], min_variants: int = MIN_VARIANTS) -> dict[str, str]:
    """Map each template to a merged one where a word slot varies like a parameter.

    ``template`` masks what looks like a value on its own (digits, quotes, paths, …); a user name or a
    class name does not. Across a corpus they show themselves: templates identical except at one
    position, where that position takes ``min_variants`` or more distinct words, are one event with a
    parameter there ("Invalid user admin/oracle/pi from <*>"). Two or fewer variants are kept apart
    ("Link Up" / "Link Down" are different events). Only the statistics of the given corpus are used,
    with one setting for every source; positions with fewer than two constant words around them are
    never merged, so short messages do not collapse into each other.
    """
    mapping = {t: t for t in set(templates)}
    for _ in range(3):
        current = {t: mapping[t] for t in mapping}
        distinct = set(current.values())
        variants: dict[tuple[int, int, tuple[str, ...]], set[str]] = {}
        split = {t: t.split(" ") for t in distinct}
        for toks in split.values():
            n = len(toks)
            constants = sum(1 for tok in toks if tok != _P)
            if constants - 1 < MIN_CONSTANT_TOKENS:
                continue
            for i, tok in enumerate(toks):
                if tok == _P or "<*>" in tok or (i + 1 < n and toks[i + 1] == _P):
                    # A word right before a value names it ("size <*>", "trap <*>"): template text.
                    continue
                key = (n, i, tuple(toks[:i] + toks[i + 1 :]))
                variants.setdefault(key, set()).add(tok)
        wild = {key for key, vals in variants.items() if len(vals) >= min_variants}
        if not wild:
            break
        merged: dict[str, str] = {}
        for t, toks in split.items():
            n = len(toks)
            out = list(toks)
            for i, tok in enumerate(toks):
                if tok != _P and (n, i, tuple(toks[:i] + toks[i + 1 :])) in wild:
                    out[i] = _P
            text = " ".join(out)
            merged[t] = _MERGE_RE.sub(_P, text) if text != t else t
        changed = False
        for t in mapping:
            new = merged.get(current[t], current[t])
            if new != mapping[t]:
                mapping[t] = new
                changed = True
        if not changed:
            break
    return mapping


# --- signatures of traces -----------------------------------------------------------------------


def signature_id_v1(kind: str, types: list[str], frame: str | None, template_text: str) -> str:
    """A version-1 signature id (the digest of its parts, seeded with ``v1``)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(b"v1")
    for part in [kind, *types, frame or "", template_text]:
        h.update(b"\x1f")
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
