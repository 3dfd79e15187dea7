"""The reads every remote source shares (``RemoteSource``), checked against the local store on the same
traces, and how ``--source`` is parsed and chosen. A backend here is a list of traces in memory, so what
is checked is the shared logic, not a server."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracemend.analyze import analyze, list_signatures
from tracemend.analyze.select import select_finding
from tracemend.cli import build_app
from tracemend.errors import SourceError, StoreError
from tracemend.records import Trace
from tracemend.sandbox import sample_passing, select_traces
from tracemend.store import LocalSource, Store, open_source
from tracemend.store.remote import RemoteSource, RootQuery
from tracemend.store.source import parse_spec

from helpers.traffic import NEW, OLD, deploy_time, traffic

DEPLOY = deploy_time()


class ListSource(RemoteSource):
    """A backend holding traces in a list; counts every request, as a server would see them."""

    def __init__(self, traces: list[Trace]) -> None:
        super().__init__("memory://test/list", "list")
        self.traces = sorted(traces, key=lambda t: t.start_time)
        self.requests: list[str] = []

    def _match(self, t: Trace, q: RootQuery) -> bool:
        return (
            (q.since is None or t.start_time >= q.since)
            and (q.until is None or t.start_time < q.until)
            and (q.failing is None or (t.status != "ok") == q.failing)
            and (q.entry_point is None or t.entry_point == q.entry_point)
            and (q.revision is None or t.code_version.commit == q.revision)
        )

    def roots(self, query: RootQuery) -> Iterator[Trace]:
        self.requests.append("roots")
        rows = [t for t in self.traces if self._match(t, query)]
        for t in (reversed(rows) if query.newest_first else rows):
            yield t.model_copy(update={"spans": []})

    def counts(self, ranges: Sequence[tuple[datetime | None, datetime | None]], query: RootQuery) -> list[int]:
        self.requests.append("counts")
        return [sum(1 for t in self.traces if self._match(t, RootQuery(
            since=lo, until=hi, failing=query.failing, entry_point=query.entry_point, revision=query.revision)))
            for lo, hi in ranges]

    def fetch_trace(self, trace_id: str) -> Trace | None:
        return next((t for t in self.traces if t.trace_id == trace_id), None)

    def trace_ids(self, prefix: str, limit: int) -> list[str]:
        return [t.trace_id for t in self.traces if t.trace_id.startswith(prefix)][:limit]

    def scan_versions(self):
        rows: dict[str, list] = {}
        for t in self.traces:
            if t.code_version.commit:
                row = rows.setdefault(t.code_version.commit, [t.start_time, t.start_time, 0])
                row[1], row[2] = t.start_time, row[2] + 1
        return [(c, a, b, n) for c, (a, b, n) in rows.items()]


@pytest.fixture(scope="module")
def same(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, ListSource]:
    traces = list(traffic(deploy=DEPLOY, per_hour=40, regression_rate=0.12, baseline_hours=72, seed=9))
    store = Store(tmp_path_factory.mktemp("reads") / "t.db")
    store.add_traces(traces)
    return store, ListSource(traces)


def test_analysis_is_the_same_through_a_remote_source(same) -> None:
    store, remote = same
    now = DEPLOY + timedelta(hours=2)
    for kwargs in ({}, {"baseline": timedelta(hours=24)}, {"canary": False, "revision": NEW[:8]}):
        a = analyze(store, now=now, **kwargs)
        b = analyze(remote, now=now, **kwargs)
        assert b.to_json() == a.to_json()
    assert [s.signature for s in list_signatures(remote)] == [s.signature for s in list_signatures(store)]
    # Hourly traffic is counted by the server in one request, not by reading every trace.
    assert remote.requests.count("counts") < 10


def test_the_other_stages_read_the_same_traces(same) -> None:
    store, remote = same
    finding = select_finding(remote, signature=analyze(remote).flagged[0].signature.signature_id[:8])
    assert finding == select_finding(store, signature=finding.signature.signature_id[:8])
    tid = finding.example_trace_ids[0]
    assert remote.get_trace(tid[:10]) == store.get_trace(tid[:10])
    failing, _ = select_traces(remote, signature=finding.signature.signature_id, limit=3)
    assert [t.trace_id for t in failing] == [t.trace_id for t in select_traces(store, signature=finding.signature.signature_id, limit=3)[0]]
    assert [t.trace_id for t in sample_passing(remote, failing)] == [t.trace_id for t in sample_passing(store, failing)]
    assert remote.count(revision=OLD[:6]) == store.count(revision=OLD[:6])
    assert [t.trace_id for t in remote.iter_traces(status="error", newest_first=True, limit=4)] == [
        t.trace_id for t in store.iter_traces(status="error", newest_first=True, limit=4)
    ]


def test_an_ambiguous_prefix_and_a_bad_status_are_refused(same) -> None:
    _store, remote = same
    with pytest.raises(StoreError, match="ambiguous"):
        remote.get_trace(remote.traces[0].trace_id[:1])  # thousands of traces share one hex digit
    assert remote.get_trace("f" * 31 + "e") is None
    with pytest.raises(StoreError, match="unknown trace status"):
        remote.count(status="broken")


def test_traces_without_an_entry_point_are_said_to_lack_it(same) -> None:
    _store, _remote = same
    foreign = [t.model_copy(update={"entry_point": ""}) for t in _remote.traces[:50]]
    source = ListSource(foreign)
    list(source.iter_failures())
    assert source.notes == [
        "traces from memory://test/list: no entry point recorded: rerun and lock need `@tracemend.track` "
        "on the entry function"
    ]
    assert sample_passing(source, [foreign[0]]) == []  # nothing to rerun without an entry point


def test_source_urls_parse_and_refuse_clearly() -> None:
    assert parse_spec("phoenix://127.0.0.1:6006/support-bot") == ("phoenix", "http://127.0.0.1:6006", "support-bot", {})
    assert parse_spec("opik+https://opik.example.com/api/my%20bot?workspace=team") == (
        "opik", "https://opik.example.com/api", "my bot", {"workspace": "team"})
    assert parse_spec("opik:///support") == ("opik", "", "support", {})
    with pytest.raises(SourceError, match="unknown trace source"):
        parse_spec("langfuse://x/y")
    with pytest.raises(SourceError, match="names no project"):
        parse_spec("phoenix://127.0.0.1:6006/")


def test_the_local_store_is_the_default_and_db_means_local(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "t.db"
    Store(db).close()
    monkeypatch.setenv("TRACEMEND_SOURCE", "phoenix://127.0.0.1:9/never")
    with open_source(None, db=db) as source:  # an explicit store wins over the configured source
        assert isinstance(source, LocalSource) and source.location == str(db)
    runner = CliRunner()
    result = runner.invoke(build_app(), ["signatures"], env={"TRACEMEND_SOURCE": "phoenix://127.0.0.1:9/never"})
    assert result.exit_code == 2 and "cannot reach Phoenix at http://127.0.0.1:9" in result.output
    result = runner.invoke(build_app(), ["signatures", "--db", str(db)])
    assert result.exit_code == 0 and "No failing traces" in result.output
    result = runner.invoke(build_app(), ["analyze", "--source", "zipkin://x/y"])
    assert result.exit_code == 2 and "unknown trace source 'zipkin://x/y'" in result.output
