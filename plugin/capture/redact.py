"""Secrets out of everything tracemend keeps or shows: values under secret-looking keys, and secret-shaped
substrings anywhere (in values, dict keys, exception messages, tool outputs shown to a model).

One :class:`Redactor` serves every place: the writer's encoder asks it about each mapping key and scrubs each
string it keeps; :meth:`Redactor.redact` walks data built elsewhere (an ingested Opik trace, a tool output).

The shapes are ported from the plugins of Yelp's detect-secrets (Apache-2.0) and the providers' documented
key formats, merged into one regular expression so that a string is scanned once. detect-secrets itself is
not used at run time: it scans line by line with one expression per plugin plus filters (tens of
microseconds a line), finds rather than replaces, and its keyword plugin matches ``max_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

REDACTED = "[REDACTED]"
_R = TypeVar("_R")

# Key names whose values are secrets. A name matches when one of these words is a whole component of it
# (split on _ - . and case), so "api_key" and "OPENAI_API_KEY" match while "max_tokens" does not.
DEFAULT_SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "private_key",
    "access_key",
    "cookie",
    "session_id",
    "client_secret",
    "dsn",
    "connection_string",
    "account_key",
    "shared_access_key",
)

# Words that name a secret in free text, as in ``password=…``, ``"api_key": "…"`` or ``token: …``: the word,
# then optionally more of the name after a separator (``secret_access_key``), then ``=`` or ``:``.
_PAIR_WORDS = (
    r"password|passwd|pwd|secret|token|api[_\-.]?key|access[_\-.]?key|private[_\-.]?key|client[_\-.]?secret"
    r"|authorization|auth|credentials?|session[_\-.]?id|cookie|account[_\-.]?key|shared[_\-.]?access[_\-.]?key"
)
_VALUE = r"""(?:"[^"\n]+"|'[^'\n]+'|[^\s"',;&<>)}\]]+)"""

# (kind, pattern). A pattern either is the secret as a whole, or marks the secret with the group ``(?P<s>…)``
# and keeps the rest (``password=[REDACTED]``, ``https://user:[REDACTED]@host``). Order matters where two
# could match at one place: the first wins.
# fmt: off
SECRET_SHAPES: tuple[tuple[str, str], ...] = (
    ("pem_private_key",
     r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----"
     r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)"),
    ("openai_or_anthropic", r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[0-9A-Z]{16}\b"),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("gcp_oauth", r"\b(?:GOCSPX-[A-Za-z0-9_\-]{20,}|ya29\.[0-9A-Za-z_\-]{20,})"),
    ("azure_sas_signature", r"[?&]sig=(?P<s>[A-Za-z0-9%+/=]{16,})"),
    ("github", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab", r"\bgl(?:pat|oas|dt|rt|cbt|ptt|ft|imt|agent|soat)-[A-Za-z0-9_\-]{20,}"),
    ("slack", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|\bxapp-\d-[A-Za-z0-9\-]{10,}"
     r"|https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ("stripe", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|\bwhsec_[0-9A-Za-z]{24,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("sendgrid", r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),
    ("twilio", r"\b(?:SK|AC)[0-9a-f]{32}\b"),
    ("huggingface", r"\bhf_[A-Za-z0-9]{30,}"),
    ("npm_pypi", r"\bnpm_[A-Za-z0-9]{36}\b|\bpypi-AgE[A-Za-z0-9_\-]{50,}"),
    ("vault", r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}"),
    ("url_userinfo", r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s/:@\"'<>]*:(?P<s>[^\s/@\"'<>]+)@"),
    ("bearer", r"(?i:\bbearer)\s+(?P<s>[A-Za-z0-9._~+/=\-]{8,})"),
    ("basic_auth", r"(?i:\bbasic)\s+(?P<s>[A-Za-z0-9+/]{6,}={0,2})"),
    ("key_value_pair",
     rf"(?i:(?:{_PAIR_WORDS})(?:[_\-.][A-Za-z0-9_\-.]{{0,40}})?[\"']?\s{{0,3}}[:=]\s{{0,3}}"
     rf"(?:(?:bearer|basic|token|digest)\s+)?)(?P<s>{_VALUE})"),
    # Last, so that the shapes above win where they start at the same place. A run of base64: 40 characters
    # mixed like a key is an AWS secret access key, 86 and "==" an Azure storage key; the callback keeps
    # other runs (words, hex digests, longer data).
    ("aws_or_azure_key", r"[A-Za-z0-9/+]{40,}={0,2}"),
)
# fmt: on
# Kept for callers of the earlier API: the patterns alone.
DEFAULT_SECRET_PATTERNS = tuple(pattern for _, pattern in SECRET_SHAPES)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CACHE_LIMIT = 8192
_CACHEABLE = 96  # strings up to this size are remembered: field values and keys repeat


def valid_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from JSON ``"\\ud83d"`` or ``surrogateescape``) escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _aws_or_azure_key(whole: str, text: str) -> bool:
    if len(text) == 88 and text.endswith("==") and "=" not in text[:86]:
        return True
    return len(text) == 40 and _mixed_like_a_key(text)


def _mixed_like_a_key(text: str) -> bool:
    """A base64 run that is a key, not a word or a hex digest: upper, lower, and a digit or /+."""
    has_upper = has_lower = has_other = False
    for ch in text:
        if ch.isupper():
            has_upper = True
        elif ch.islower():
            has_lower = True
        else:
            has_other = True
    return has_upper and has_lower and has_other


def _basic_credentials(whole: str, token: str) -> bool:
    """``Basic <token>`` is a credential when the token decodes to ``user:password``."""
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _bearer_token(whole: str, token: str) -> bool:
    # "bearer instruments" is prose; tokens carry digits or punctuation.
    return any(ch.isdigit() or ch in "._~+/=-" for ch in token)


_FILE_NAME = re.compile(
    r"\.(?:py|txt|md|rst|json|ya?ml|toml|cfg|ini|conf|log|csv|html?|js|ts|sh|lock|example|sample|template)\W*$",
    re.IGNORECASE,
)


def _pair_key(whole: str, value: str) -> bool:
    # "secret.txt: outside the repository" names a file, not a secret.
    return not _FILE_NAME.search(whole[: len(whole) - len(value)].rstrip(" \t:=\"'"))


_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "aws_or_azure_key": _aws_or_azure_key,
    "key_value_pair": _pair_key,
    "basic_auth": _basic_credentials,
    "bearer": _bearer_token,
}


def _anchored(pattern: str) -> bool:
    return (
        "$" in pattern
        or "\\A" in pattern
        or "\\Z" in pattern
        or "\\z" in pattern
        or bool(re.search(r"(?<!\[)\^", pattern))
    )


def _re2_compile(pattern: str) -> Any:
    """``pattern`` compiled by RE2, or None (google-re2 missing, or a pattern only Python's re understands)."""
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error:
        return None


class Redactor:
    """The default secret keys and shapes plus the user's (``redact_keys``, ``redact_patterns``)."""

    def __init__(
        self, keys: Iterable[str] = (), patterns: Iterable[str] = (), *, engine: str = "auto"
    ) -> None:
        """``engine``: "auto" (RE2 when it takes every pattern, else Python's re), "re2" or "re"."""
        keys, patterns = tuple(keys), tuple(patterns)
        words = sorted({w.lower() for w in (*DEFAULT_SECRET_KEYS, *keys)}, key=len, reverse=True)
        alternatives = "|".join(re.escape(w).replace("_", "[_\\-.]?") for w in words)
        self._key_re = re.compile(rf"(?:^|[_\-.])(?:{alternatives})(?:$|[_\-.])")
        shapes = [*SECRET_SHAPES, *((f"user_{i}", p) for i, p in enumerate(patterns))]
        if keys:  # the user's key names count in free text too: "ssn=…"
            own = "|".join(re.escape(k).replace("_", "[_\\-.]?") for k in keys)
            shapes = [
                (
                    kind,
                    pattern.replace(_PAIR_WORDS, f"{_PAIR_WORDS}|{own}")
                    if kind == "key_value_pair"
                    else pattern,
                )
                for kind, pattern in shapes
            ]
        parts = []
        self._kinds: dict[str, tuple[str, bool]] = {}
        for index, (kind, pattern) in enumerate(shapes):
            re.compile(pattern)  # a bad user pattern fails here, naming itself
            has_group = "(?P<s>" in pattern
            if has_group:
                pattern = pattern.replace("(?P<s>", f"(?P<s{index}>")
            parts.append(f"(?P<a{index}>{pattern})")
            self._kinds[f"a{index}"] = (kind, has_group)
        combined = "|".join(parts)
        self._value_re = re.compile(combined)
        self._groups = self._value_re.groupindex
        # The same expression in RE2 when it is installed and takes every pattern: a linear-time scan about
        # ten times faster than re's, which tries each alternative at each position.
        self._fast = _re2_compile(combined) if engine != "re" else None
        if engine == "re2" and self._fast is None:
            raise ValueError("RE2 is not installed or does not accept every pattern")
        # Scanning many strings joined by newlines finds whatever each would alone, unless a pattern is
        # anchored to the start or end of a string.
        self._joinable = self._fast is not None and not any(_anchored(p) for p in patterns)
        self._key_cache: dict[str, tuple[bool, str]] = {}
        self._scrub_cache: dict[str, str] = {}

    # --- keys ----------------------------------------------------------------------------------------

    def secret_key(self, key: str) -> bool:
        """Whether the value under ``key`` is a secret as a whole (``password``, ``OPENAI_API_KEY``)."""
        return self.key(key)[0]

    def key(self, key: str) -> tuple[bool, str]:
        """(the value under it is secret, the key itself scrubbed: a secret used as a key is redacted too)."""
        hit = self._key_cache.get(key)
        if hit is not None:
            return hit
        # camelCase → snake_case before matching, so "apiKey" is caught too.
        snake = _CAMEL.sub("_", key).lower()
        hit = (bool(self._key_re.search(snake)), self._scrub(key))
        if len(self._key_cache) >= _CACHE_LIMIT:
            self._key_cache.clear()
        self._key_cache[key] = hit
        return hit

    # --- text ----------------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` with every secret-shaped part replaced by ``[REDACTED]`` (and made valid UTF-8)."""
        if not text.isascii():
            text = valid_text(text)
        if len(text) > _CACHEABLE:
            return self._scrub(text)
        hit = self._scrub_cache.get(text)
        if hit is None:
            hit = self._scrub(text)
            if len(self._scrub_cache) >= _CACHE_LIMIT:
                self._scrub_cache.clear()
            self._scrub_cache[text] = hit
        return hit

    def _scrub(self, text: str) -> str:
        fast = self._fast
        if fast is None:
            return self._value_re.sub(self._replace, text)
        if fast.search(text) is None:
            return text
        return fast.sub(self._replace, text)

    def _replace(self, match: Any) -> str:
        name = match.lastgroup or ""
        kind, has_group = self._kinds.get(name, ("", False))
        whole = match.group(0)
        if not has_group:
            check = _CHECKS.get(kind)
            return whole if check is not None and not check(whole, whole) else REDACTED
        group = self._groups["s" + name[1:]]
        secret = match.group(group)
        check = _CHECKS.get(kind)
        if check is not None and not check(whole[: match.end(group) - match.start()], secret):
            return whole
        start, end = match.start(group) - match.start(), match.end(group) - match.start()
        return whole[:start] + REDACTED + whole[end:]

    @property
    def batched(self) -> bool:
        """Whether :meth:`suspect` scans many strings at once cheaply (RE2 installed, no anchored pattern)."""
        return self._joinable

    def suspect(self, texts: list[str]) -> bool:
        """Whether any of ``texts`` may hold a secret: one scan of them all (it may say yes for nothing)."""
        if not texts:
            return False
        if self._joinable:
            return self._fast.search("\n".join(texts)) is not None
        return any(self._scrub(text) != text for text in texts)

    # --- data ----------------------------------------------------------------------------------------

    def redact(self, value: Any, _depth: int = 0) -> Any:
        """JSON-like data with secret keys' values and secret-shaped strings (values and keys) redacted."""
        if isinstance(value, str):
            return self.scrub(value)
        if _depth > 64:
            return value
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if isinstance(k, str):
                    secret, k = self.key(valid_text(k))
                    if secret:
                        out[k] = REDACTED
                        continue
                out[k] = self.redact(v, _depth + 1)
            return out
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v, _depth + 1) for v in value)
        return value


def redact_record(record: _R, redactor: Redactor | None) -> _R:
    """A pydantic record (a trace built outside the writer, say) with every string redacted."""
    if redactor is None:
        return record
    return type(record).model_validate(redactor.redact(record.model_dump(mode="json")))


_default: tuple[tuple[Any, ...], Redactor | None] | None = None


def default_redactor() -> Redactor | None:
    """The redactor for the project's settings (``redact``, ``redact_keys``, ``redact_patterns``); None when
    redaction is turned off. Rebuilt when the settings change."""
    global _default
    from tracemend.settings import get

    settings = (get("redact"), tuple(get("redact_keys")), tuple(get("redact_patterns")))
    if _default is None or _default[0] != settings:
        on, keys, patterns = settings
        _default = (settings, Redactor(keys, patterns) if on else None)
    return _default[1]


def scrub_text(text: str) -> str:
    """``text`` redacted with the project's settings (for tool outputs and messages shown to a model)."""
    redactor = default_redactor()
    return redactor.scrub(text) if redactor is not None else text
