"""Turn arbitrary Python values into bounded, redacted JSON-ready data (runs on the writer thread).

Rules: JSON types pass through; containers are walked to a depth and item limit; pydantic models and
dataclasses become dicts; anything else becomes a bounded repr marked ``{"__repr__": ..., "__type__": ...}``.
Long strings are cut with a marker giving the original size; cycles become ``"<cycle>"``. Every string is
valid UTF-8 (a lone surrogate becomes the text ``\\udXXX``). Secrets are replaced by ``[REDACTED]`` (see
:mod:`tracemend.capture.redact`).

Two ways to redact. ``scrub=True`` scrubs each string as it is kept. ``scrub=False`` (the writer's fast path
when RE2 is installed) keeps strings as they are and collects them in :attr:`Encoder.texts`; the writer scans
a whole batch's texts at once and encodes again, scrubbing, only the spans where something looked secret.
Values under secret keys are redacted either way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tracemend.capture.redact import REDACTED, Redactor, valid_text

__all__ = ["REPR_LIMIT", "Encoder", "valid_text"]

REPR_LIMIT = 500
_SCRUB_MARGIN = 512
_MAX_INT_BITS = 4000 * 3  # about 3600 decimal digits
_NO_CONTAINERS: set[int] = set()


class Encoder:
    """Bounded, redacting conversion to JSON-ready data. One instance per writer; not thread-safe."""

    def __init__(
        self,
        *,
        redactor: Redactor | None,
        max_string_chars: int = 10_000,
        max_items: int = 200,
        max_depth: int = 12,
        scrub: bool = True,
    ) -> None:
        self.redactor = redactor
        self.max_string_chars = max_string_chars
        self.max_items = max_items
        self.max_depth = max_depth
        self.scrub = scrub
        # Strings kept unscrubbed (scrub=False), for the caller to scan; cleared by the caller.
        self.texts: list[str] = []
        # Argument-name tuples → whether every name is kept as it is (no secret key, nothing to scrub).
        self._plain_names: dict[tuple[str, ...], bool] = {}

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or value is None or kind is bool or kind is float:
            return self._enc(value, 0, _NO_CONTAINERS)  # a scalar never reaches the cycle check
        return self._enc(value, 0, set())

    def flat(self, names: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, Any] | None:
        """``dict(zip(names, values))`` encoded, when every value is a scalar kept as it is (ASCII text
        within the limit, an int, a finite float, a bool, None) and every name is kept as it is.

        The common traced call takes this path instead of a walk; None means the general path
        (:meth:`encode`) is needed, which gives the same result wherever this one applies."""
        redactor = self.redactor
        if (redactor is not None and self.scrub) or len(values) > self.max_items or self.max_depth < 1:
            return None
        plain = self._plain_names.get(names)
        if plain is None:
            plain = self._names_kept(names)
        if not plain:
            return None
        limit = self.max_string_chars
        texts = False
        for v in values:
            kind = type(v)
            if kind is str:
                if len(v) > limit or not v.isascii():
                    return None
                texts = True
            elif kind is int:
                if v.bit_length() > _MAX_INT_BITS:
                    return None
            elif kind is float:
                if not math.isfinite(v):
                    return None
            elif v is not None and kind is not bool:
                return None
        if texts and redactor is not None:
            self.texts.extend([v for v in values if type(v) is str])
        return dict(zip(names, values))  # noqa: B905 (strict= costs a keyword call: 2.5x slower)

    def _names_kept(self, names: tuple[str, ...]) -> bool:
        keys = self.redactor.key if self.redactor is not None else None
        plain = all(
            type(n) is str and n.isascii() and (keys is None or keys(n) == (False, n)) for n in names
        )
        if len(self._plain_names) > 4096:  # closures decorated per call must not grow this without end
            self._plain_names.clear()
        self._plain_names[names] = plain
        return plain

    def text(self, text: str, limit: int | None = None) -> str:
        """One string (a name, a message) made valid, cut to ``limit`` and redacted like any value."""
        return self._cut(valid_text(text), self.max_string_chars if limit is None else limit)

    def _cut(self, text: str, limit: int) -> str:
        # Scrub before cutting: a cut through a key would leave a prefix too short for its pattern.
        # Scrubbing only a margin beyond the limit keeps the cost bounded for huge strings.
        size = len(text)
        redactor = self.redactor
        if size > limit:
            window = text[: limit + _SCRUB_MARGIN]
            if redactor is not None:
                if self.scrub:
                    window = redactor.scrub(window)
                else:
                    self.texts.append(window)
            return window[:limit] + f"…[truncated, {size} chars]"
        if redactor is not None:
            if self.scrub:
                return redactor.scrub(text)
            self.texts.append(text)
        return text

    def _enc(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            if not value.isascii():
                value = valid_text(value)
            if len(value) > self.max_string_chars or self.redactor is None:
                return self._cut(value, self.max_string_chars)
            if self.scrub:
                return self.redactor.scrub(value)
            self.texts.append(value)
            return value
        if value is None or kind is bool:
            return value
        if kind is int:
            # json cannot print ints past sys.get_int_max_str_digits() (4300 digits); mark them instead.
            return value if value.bit_length() <= _MAX_INT_BITS else self._repr(value, note="huge int")
        if kind is float:
            return value if math.isfinite(value) else repr(value)
        return self._other(value, depth, seen)

    def _other(self, value: Any, depth: int, seen: set[int]) -> Any:
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return self._enc(int(value), depth, seen)
        if isinstance(value, str):
            return self._enc(str.__str__(value), depth, seen)
        if isinstance(value, float):
            return self._enc(float(value), depth, seen)
        if depth >= self.max_depth:
            return self._repr(value, note="depth limit")
        oid = id(value)
        if oid in seen:
            return "<cycle>"
        seen.add(oid)
        try:
            return self._container(value, depth, seen)
        except Exception:  # a container whose items() or __str__ raises: its repr, not a lost span
            return self._repr(value, note="could not be walked")
        finally:
            seen.discard(oid)

    def _mapping(self, value: Mapping[Any, Any], depth: int, seen: set[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        redactor = self.redactor
        keys = redactor.key if redactor is not None else None
        enc = self._enc
        limit = self.max_items
        for i, (k, v) in enumerate(value.items()):
            if i >= limit:
                out["…"] = f"[+{len(value) - limit} more items]"
                break
            key = k if type(k) is str else str(k)
            if not key.isascii():
                key = valid_text(key)
            if keys is not None:
                secret, scrubbed = keys(key)
                if scrubbed != key:  # a secret used as a key: keep the entry apart from others like it
                    key = scrubbed if scrubbed not in out else f"{scrubbed}#{i}"
                if secret:
                    out[key] = REDACTED
                    continue
            out[key] = enc(v, depth + 1, seen)
        return out

    def _container(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        if kind is dict or isinstance(value, Mapping):
            return self._mapping(value, depth, seen)
        if kind is list or kind is tuple or isinstance(value, list | tuple | set | frozenset):
            items = value if isinstance(value, list | tuple) else _ordered(value)
            limit = self.max_items
            out_list = [self._enc(v, depth + 1, seen) for v in items[:limit]]
            if len(items) > limit:
                out_list.append(f"…[+{len(items) - limit} more items]")
            return out_list
        if isinstance(value, bytes | bytearray | memoryview):
            return {"__bytes__": len(value)}
        dump = getattr(value, "model_dump", None)
        if callable(dump) and hasattr(type(value), "model_fields"):
            try:
                return self._enc(dump(mode="json"), depth, seen)
            except Exception:
                return self._repr(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._enc(fields, depth, seen)
        return self._repr(value)

    def _repr(self, value: Any, note: str | None = None) -> dict[str, Any]:
        if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            return {
                "__repr__": f"<int of {value.bit_length()} bits>",
                "__type__": "builtins.int",
                "__note__": note,
            }
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not lose the record
            text = f"<unrepresentable: {type(exc).__name__}>"
        if type(text) is not str:
            text = f"<unrepresentable: __repr__ returned {type(text).__name__}>"
        text = self._cut(valid_text(text), REPR_LIMIT)
        cls = type(value)
        out: dict[str, Any] = {
            "__repr__": text,
            "__type__": valid_text(f"{cls.__module__}.{cls.__qualname__}"),
        }
        if note:
            out["__note__"] = note
        return out


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    """A set in a stable order for storage; members whose repr fails keep iteration order."""
    try:
        return sorted(items, key=repr)
    except Exception:
        return list(items)
