"""Stored bodies back into records, one row at a time, so that one bad row never breaks a read for the rest.

A body that does not validate is repaired where the damage is known and harmless: invalid UTF-8 bytes and
lone surrogates (``"\\ud800"``, written by versions that stored them escaped) become valid text. What still
fails is *damaged*: the reader skips it, logs it once, and lists it in :attr:`Store.damaged`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

logger = logging.getLogger("tracemend")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class DamagedRow:
    """A stored row that could not be read back: which table, its id, and why."""

    table: str
    row_id: str
    reason: str


def _valid(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_valid(k): _valid(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid(v) for v in value]
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return f"{where}: {first.get('msg', 'invalid')}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def parse(model: type[_M], body: bytes | str) -> tuple[_M | None, str | None]:
    """``(record, None)``, or ``(None, reason)`` when the body cannot be read even after repair."""
    try:
        return model.model_validate_json(body), None
    except (ValidationError, ValueError) as exc:
        first = exc
    try:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return model.model_validate(_valid(json.loads(text))), None
    except (ValidationError, ValueError, RecursionError) as exc:
        return None, _reason(exc if isinstance(exc, ValidationError) else first)


class DamageLog:
    """The damaged rows one store has met (each logged once)."""

    def __init__(self) -> None:
        self.rows: list[DamagedRow] = []
        self._seen: set[tuple[str, str]] = set()

    def note(self, table: str, row_id: str, reason: str, where: str) -> None:
        key = (table, row_id)
        if key in self._seen:
            return
        self._seen.add(key)
        self.rows.append(DamagedRow(table, row_id, reason))
        if len(self._seen) <= 20:
            logger.warning(
                "tracemend: %s %s in %s is damaged (%s); skipped", table[:-1], row_id, where, reason
            )
        elif len(self._seen) == 21:
            logger.warning("tracemend: more damaged rows in %s; skipped without a message each", where)


def failure_parts(body: bytes) -> tuple[str | None, str | None, str | None] | None:
    """(error JSON, metadata JSON, output as ``json_extract`` gives it) of a trace body; None if not JSON."""
    try:
        data = _valid(json.loads(body.decode("utf-8", "replace")))
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None

    def as_json(value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    output = data.get("output")
    return (
        as_json(data.get("error")),
        as_json(data.get("metadata")),
        output if isinstance(output, str) else as_json(output),
    )
