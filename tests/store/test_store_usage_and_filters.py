"""Token and cost totals and the JSON-body filters (session, user, tags, metadata) on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracemend.records import Span, Trace
from tracemend.store import Store

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _trace(n: int, entry: str, spans: list[dict], **fields) -> Trace:
    trace_id = f"{n:032x}"
    made = [
        Span(
            span_id=f"{n:08x}{i:08x}",
            trace_id=trace_id,
            parent_id=None if i == 0 else f"{n:08x}{0:08x}",
            name=f"s{i}",
            start_time=T0 + timedelta(seconds=n),
            end_time=T0 + timedelta(seconds=n, microseconds=400),
            attributes=attrs,
        )
        for i, attrs in enumerate([{}, *spans])
    ]
    return Trace(
        trace_id=trace_id,
        entry_point=entry,
        name=entry.rsplit(":", 1)[-1],
        start_time=T0 + timedelta(seconds=n),
        end_time=T0 + timedelta(seconds=n, milliseconds=1),
        spans=made,
        **fields,
    )


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "t.db") as s:
        s.add_traces(
            [
                _trace(1, "app:chat", [{"model": "m-a", "usage": {"prompt_tokens": 10, "completion_tokens": 2}, "cost": 0.5}],
                       session_id="s1", user_id="u1", tags=["web"], metadata={"tier": "gold", "n": 3}),
                # Anthropic-style usage keys and an explicit total; no cost recorded.
                _trace(2, "app:chat", [{"model": "m-b", "usage": {"input_tokens": 7, "output_tokens": 1, "total_tokens": 9}}],
                       session_id="s1", user_id="u2", tags=["web", "vip"], metadata={"tier": "free", "a.b": "dot"}),
                # A model span without usage counts as a call with no tokens.
                _trace(3, "app:summarize", [{"model": "m-a", "cost": 0.25}, {"model": "m-a"}], tags=["batch"]),
                _trace(4, "app:idle", []),
            ]
        )
        yield s


def test_totals_by_model_and_by_entry_point(store: Store) -> None:
    by_model = {r.key: r for r in store.usage_totals("model")}
    assert set(by_model) == {"m-a", "m-b"}
    a, b = by_model["m-a"], by_model["m-b"]
    assert (a.calls, a.traces, a.prompt_tokens, a.completion_tokens, a.total_tokens, a.cost) == (3, 2, 10, 2, 12, 0.75)
    assert (b.calls, b.prompt_tokens, b.completion_tokens, b.total_tokens, b.cost) == (1, 7, 1, 9, None)

    by_entry = {r.key: r for r in store.usage_totals("entry_point")}
    assert (by_entry["app:chat"].traces, by_entry["app:chat"].calls, by_entry["app:chat"].total_tokens) == (2, 2, 21)
    assert (by_entry["app:idle"].traces, by_entry["app:idle"].calls, by_entry["app:idle"].cost) == (1, 0, None)
    assert [r.key for r in store.usage_totals("entry_point")][0] == "app:chat"  # costliest first

    only_s1 = {r.key: r for r in store.usage_totals("model", session="s1")}
    assert only_s1["m-a"].calls == 1 and only_s1["m-b"].calls == 1

    per_trace = store.usage_by_trace([f"{n:032x}" for n in (1, 3, 4)])
    assert per_trace[f"{1:032x}"].total_tokens == 12 and per_trace[f"{3:032x}"].cost == 0.25
    assert f"{4:032x}" not in per_trace


def _ids(store: Store, **filters) -> set[int]:
    return {int(t.trace_id, 16) for t in store.iter_traces(**filters)}


def test_filters_on_the_json_body(store: Store) -> None:
    assert _ids(store, session="s1") == {1, 2}
    assert _ids(store, user="u2") == {2}
    assert _ids(store, tags=["web"]) == {1, 2} and _ids(store, tags=["web", "vip"]) == {2}
    assert _ids(store, meta={"tier": "gold"}) == {1}
    assert _ids(store, meta={"n": "3"}) == {1}  # the number 3
    assert _ids(store, meta={"a.b": "dot"}) == {2}  # a dotted key is one key, not a path
    assert _ids(store, meta={"tier": "gold", "n": "4"}) == set()
    assert store.count(session="s1", entry_point="app:chat") == 2
    with pytest.raises(ValueError):
        store.count(meta={'x"y': "1"})
