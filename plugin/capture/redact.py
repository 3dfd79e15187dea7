"""Secrets out of recorded data: values under secret-looking keys, and secret-shaped substrings anywhere.

The encoder asks a :class:`Redactor` about each mapping key and scrubs each string it keeps.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

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
)

# Secret shapes seen in the wild: provider keys, bearer tokens, AWS/GitHub/Slack/Google keys, JWTs.
DEFAULT_SECRET_PATTERNS = (
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}",
    r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=\-]{8,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
    r"\bAIza[0-9A-Za-z_\-]{35}\b",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
)


class Redactor:
    """The default secret keys and patterns plus the user's (``configure(redact_keys=..., redact_patterns=...)``)."""

    def __init__(
        self, keys: tuple[str, ...] | list[str] = (), patterns: tuple[str, ...] | list[str] = ()
    ) -> None:
        words = sorted({w.lower() for w in (*DEFAULT_SECRET_KEYS, *keys)}, key=len, reverse=True)
        alternatives = "|".join(re.escape(w).replace("_", "[_\\-.]?") for w in words)
        self._key_re = re.compile(rf"(?:^|[_\-.])(?:{alternatives})(?:$|[_\-.])")
        self._value_re = re.compile("|".join(f"(?:{p})" for p in (*DEFAULT_SECRET_PATTERNS, *patterns)))
        self._key_cache: dict[str, bool] = {}

    def secret_key(self, key: str) -> bool:
        hit = self._key_cache.get(key)
        if hit is None:
            # camelCase → snake_case before matching, so "apiKey" is caught too.
            snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
            hit = bool(self._key_re.search(snake))
            if len(self._key_cache) < 4096:
                self._key_cache[key] = hit
        return hit

    def scrub(self, text: str) -> str:
        return self._value_re.sub(REDACTED, text)
