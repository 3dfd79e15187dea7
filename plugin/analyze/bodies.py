"""Structured error bodies inside messages: keep the fields that say what went wrong, mask the rest.

LLM providers, Slack, Qdrant, Pinecone and most HTTP APIs put a JSON object (or its Python ``repr``) in
the exception message: ``Error code: 429 - {'error': {'message': …, 'type': 'insufficient_quota', …}}``.
Masking the whole object merges failures that need different actions (quota vs rate limit, context
length vs tool-call ordering, ``channel_not_found`` vs ``ratelimited``). Keeping it whole splits one
failure by its request ids and timings. So a body is rendered as the fields whose *key* says they
classify the failure (``type``, ``code``, ``param``, ``error``, ``status``, ``reason``, …) or describe it
(``message``, ``detail``, …), in their original order, each string value templated like a message of
its own (its ids and numbers masked); every other field (ids, timings, headers, data) is left out.
A body with no such field becomes one placeholder, as before.

The rendering is the same for JSON and for Python ``repr`` (``null``/``None``, ``true``/``True``, either
quote), so two SDK versions printing the same error share a template. Numbers are always masked: the
message cache folds digits, and a status code repeats what the exception type already says.
"""

from __future__ import annotations

import re
from collections.abc import Callable

PLACEHOLDER = "<*>"

# Keys whose value classifies or describes a failure (lower-cased, without "_" and "-").
KEPT_KEYS = frozenset(
    {
        "type",
        "code",
        "param",
        "error",
        "status",
        "reason",
        "kind",
        "subtype",
        "category",
        "errortype",
        "errorcode",
        "statuscode",
        "statustext",
        "message",
        "msg",
        "detail",
        "details",
        "description",
        "errordescription",
        "errormessage",
        "title",
    }
)

# A body is an error body when one of these keys is in it; otherwise it is data (tool arguments, a
# record) that happens to have a key named like a kept one ({'reason': 'damaged'}), and it is masked.
ERROR_KEYS = frozenset(
    {"error", "errors", "message", "msg", "detail", "errormessage", "errordescription", "fault"}
)

# What a body is made of, for finding where it ends: a whole quoted string at a time, or a brace.
_STRUCT = re.compile(r"\"[^\"\\]*(?:\\.[^\"\\]*)*\"|'[^'\\]*(?:\\.[^'\\]*)*'|[{}]", re.S)
# ``"key": value`` or ``'key': value`` where value is a string, a number, a literal or an opening bracket.
_PAIR = re.compile(
    r"""(["'])([A-Za-z_][\w-]{0,40})\1\s*:\s*"""
    r"""(?:"([^"\\]*(?:\\.[^"\\]*)*)"|'([^'\\]*(?:\\.[^'\\]*)*)'"""
    r"""|(-?\d[\d.eE+-]*)|(true|false|null|True|False|None)\b|([\[{]))""",
    re.S,
)
_LITERALS = {
    "true": "True",
    "false": "False",
    "null": "None",
    "True": "True",
    "False": "False",
    "None": "None",
}
_UNESCAPE = re.compile(r"\\([\"'\\/nrt])")
_ESCAPES = {"n": "\n", "r": " ", "t": " "}
MAX_BODY_CHARS = 20_000


_KEY_HINT = re.compile(r"[{,]\s*[\"'][A-Za-z_][\w-]{0,40}[\"']\s*:")


def body_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each top-level balanced ``{…}`` of a message that has a quoted ``key:``."""
    spans: list[tuple[int, int]] = []
    if not _KEY_HINT.search(text):
        return spans
    start = text.find("{")
    while start != -1:
        end = _closing(text, start)
        if end is None:
            start = text.find("{", start + 1)
            continue
        spans.append((start, end))
        start = text.find("{", end)
    return spans


def _closing(text: str, start: int) -> int | None:
    depth = 0
    for m in _STRUCT.finditer(text, start, min(len(text), start + MAX_BODY_CHARS)):
        c = m.group()
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def _norm(key: str) -> str:
    norm = _NORM.get(key)
    if norm is None:
        if len(_NORM) > 10_000:
            _NORM.clear()
        norm = _NORM[key] = key.lower().replace("_", "").replace("-", "")
    return norm


_NORM: dict[str, str] = {}


def render_body(body: str, text_template: Callable[[str], str]) -> str:
    """The body as its kept fields (``{'type': 'tokens', 'code': 'rate_limit_exceeded', …}``)."""
    kept: list[str] = []
    is_error = False
    for m in _PAIR.finditer(body):
        key = m.group(2)
        norm = _norm(key)
        is_error = is_error or norm in ERROR_KEYS
        if norm not in KEPT_KEYS:
            continue
        dq, sq, number, literal, bracket = m.group(3, 4, 5, 6, 7)
        if bracket is not None:
            continue  # a nested object or list: its own kept fields are found by the scan
        if literal is not None:
            value = _LITERALS[literal]
        elif number is not None:
            value = PLACEHOLDER
        else:
            raw = dq if dq is not None else sq
            if "\\" in raw:
                raw = _UNESCAPE.sub(lambda e: _ESCAPES.get(e.group(1), e.group(1)), raw)
            value = f"'{text_template(raw)}'" if raw.strip() else "''"
        kept.append(f"'{key}': {value}")
    return "{" + ", ".join(kept) + "}" if kept and is_error else PLACEHOLDER
