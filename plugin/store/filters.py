"""The filters trace queries take, as one SQL WHERE clause over the ``traces`` table.

Time, status, entry point and revision use indexed columns. Session, user, tags and metadata are read
from the stored JSON body (``json_extract``/``json_each``): no column or index of their own, so a filter on
them scans the traces the indexed filters leave (pair them with ``since`` on a large store).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

from tracemend.store.rows import to_us
from tracemend.store.scores import score_clause


class TraceFilter(TypedDict, total=False):
    """The filters every trace query takes; a trace matches when it matches each one given."""

    since: datetime | None
    until: datetime | None
    status: str | Sequence[str] | None
    entry_point: str | None
    revision: str | None
    # Set with tracemend.update_current_trace(session_id=..., user_id=...).
    session: str | None
    user: str | None
    # Every one of these tags (all must be present).
    tags: Sequence[str] | None
    # Top-level metadata keys and the values they must hold ("7" matches 7 and "7"; "true" matches true).
    meta: Mapping[str, str] | None
    # (name, verdict): traces with a score of that name and verdict; None in either place matches any.
    score: tuple[str | None, str | None] | None


def metadata_path(key: str) -> str:
    """The JSON path of a top-level metadata key (quoted, so dots and spaces are part of the name)."""
    if not key or '"' in key or "\\" in key:
        raise ValueError(f"metadata key {key!r} cannot be filtered on (empty, or holds a quote or backslash)")
    return f'$.metadata."{key}"'


def _scalar(text: str) -> Any:
    """``text`` as the JSON scalar it spells (number, true/false), else as itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool):
        return int(value)  # json_extract gives 1/0 for true/false
    return value if isinstance(value, int | float) else text


def where(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | Sequence[str] | None = None,
    entry_point: str | None = None,
    revision: str | None = None,
    session: str | None = None,
    user: str | None = None,
    tags: Sequence[str] | None = None,
    meta: Mapping[str, str] | None = None,
    score: tuple[str | None, str | None] | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters; ``since`` and ``until``, when given, are the first two."""
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("start_us >= ?")
        params.append(to_us(since))
    if until is not None:
        clauses.append("start_us < ?")
        params.append(to_us(until))
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if entry_point is not None:
        clauses.append("entry_point = ?")
        params.append(entry_point)
    if revision is not None:
        # A revision may be given abbreviated, as git prints it.
        clauses.append("code_commit LIKE ?")
        params.append(revision.replace("%", "") + "%")
    if session is not None:
        clauses.append("json_extract(body, '$.session_id') = ?")
        params.append(session)
    if user is not None:
        clauses.append("json_extract(body, '$.user_id') = ?")
        params.append(user)
    for tag in tags or ():
        clauses.append("EXISTS (SELECT 1 FROM json_each(body, '$.tags') WHERE value = ?)")
        params.append(tag)
    for key, value in (meta or {}).items():
        path = metadata_path(key)
        clauses.append("(json_extract(body, ?) = ? OR json_extract(body, ?) = ?)")
        params.extend((path, value, path, _scalar(value)))
    if score is not None:
        clause, score_params = score_clause(*score)
        clauses.append(clause)
        params.extend(score_params)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
