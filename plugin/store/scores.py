"""Scores in the store: online judges' verdicts and people's feedback on traces, and what judging cost.

A :class:`~tracemend.records.Score` is kept as a JSON body beside the columns queries filter on. The
``judge_usage`` table sums, per UTC day and rule, the judgments made, the model calls, the cache hits and the
cost, so a budget holds across processes and ``tracemend evaluate`` can show what each rule spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tracemend.records import Score
from tracemend.store.rows import TraceRow, to_us

if TYPE_CHECKING:
    import sqlite3
    from contextlib import AbstractContextManager


@dataclass
class JudgeUsage:
    """What one rule's judging spent on one UTC day (``day`` is ``YYYY-MM-DD``)."""

    day: str
    rule: str
    judged: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    cost: float = 0.0
    # The dearest single model call seen: the estimate a cost budget checks before the next judgment.
    max_call_cost: float = 0.0


@dataclass(frozen=True)
class ScoreRow:
    """One pass or fail score with its trace's start time and code version (the analyzer's scan)."""

    trace_id: str
    start_us: int
    code_commit: str | None
    source: str
    name: str
    span_id: str | None
    verdict: str
    category: str | None
    created_us: int


def utc_day(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def score_row(score: Score) -> tuple[Any, ...]:
    return (
        score.score_id,
        score.trace_id,
        score.span_id,
        score.source,
        score.name,
        score.rule_key,
        score.verdict,
        score.category,
        to_us(score.created_at),
        score.model_calls,
        score.cost,
        score.model_dump_json(),
    )


class ScoreMethods:
    """The score reads and writes of :class:`~tracemend.store.Store` (mixed into it)."""

    if TYPE_CHECKING:  # provided by Store

        def _write_transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...
        def _stream(self, sql: str, params: Sequence[Any], size: int = 500) -> Iterator[tuple[Any, ...]]: ...

    def add_scores(self, scores: Iterable[Score], usage: Iterable[JudgeUsage] = ()) -> int:
        """Write scores (a score with an existing id replaces it) and add ``usage`` to the day's sums,
        in one transaction. Returns how many scores were written."""
        rows = [score_row(s) for s in scores]
        sums = list(usage)
        with self._write_transaction() as conn:
            if rows:
                conn.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            for u in sums:
                conn.execute(
                    "INSERT INTO judge_usage VALUES (?,?,?,?,?,?,?) ON CONFLICT(day, rule) DO UPDATE SET "
                    "judged = judged + excluded.judged, model_calls = model_calls + excluded.model_calls, "
                    "cache_hits = cache_hits + excluded.cache_hits, cost = cost + excluded.cost, "
                    "max_call_cost = max(max_call_cost, excluded.max_call_cost)",
                    (u.day, u.rule, u.judged, u.model_calls, u.cache_hits, u.cost, u.max_call_cost),
                )
        return len(rows)

    def scores_of(self, trace_id: str) -> list[Score]:
        """Every score of one trace (full id), oldest first."""
        rows = self._all("SELECT body FROM scores WHERE trace_id = ? ORDER BY created_us", (trace_id,))
        return [Score.model_validate_json(body) for (body,) in rows]

    def iter_scores(
        self,
        *,
        source: str | None = None,
        name: str | None = None,
        verdict: str | None = None,
        since: datetime | None = None,
    ) -> Iterator[Score]:
        """Scores matching every filter given (``since``: created at or after), oldest first."""
        clauses, params = _score_filter(source=source, name=name, verdict=verdict)
        if since is not None:
            clauses.append("created_us >= ?")
            params.append(to_us(since))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        for (body,) in self._stream(f"SELECT body FROM scores{where} ORDER BY created_us", params):
            yield Score.model_validate_json(body)

    def score_rows(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[ScoreRow]:
        """Pass and fail scores of the traces that started in [since, until), grouped by trace in the
        order the traces started; within a trace by source, name and span, oldest score first."""
        clauses = ["s.verdict IN ('pass', 'fail')"]
        params: list[Any] = []
        if since is not None:
            clauses.append("t.start_us >= ?")
            params.append(to_us(since))
        if until is not None:
            clauses.append("t.start_us < ?")
            params.append(to_us(until))
        sql = (
            "SELECT s.trace_id, t.start_us, t.code_commit, s.source, s.name, s.span_id, s.verdict, s.category, "
            "s.created_us FROM scores s JOIN traces t ON t.trace_id = s.trace_id "
            f"WHERE {' AND '.join(clauses)} "
            "ORDER BY t.start_us, s.trace_id, s.source, s.name, coalesce(s.span_id, ''), s.created_us"
        )
        for row in self._stream(sql, params, size=2000):
            yield ScoreRow(*row)

    def unjudged(
        self, rule: str, rule_key: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[TraceRow]:
        """The traces started in [since, until), oldest first, with no pass or fail verdict of ``rule`` as
        worded now (``rule_key``): those the rule has yet to judge (an unknown verdict is tried again).
        Indexed columns only, read in full before the caller writes (a list, not a stream)."""
        clauses = [
            "NOT EXISTS (SELECT 1 FROM scores s WHERE s.trace_id = t.trace_id AND s.source = 'judge' "
            "AND s.name = ? AND s.rule_key = ? AND s.verdict IN ('pass', 'fail'))"
        ]
        params: list[Any] = [rule, rule_key]
        if since is not None:
            clauses.append("t.start_us >= ?")
            params.append(to_us(since))
        if until is not None:
            clauses.append("t.start_us < ?")
            params.append(to_us(until))
        sql = (
            "SELECT t.trace_id, t.start_us, t.status, t.entry_point, t.code_commit, t.error_type "
            f"FROM traces t WHERE {' AND '.join(clauses)} ORDER BY t.start_us"
        )
        return [TraceRow(*row) for row in self._all(sql, params)]

    def judge_usage(self, *, day: str | None = None, rule: str | None = None) -> list[JudgeUsage]:
        """The judges' spending per day and rule (newest day first), filtered by ``day`` and ``rule``."""
        clauses, params = [], []
        if day is not None:
            clauses.append("day = ?")
            params.append(day)
        if rule is not None:
            clauses.append("rule = ?")
            params.append(rule)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._all(f"SELECT * FROM judge_usage{where} ORDER BY day DESC, rule", params)
        return [JudgeUsage(*row) for row in rows]

    def score_categories(self, name: str, *, source: str = "judge", limit: int = 12) -> list[tuple[str, int]]:
        """The failure categories given for ``name`` so far, most frequent first."""
        rows = self._all(
            "SELECT category, count(*) AS n FROM scores WHERE source = ? AND name = ? AND verdict = 'fail' "
            "AND category IS NOT NULL AND category != '' GROUP BY category ORDER BY n DESC, category LIMIT ?",
            (source, name, limit),
        )
        return [(c, n) for c, n in rows]


def _score_filter(
    *, source: str | None = None, name: str | None = None, verdict: str | None = None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("source", source), ("name", name), ("verdict", verdict)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


def score_clause(name: str | None, verdict: str | None) -> tuple[str, list[Any]]:
    """A trace filter: ``trace_id IN`` the traces with a score named ``name`` (any, when None) and of
    ``verdict`` (any, when None)."""
    clauses, params = _score_filter(name=name, verdict=verdict)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return f"trace_id IN (SELECT trace_id FROM scores{where})", params
