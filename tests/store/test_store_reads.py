"""The store's read API: filters, hourly counts, streaming, id prefixes, idempotent imports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tracemend.store import Store, StoreError

from helpers.spine import T0, synthetic


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "read.db")
    assert store.add_traces(synthetic(40)) == 40
    yield store
    store.close()


def test_read_filters(filled: Store) -> None:
    store = filled
    all_ = list(store.iter_traces())
    assert [t.input["i"] for t in all_] == list(range(40))
    hour = T0 + timedelta(hours=1)
    in_hour = list(store.iter_traces(since=hour, until=hour + timedelta(hours=1)))
    assert [t.input["i"] for t in in_hour] == [
        i for i in range(40) if hour <= T0 + timedelta(minutes=7 * i) < hour + timedelta(hours=1)
    ]
    assert {t.status for t in store.iter_traces(status="error")} == {"error"}
    assert store.count(status=["error", "failed_assertion"]) == 20
    assert store.count(entry_point="app.agent:other") == 20
    assert store.count(revision="aaaa") == 20 and store.count(revision="bbbb2222") == 20
    assert store.count(revision="cccc") == 0
    assert store.count(status="error", entry_point="app.agent:run", revision="aaaa") == len(
        [i for i in range(20) if i % 4 == 2 and i % 2 == 0]
    )
    newest = list(store.iter_traces(limit=3, newest_first=True))
    assert [t.input["i"] for t in newest] == [39, 38, 37]
    rows = list(store.iter_rows(status="error"))
    assert [r.error_type for r in rows] == ["KeyError"] * 10 and rows[0].entry_point == "app.agent:run"
    with_spans = next(store.iter_traces(with_spans=True))
    assert [s.name for s in with_spans.spans] == ["run", "tool"]
    assert store.status_counts() == {"ok": 20, "error": 10, "failed_assertion": 10}
    versions = store.code_versions()
    assert [(c[:8], n) for c, _, _, n in versions] == [("aaaa1111", 20), ("bbbb2222", 20)]
    assert store.time_range() == (T0, T0 + timedelta(minutes=7 * 39))


def test_count_by_hour(filled: Store) -> None:
    counts = filled.count_by_hour()
    assert sum(n for _, n in counts) == 40
    expected: dict[datetime, int] = {}
    for i in range(40):
        at = T0 + timedelta(minutes=7 * i)
        h = at.replace(minute=0, second=0, microsecond=0)
        expected[h] = expected.get(h, 0) + 1
    assert counts == sorted(expected.items())
    assert all(h.tzinfo is not None for h, _ in counts)
    failing = filled.count_by_hour(status="error")
    assert sum(n for _, n in failing) == 10


def test_streaming_is_lazy_and_survives_concurrent_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "stream.db")
    store.add_traces(synthetic(1200))
    stream = store.iter_traces()
    first = next(stream)
    assert first.input["i"] == 0
    # A writer in between reads does not break or corrupt the stream.
    other = Store(tmp_path / "stream.db")
    other.add_traces(synthetic(10, start=T0 + timedelta(days=30)))
    rest = list(stream)
    assert [t.input["i"] for t in rest[:1199]] == list(range(1, 1200))
    other.close()
    store.close()


def test_get_trace_by_prefix(filled: Store) -> None:
    full = filled.get_trace("0003" + "ab" * 14)
    assert full is not None and full.input == {"i": 3} and len(full.spans) == 2
    assert filled.get_trace("0003ab").trace_id == full.trace_id
    assert filled.get_trace("  0003AB ").trace_id == full.trace_id
    assert filled.get_trace("ffff") is None
    with pytest.raises(StoreError, match="ambiguous"):
        filled.get_trace("000")
    assert filled.get_trace(full.trace_id, with_spans=False).spans == []


def test_add_traces_is_idempotent(filled: Store) -> None:
    filled.add_traces(synthetic(5))
    assert filled.count() == 40 and filled.span_count() == 80
