"""Rows written in multi-row statements come back exactly as ``executemany`` would have stored them: every
row, every value and type, whatever the batch size and the connection's limit on bound values."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tracemend.store import Store
from tracemend.store.inserts import MAX_ROWS, insert_rows, largest_chunk

TABLE = "CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER, c REAL, d TEXT, e BLOB)"


def _rows(n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(n)
    return [
        (
            f"{i:08d}-{rng.getrandbits(32):08x}",
            rng.choice([None, 0, -1, 2**63 - 1, rng.randrange(10**15)]),
            rng.choice([None, 0.5, -1e300]),
            rng.choice([None, "", "é ✓ 𝄞", '{"json": "body"}', "x" * 5000]),
            rng.choice([None, b"\x00\xff"]),
        )
        for i in range(n)
    ]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # each autocommitted row would otherwise wait for the disk
    conn.execute(TABLE)
    return conn


@pytest.mark.parametrize("count", [0, 1, 2, 3, 255, 256, 257, 5000])
def test_every_row_and_value_arrives_as_executemany_stores_it(tmp_path: Path, count: int) -> None:
    rows = _rows(count)
    ours, theirs = _connect(tmp_path / "ours.db"), _connect(tmp_path / "theirs.db")
    insert_rows(ours, "INSERT INTO t VALUES ", rows, 5)
    theirs.executemany("INSERT INTO t VALUES (?,?,?,?,?)", rows)
    query = "SELECT a, b, c, d, e, typeof(b), typeof(c), typeof(d), typeof(e) FROM t ORDER BY a"
    assert ours.execute(query).fetchall() == theirs.execute(query).fetchall()
    assert len(ours.execute(query).fetchall()) == count


def test_a_low_limit_on_bound_values_makes_smaller_statements(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "t.db")
    assert largest_chunk(conn, 5) == MAX_ROWS
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
    assert largest_chunk(conn, 13) == min(64, MAX_ROWS)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)
    assert largest_chunk(conn, 5) == 1
    rows = _rows(300)
    insert_rows(conn, "INSERT INTO t VALUES ", rows, 5)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 300


def test_a_row_of_the_wrong_length_is_refused_and_nothing_of_its_chunk_is_written(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "t.db")
    rows = [*_rows(3), ("short", 1)]
    with pytest.raises(sqlite3.ProgrammingError, match="rows of 5 values"):
        insert_rows(conn, "INSERT INTO t VALUES ", rows, 5)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_a_constraint_failure_rolls_the_whole_batch_back(tmp_path: Path) -> None:
    """A batch is one transaction: a failing chunk leaves none of the batch behind."""
    with Store(tmp_path / "s.db") as store:
        span = ("t" * 32, "s" * 16, None, "n", "general", 1, 2, 0, "{}")
        bad = ("t" * 32, "s" * 15 + "x", None, None, "general", 1, 2, 0, "{}")  # name is NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            store.write_rows([], [span] * 3000 + [bad])
        assert store.span_count() == 0
