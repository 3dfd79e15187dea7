"""Scores in the store: the migration that adds them, their reads and writes, and what judging spent."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracemend.records import Score
from tracemend.store import APPLICATION_ID, SCHEMA_VERSION, JudgeUsage, Store
from tracemend.store.schema import MIGRATIONS

from helpers.records import make_trace

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _score(trace_id: str, *, name: str = "rule", verdict: str = "fail", minutes: int = 0, **kw) -> Score:
    return Score(
        score_id=kw.pop("score_id", f"{name}-{trace_id[:8]}-{minutes}"),
        trace_id=trace_id,
        source=kw.pop("source", "judge"),
        name=name,
        verdict=verdict,  # type: ignore[arg-type]
        created_at=NOW + timedelta(minutes=minutes),
        **kw,
    )


def test_a_store_of_the_first_schema_gains_scores_and_keeps_its_traces(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    trace = make_trace(start=NOW, seed=1)
    with Store(db) as store:  # migrates 1 → current
        store.add_traces([trace])
        store.add_scores([_score(trace.trace_id)])
        assert [s.trace_id for s in store.scores_of(trace.trace_id)] == [trace.trace_id]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"traces", "spans", "scores", "judge_usage"} <= tables
    conn.close()


def test_score_reads_filters_and_newest_first_grouping(tmp_path: Path) -> None:
    a, b, c = (make_trace(start=NOW + timedelta(minutes=i), seed=i, commit=f"{i}" * 40) for i in range(3))
    with Store(tmp_path / "t.db") as store:
        store.add_traces([a, b, c])
        store.add_scores(
            [
                _score(a.trace_id, verdict="pass", minutes=1),
                _score(a.trace_id, verdict="fail", minutes=2, category="ignores window", score_id="x"),
                _score(b.trace_id, verdict="unknown", minutes=1, error="judge model error (failed closed)"),
                _score(c.trace_id, name="user", source="feedback", verdict="fail", value=0.0, reason="no"),
            ]
        )
        assert [s.verdict for s in store.scores_of(a.trace_id)] == ["pass", "fail"]
        assert [s.trace_id for s in store.iter_scores(verdict="fail", source="judge")] == [a.trace_id]
        assert [s.name for s in store.iter_scores(source="feedback")] == ["user"]
        assert len(list(store.iter_scores(since=NOW + timedelta(minutes=2)))) == 1
        # The analyzer's scan: pass and fail only, with the trace's start time and commit.
        rows = list(store.score_rows())
        assert [(r.trace_id, r.verdict) for r in rows] == [
            (a.trace_id, "pass"),
            (a.trace_id, "fail"),
            (c.trace_id, "fail"),
        ]
        assert rows[0].code_commit == "0" * 40 and rows[2].start_us > rows[0].start_us
        assert list(store.score_rows(since=NOW + timedelta(minutes=1, seconds=30))) == rows[2:]
        # Trace filters on scores.
        assert [t.trace_id for t in store.iter_traces(score=("rule", "fail"))] == [a.trace_id]
        assert {t.trace_id for t in store.iter_traces(score=("rule", None))} == {a.trace_id, b.trace_id}
        assert {t.trace_id for t in store.iter_traces(score=(None, "fail"))} == {a.trace_id, c.trace_id}
        assert store.count(score=("user", "pass")) == 0
        # What a rule has yet to judge: no pass or fail under this key (an unknown is tried again).
        for row in [a, b, c]:
            store.add_scores([_score(row.trace_id, name="r2", rule_key="k1", score_id=f"k-{row.trace_id}")])
        store.add_scores(
            [_score(b.trace_id, name="r2", rule_key="k1", verdict="unknown", score_id=f"k-{b.trace_id}")]
        )
        assert [r.trace_id for r in store.unjudged("r2", "k1")] == [b.trace_id]
        assert [r.trace_id for r in store.unjudged("r2", "k2", since=NOW + timedelta(minutes=1))] == [
            b.trace_id,
            c.trace_id,
        ]
        assert store.score_categories("rule") == [("ignores window", 1)]


def test_judging_spend_adds_up_per_day_and_rule(tmp_path: Path) -> None:
    with Store(tmp_path / "t.db") as store:
        store.add_scores(
            [], [JudgeUsage("2026-11-02", "r", judged=3, model_calls=3, cost=0.01, max_call_cost=0.004)]
        )
        store.add_scores(
            [],
            [
                JudgeUsage(
                    "2026-11-02", "r", judged=2, model_calls=1, cache_hits=1, cost=0.002, max_call_cost=0.002
                )
            ],
        )
        store.add_scores([], [JudgeUsage("2026-11-03", "r", judged=1, model_calls=1, cost=0.001)])
        (day,) = store.judge_usage(day="2026-11-02", rule="r")
        assert (day.judged, day.model_calls, day.cache_hits) == (5, 4, 1)
        assert abs(day.cost - 0.012) < 1e-12 and day.max_call_cost == 0.004
        assert [u.day for u in store.judge_usage(rule="r")] == ["2026-11-03", "2026-11-02"]
