"""One message → its template: the parameters that show on their own replaced by ``<*>``.

Context-free and deterministic: the result depends on the message alone, so a signature keyed on it is
stable across processes and over time. Only shapes that are values wherever they appear are masked:
anything with a digit (numbers in every form, ids, hashes, IPs, times, sizes), URLs, e-mail
addresses, paths, dotted lower-case names (hosts, files, packages), quoted values, ``key=value``
values, booleans and nulls, empty slots (``()``, ``''``). Words are left alone: whether a word is a
parameter (a user or tool name) shows only across a corpus (``grouping``). Structured error bodies
keep their classifying fields (``bodies``).

The rules are data (``MaskRules``) so that ``bench/grouping.py`` can choose them on some Loghub systems
and score them on others; ``DEFAULT_RULES`` is what the analyzer uses.

Speed: each multi-token shape has its own expression, run only when its trigger character is present;
the rest is done per whitespace token with a cache; and ``Masker.template`` caches on the message with
its digits folded to ``0`` — exact, because no rule tells one digit from another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracemend.analyze.bodies import body_spans, render_body

PLACEHOLDER = "<*>"
MAX_TEMPLATE_CHARS = 1000
_P = PLACEHOLDER
_CACHE_MAX = 100_000


@dataclass(frozen=True)
class MaskRules:
    """The per-message rules that are a choice rather than a certainty (chosen by leave-systems-out).

    ``quotes``: ``"whole"`` masks every quoted string; ``"words"`` masks a quoted string without spaces
    and keeps the words of a longer one (``"GET <*> HTTP/<*>"``), masking its values token by token;
    ``"mixed"`` keeps the words of a longer one only when it holds values of its own (a request line,
    a command with arguments) and masks it whole when it is only words (a name, a phrase).
    ``dotted``: a lower-case name with at least this many dot-separated labels is a value (host, file,
    package); 0 turns the rule off (a dotted name before ``:port`` is a host either way).
    """

    quotes: str = "mixed"
    dotted: int = 2


DEFAULT_RULES = MaskRules()

_JSON_RE = re.compile(
    r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\[(?=[\s\d\"'{\[-])(?:[^\[\]]|\[[^\[\]]*\])*\]"
)
# A quote opens and closes at a word boundary, so the apostrophe in "isn't" is not a quote.
_QUOTE_WHOLE = re.compile(
    r"(?<![\w\\])(?:\"(?:[^\"\\\n]|\\.){0,400}\"|'(?:[^'\\\n]|\\.){0,400}'(?!\w)|`[^`\n]{0,400}`)"
)
_QUOTE_WORD = re.compile(
    r"(?<![\w\\])(?:\"(?:[^\"\\\s]|\\.){0,400}\"|'(?:[^'\\\s]|\\.){0,400}'(?!\w)|`[^`\s]{0,400}`)"
)
# An HTTP status line in quotes ('404 Not Found'): the reason phrase is template text.
_STATUS_TEXT = re.compile(r"(?<![\w\\])([\"'])\d{3} ([A-Z][A-Za-z -]{1,40})\1")
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>()\[\]{},]+")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Rooted, home- or dot-relative, Windows-drive paths, or anything with two or more slashes.
_PATH_RE = re.compile(
    r"(?<![\w.~/\\-])(?:~|\.{1,2}|[A-Za-z]:)?(?:[/\\]+[\w.@%+~$-]+)+[/\\]?|\b[\w.-]+(?:/+[\w.@%+~$-]+){2,}/?"
)
# The value of key=value, empty or not, except where the key says what kind of failure it is.
_KV_RE = re.compile(
    r"(?<==)(?<!\btype=)(?<!\bcode=)(?<!\bkind=)(?<!\breason=)(?<!\berror=)(?<!\bstatus=)"
    r"(?:<\*>|[^\s,;&)\]}<>\"'])*"
)
_DIGIT_RE = re.compile(
    r"(?<![\w.+#%$-])(?:"
    # colon-separated hex groups: MAC addresses, IPv6 (their letters would otherwise split the slot)
    r"(?:[0-9a-fA-F]{1,4}:){2,}[0-9a-fA-F]{1,4}[\w.+#%$:-]*"
    # anything token-like with a digit: numbers in any form, prefixed ids (call_…, req_…, blk_…),
    # hex and hashes, UUIDs, IPs, versions, clock times, durations, sizes, memory addresses
    r"|[\w.+#%$-]*?\d[\w.+#%$-]*"
    # literal booleans and nulls are values, not words
    r"|(?:true|false|True|False|TRUE|FALSE|null|None|nil|NaN|undefined)\b"
    # long hex runs without a digit (hashes, tokens)
    r"|[a-fA-F]{12,}\b"
    r")"
)
# A slot that is empty this time is still the slot.
_EMPTY_RE = re.compile(r"^(?:\(\)|\[\]|\{\})(?=[,.;:]?$)")
_UNITS = r"(?:[KMGTP]i?B|B|bytes?|[munµ]?s|secs?|seconds?|mins?|minutes?|hours?|hrs?|days?|%)"
# Placeholders separated only by punctuation or space form one slot ("<*>:<*>", "<*> <*>", "<*>/<*>"),
# a unit after a number belongs to the value ("<*> KB", "<*> ms"), and a comparison sign before it too.
_MERGE_RE = re.compile(rf"<\*>(?:(?:[\s:/.,@#|_+-]*<\*>)+|\s?{_UNITS}\b)+")
_SIGN_RE = re.compile(r"[<>~]<\*>|<\*>>")
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
_HOST_PORT = re.compile(r"(?<![\w.-])[A-Za-z0-9][\w-]*(?:\.[\w-]+)+(?=:\d)")
_FOLD = bytes.maketrans(b"123456789", b"000000000")


def _dotted_re(labels: int) -> re.Pattern[str] | None:
    if labels <= 0:
        return _HOST_PORT
    # lower-case labels, the last alphabetic (a host or a file, not a version or a sentence's end),
    # or any dotted name before ":port"
    return re.compile(
        rf"(?<![\w.-])(?:(?:[a-z0-9][a-z0-9_-]*\.){{{labels - 1},}}[a-z][a-z0-9]*\b(?!\.\w)"
        rf"|[A-Za-z0-9][\w-]*(?:\.[\w-]+)+(?=:\d))"
    )


def merge_placeholders(text: str) -> str:
    """Adjacent placeholders (and a unit after one) as one slot."""
    return _MERGE_RE.sub(_P, text) if _P in text else text


class Masker:
    """A compiled set of rules with its caches; ``template`` is the per-message template."""

    def __init__(self, rules: MaskRules = DEFAULT_RULES) -> None:
        self.rules = rules
        self._quote = _QUOTE_WHOLE if rules.quotes == "whole" else _QUOTE_WORD
        self._mixed = rules.quotes == "mixed"
        self._dotted = _dotted_re(rules.dotted)
        self._messages: dict[bytes, str] = {}
        self._tokens: dict[str, str] = {}

    def clear(self) -> None:
        self._messages.clear()
        self._tokens.clear()

    def template(self, message: str) -> str:
        """The template of ``message``; equal outputs mean the same per-message group."""
        if not message:
            return ""
        # Messages equal up to their digits share a template, so the cache is keyed on the folded text.
        key = message.encode("utf-8", "surrogatepass").translate(_FOLD)
        cache = self._messages
        hit = cache.get(key)
        if hit is not None:
            return hit
        result = self._render(key.decode("utf-8", "surrogatepass"))
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = result
        return result

    def template_uncached(self, message: str) -> str:
        if not message:
            return ""
        return self._render(
            message.encode("utf-8", "surrogatepass").translate(_FOLD).decode("utf-8", "surrogatepass")
        )

    def _render(self, text: str) -> str:
        text = self._text(text, 0) if "{" in text and ":" in text else self._plain(text)
        if _P in text:
            text = _MERGE_RE.sub(_P, text)
        if len(text) > MAX_TEMPLATE_CHARS:
            text = text[:MAX_TEMPLATE_CHARS] + "…"
        return text

    def _text(self, text: str, depth: int) -> str:
        """Bodies rendered by their kept fields, the text around them masked."""
        spans = body_spans(text) if depth < 2 else None
        if not spans:
            return self._plain(text)
        inner = self._inner if depth == 0 else self._plain
        pieces: list[str] = []
        pos = 0
        for start, end in spans:
            pieces.append(self._plain(text[pos:start]))
            pieces.append(render_body(text[start:end], inner))
            pos = end
        pieces.append(self._plain(text[pos:]))
        return " ".join(p for p in pieces if p)

    def _inner(self, text: str) -> str:
        return self._text(text, 1) if "{" in text and ":" in text else self._plain(text)

    def _plain(self, text: str) -> str:
        if "{" in text or "[" in text:
            text = _JSON_RE.sub(_P, text)
        if '"' in text or "'" in text or "`" in text:
            if "000 " in text:  # digits are folded: a quoted status line starts with "000 "
                text = _STATUS_TEXT.sub(r"<*> \2", text)
            text = self._quote.sub(_P, text)
            if self._mixed and ('"' in text or "'" in text or "`" in text):
                text = _QUOTE_WHOLE.sub(self._quoted_words, text)
        cache = self._tokens
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        get = cache.get
        return " ".join([get(tok) or self._new_token(tok) for tok in text.split()])

    def _new_token(self, token: str) -> str:
        out = self._tokens[token] = self._token(token)
        return out

    def _quoted_words(self, m: re.Match[str]) -> str:
        quoted = m.group()
        inner = " ".join(self._token(tok) for tok in quoted[1:-1].split())
        return quoted[0] + inner + quoted[-1] if _P in inner else _P

    def _token(self, token: str) -> str:
        if token in _DATE_WORDS or token.rstrip(",") in _DATE_WORDS:
            return _P
        text = token
        if "://" in text:
            text = _URL_RE.sub(_P, text)
        if "@" in text:
            text = _EMAIL_RE.sub(_P, text)
        if "/" in text or "\\" in text:
            text = _PATH_RE.sub(_P, text)
        if "=" in text and text != "=":
            text = _KV_RE.sub(_P, text)
        if "." in text:
            text = self._dotted.sub(_P, text)
        if text[0] in "([{":
            text = _EMPTY_RE.sub(lambda m: m.group()[0] + _P + m.group()[1], text)
        text = _DIGIT_RE.sub(_P, text)
        # A comparison sign stuck to a value is part of it ("<1 sec", "~3 ms").
        return (
            _SIGN_RE.sub(_P, text) if "<<" in text or "><" in text or "~<" in text or ">>" in text else text
        )


DEFAULT_MASKER = Masker()
