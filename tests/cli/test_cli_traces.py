"""The trace-viewing commands, run as a user runs them: the installed `tracemend` script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracemend.store import Store

from helpers.records import make_trace


def tm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=60
    )


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "t.db"
    now = datetime.now(UTC)
    traces = [make_trace(start=now - timedelta(hours=i), seed=i) for i in range(5)]
    traces += [
        make_trace(start=now - timedelta(minutes=30), status="error", seed=100, commit="b" * 40),
        make_trace(start=now - timedelta(days=3), status="error", seed=101, entry_point="app.other:go"),
    ]
    with Store(db) as store:
        store.add_traces(traces)
    return db, [t.trace_id for t in traces]


def test_traces_table_filters_and_json(filled: tuple[Path, list[str]]) -> None:
    db, ids = filled
    out = tm("traces", "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert ids[0][:12] in out.stdout and "KeyError" in out.stdout

    failing = tm("traces", "--failing", "--json", "--db", str(db))
    rows = [json.loads(line) for line in failing.stdout.splitlines()]
    assert {r["trace_id"] for r in rows} == {ids[5], ids[6]}
    assert rows[0]["trace_id"] == ids[5]  # newest first

    recent = tm("traces", "--failing", "--since", "2h", "--json", "--db", str(db))
    assert [json.loads(x)["trace_id"] for x in recent.stdout.splitlines()] == [ids[5]]
    by_rev = tm("traces", "--revision", "bbbb", "--json", "--db", str(db))
    assert [json.loads(x)["trace_id"] for x in by_rev.stdout.splitlines()] == [ids[5]]
    by_entry = tm("traces", "--entry", "app.other:go", "--json", "--db", str(db))
    assert [json.loads(x)["trace_id"] for x in by_entry.stdout.splitlines()] == [ids[6]]
    limited = tm("traces", "--limit", "2", "--json", "--db", str(db))
    assert len(limited.stdout.splitlines()) == 2


def test_show_renders_tree_error_and_frames(filled: tuple[Path, list[str]]) -> None:
    db, ids = filled
    out = tm("show", ids[5][:10], "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert ids[5] in out.stdout
    assert "KeyError" in out.stdout and "app/tools.py:12 in refund_policy" in out.stdout
    as_json = json.loads(tm("show", ids[5], "--json", "--db", str(db)).stdout)
    assert as_json["trace_id"] == ids[5] and as_json["spans"][0]["kind"] == "agent"


def test_show_unknown_and_ambiguous_ids_are_usage_errors(filled: tuple[Path, list[str]]) -> None:
    db, _ = filled
    unknown = tm("show", "ffffffffffffdead", "--db", str(db))
    assert unknown.returncode == 2 and "no trace with id" in unknown.stderr
    ambiguous = tm("show", "", "--db", str(db))
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr


def test_missing_and_corrupt_store_give_clear_errors(tmp_path: Path) -> None:
    missing = tm("traces", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 2 and "No trace store" in missing.stderr
    assert not (tmp_path / "nope.db").exists()

    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite at all" * 100)
    before = corrupt.read_bytes()
    out = tm("status", "--db", str(corrupt))
    assert out.returncode == 2 and "not a tracemend store" in out.stderr
    assert corrupt.read_bytes() == before


def test_status_reports_counts_and_dropped_records(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    script = (
        "import tracemend\n"
        "@tracemend.track\n"
        "def f(i):\n    return i\n"
        "for i in range(3000):\n    f(i)\n"
        "tracemend.flush()\n"
    )
    env = {**os.environ, "TRACEMEND_DB": str(db), "TRACEMEND_QUEUE_SIZE": "5"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=60)
    out = tm("status", "--db", str(db))
    assert out.returncode == 0, out.stderr
    with Store(db) as store:
        dropped = sum(w.dropped for w in store.writer_stats())
        written = store.count()
    assert dropped > 0 and written + dropped == 3000
    assert f"dropped   {dropped} records" in out.stdout
    assert f"traces    {written} " in out.stdout
