"""Turn arbitrary Python values into bounded, redacted JSON-ready data (runs on the writer thread).

Rules: JSON types pass through; containers are walked to a depth and item limit; pydantic models and
dataclasses become dicts; anything else becomes a bounded repr marked ``{"__repr__": ..., "__type__": ...}``.
Long strings are cut with a marker giving the original size; cycles become ``"<cycle>"``. Secrets are
replaced by ``[REDACTED]`` (see :mod:`tracemend.capture.redact`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tracemend.capture.redact import REDACTED, Redactor

REPR_LIMIT = 500
_SCRUB_MARGIN = 512
_MAX_INT_BITS = 4000 * 3  # about 3600 decimal digits


class Encoder:
    """Bounded, redacting conversion to JSON-ready data. One instance per writer; not thread-safe."""

    def __init__(
        self,
        *,
        redactor: Redactor | None,
        max_string_chars: int = 10_000,
        max_items: int = 200,
        max_depth: int = 12,
    ) -> None:
        self.redactor = redactor
        self.max_string_chars = max_string_chars
        self.max_items = max_items
        self.max_depth = max_depth

    def encode(self, value: Any) -> Any:
        return self._enc(value, 0, set())

    def _str(self, text: str) -> str:
        return self._cut(text, self.max_string_chars)

    def _cut(self, text: str, limit: int) -> str:
        # Scrub before cutting: a cut through a key would leave a prefix too short for its pattern.
        # Scrubbing only a margin beyond the limit keeps the cost bounded for huge strings.
        size = len(text)
        if self.redactor is not None:
            text = self.redactor.scrub(text[: limit + _SCRUB_MARGIN] if size > limit else text)
        if size > limit:
            text = text[:limit] + f"…[truncated, {size} chars]"
        return text

    def _enc(self, value: Any, depth: int, seen: set[int]) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            # json cannot print ints past sys.get_int_max_str_digits() (4300 digits); mark them instead.
            return value if value.bit_length() <= _MAX_INT_BITS else self._repr(value, note="huge int")
        if isinstance(value, str):
            return self._str(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if depth >= self.max_depth:
            return self._repr(value, note="depth limit")
        oid = id(value)
        if oid in seen:
            return "<cycle>"
        seen.add(oid)
        try:
            return self._container(value, depth, seen)
        finally:
            seen.discard(oid)

    def _container(self, value: Any, depth: int, seen: set[int]) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for i, (k, v) in enumerate(value.items()):
                if i >= self.max_items:
                    out["…"] = f"[+{len(value) - self.max_items} more items]"
                    break
                key = k if isinstance(k, str) else str(k)
                if self.redactor is not None and self.redactor.secret_key(key):
                    out[key] = REDACTED
                else:
                    out[key] = self._enc(v, depth + 1, seen)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            items = value if isinstance(value, list | tuple) else _ordered(value)
            out_list = [self._enc(v, depth + 1, seen) for v in items[: self.max_items]]
            if len(items) > self.max_items:
                out_list.append(f"…[+{len(items) - self.max_items} more items]")
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
        text = self._cut(text, REPR_LIMIT)
        cls = type(value)
        out: dict[str, Any] = {"__repr__": text, "__type__": f"{cls.__module__}.{cls.__qualname__}"}
        if note:
            out["__note__"] = note
        return out


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    """A set in a stable order for storage; members whose repr fails keep iteration order."""
    try:
        return sorted(items, key=repr)
    except Exception:
        return list(items)
