"""Many rows in few statements: ``INSERT ... VALUES (...), (...), ...`` of up to 256 rows each.

``executemany`` runs one statement per row and lets go of the GIL around each row's step. While other
threads run Python (the app recording spans, the writer serialising the next batch), taking the GIL back
can wait up to the interpreter's switch interval (5 ms) at every row: under load the store thread
committed a third of what it commits when idle. One statement per chunk takes the GIL back once per
chunk, and binds the same values of the same types as ``executemany`` does. 256 rows: binding them holds
the GIL about a millisecond (below the switch interval, so the app never waits long), and larger statements
cost more to prepare than they save (``bench/writer_instructions.py``). Chunks shrink by halves at the end
of a batch, so each table uses at most nine statement texts, which the statement cache keeps prepared.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

MAX_ROWS = 256


@functools.lru_cache(maxsize=64)
def _statement(head: str, columns: int, rows: int) -> str:
    one = "(" + ",".join("?" * columns) + ")"
    return head + ",".join([one] * rows)


def largest_chunk(conn: sqlite3.Connection, columns: int) -> int:
    """Rows per statement: at most MAX_ROWS, and within the connection's limit on bound values (999 in
    SQLite builds before 3.32)."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    size = 1
    while size * 2 <= MAX_ROWS and size * 2 * columns <= limit:
        size *= 2
    return size


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], columns: int) -> None:
    """``head`` (``"INSERT ... INTO t VALUES "``) for every row, each row ``columns`` values long."""
    size = largest_chunk(conn, columns)
    start, count = 0, len(rows)
    while start < count:
        while size > count - start:
            size //= 2
        sql = _statement(head, columns, size)
        while start + size <= count:
            values = list(chain.from_iterable(rows[start : start + size]))
            if len(values) != size * columns:
                raise sqlite3.ProgrammingError(f"rows of {columns} values expected for {head.strip()}")
            conn.execute(sql, values)
            start += size
