"""Opik export through the SDK (REST batches captured via the SDK's public httpx client hook) and
through Opik's OTLP endpoint (a loopback HTTP server captures the request), and cases as a test suite."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from tracemend.export.opik import (
    OPIK_SPAN_TYPE,
    export_store_to_opik,
    opik_id,
    opik_otlp_exporter,
    opik_project,
    opik_target,
)
from tracemend.records import Check, Provenance, RegressionCase

from helpers import opik_fake

# Importing opik takes seconds (and its test suites import litellm).
pytestmark = pytest.mark.slow


@pytest.fixture
def fake_opik():
    opik_fake.install()
    fake = opik_fake.FakeOpik()
    opik_fake.SWITCH.current = fake
    yield fake
    opik_fake.SWITCH.current = None


def test_sdk_export_sends_traces_spans_metadata_and_errors(recorded, fake_opik) -> None:
    traces = {t.trace_id: t for t in recorded.iter_traces(with_spans=True)}
    result = export_store_to_opik(recorded, project="tm-export")
    assert (result.traces, result.spans) == (2, 5) and result.ok  # acknowledged by the backend
    assert result.batches >= 2 and result.refused == 0

    sent = fake_opik.latest("traces")
    assert set(sent) == {opik_id(t.trace_id, t.start_time) for t in traces.values()}
    for opik_trace_id, payload in sent.items():
        assert uuid.UUID(opik_trace_id).version == 7
        assert payload["project_name"] == "tm-export"
        meta = payload["metadata"]["tracemend"]
        source = traces[meta["trace_id"]]
        assert meta["entry_point"] == "helpers.export_agent:answer"
        assert meta["config"] == {"model": "gpt-4o-mini", "temperature": 0.0}
        assert meta["config_hash"] == source.config_hash and meta["config_hash"]
        assert meta["code_version"] == source.code_version.model_dump()
        assert payload["end_time"] and payload["input"] == source.input
    failed = next(p for p in sent.values() if p["metadata"]["tracemend"]["status"] == "error")
    assert failed["error_info"]["exception_type"] == "helpers.export_agent.ToolFailure"
    assert "no index for 'boom'" in failed["error_info"]["message"]
    assert 'export_agent.py", line' in failed["error_info"]["traceback"]
    ok = next(p for p in sent.values() if p["metadata"]["tracemend"]["status"] == "ok")
    assert ok["output"] == {"output": "answer to refunds using doc about refunds"}
    assert "error_info" not in ok

    spans = fake_opik.latest("spans")
    assert len(spans) == 5
    by_name: dict[str, list[dict]] = {}
    for payload in spans.values():
        assert uuid.UUID(payload["id"]).version == 7
        assert payload["trace_id"] in sent
        by_name.setdefault(payload["name"], []).append(payload)
    assert {p["type"] for p in by_name["answer"]} == {OPIK_SPAN_TYPE["agent"]}
    assert {p["type"] for p in by_name["search"]} == {"tool"}
    llm = by_name["complete"][0]
    assert llm["type"] == "llm" and llm["model"] == "gpt-4o-mini"
    assert llm["usage"]["prompt_tokens"] == 12 and llm["usage"]["completion_tokens"] == 5
    assert llm["total_estimated_cost"] == pytest.approx(0.0002)
    roots = {p["id"] for p in by_name["answer"]}
    assert all(p["parent_span_id"] in roots for p in by_name["search"] + by_name["complete"])
    assert all("parent_span_id" not in p for p in by_name["answer"])
    failing_tool = next(p for p in by_name["search"] if "error_info" in p)
    assert failing_tool["error_info"]["exception_type"] == "helpers.export_agent.ToolFailure"

    # Exporting again sends the same ids: Opik updates the traces instead of duplicating them.
    before = set(sent)
    export_store_to_opik(recorded, project="tm-export")
    assert set(fake_opik.latest("traces")) == before


class _Capture(BaseHTTPRequestHandler):
    captured: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).captured.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_otlp_export_to_opik_endpoint_sends_opik_headers(recorded) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tracemend.export.otel import export_traces

    _Capture.captured = []
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = opik_target(
            url=f"http://127.0.0.1:{server.server_port}/api",
            project="tm-otlp",
            workspace="team-a",
            api_key="key-123",
        )
        exporter = opik_otlp_exporter(target)
        result = export_traces(recorded.iter_traces(with_spans=True), exporter)
        exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok and result.spans == 5
    assert len(_Capture.captured) == 1
    path, headers, body = _Capture.captured[0]
    assert path == "/api/v1/private/otel/v1/traces"
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["projectname"] == "tm-otlp"
    assert lower["comet-workspace"] == "team-a"
    assert lower["authorization"] == "key-123"
    assert lower["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    names = sorted(s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
    assert names == ["answer", "answer", "complete", "search", "search"]


def _case(name: str, question: str) -> RegressionCase:
    return RegressionCase(
        name=name,
        entry_point="helpers.export_agent:answer",
        input={"question": question},
        config={"model": "gpt-4o-mini"},
        assertions=["The answer names the document it used", "The answer is polite"],
        checks=[Check(kind="not_raises", value="ToolFailure")],
        provenance=Provenance(source_trace_id="ab" * 16, fixed_in_commit="c0ffee"),
    )


def test_locked_cases_become_opik_test_suite_items(tmp_path: Path, fake_opik) -> None:
    from tracemend.export.cases import export_cases, item_id, load_cases

    folder = tmp_path / "tests" / "regressions"
    folder.mkdir(parents=True)
    (folder / "boom.yaml").write_text(
        yaml.safe_dump(_case("boom query fails", "boom").model_dump(mode="json"))
    )
    (folder / "more.yml").write_text(
        yaml.safe_dump({"cases": [_case("refund question", "refunds").model_dump(mode="json")]})
    )
    cases = load_cases(folder)
    assert [c.name for _, c in cases] == ["boom query fails", "refund question"]
    result = export_cases(cases, suite="tm-suite", project="tm-export")
    assert result.items == 2 and result.kind == "test_suite"

    created = [
        r for r in fake_opik.requests if r.method == "POST" and r.path.endswith("/v1/private/datasets")
    ]
    assert created and created[0].body["name"] == "tm-suite" and created[0].body["type"] == "evaluation_suite"
    puts = [
        r for r in fake_opik.requests if r.method == "PUT" and r.path.endswith("/v1/private/datasets/items")
    ]
    items = [item for r in puts for item in r.body["items"]]
    assert {i["id"] for i in items} == {item_id(c) for _, c in cases}
    boom = next(i for i in items if i["data"]["case"] == "boom query fails")
    assert boom["data"]["input"] == {"question": "boom"}
    assert boom["data"]["entry_point"] == "helpers.export_agent:answer"
    assert boom["data"]["checks"] == [{"kind": "not_raises", "value": "ToolFailure"}]
    assert boom["data"]["provenance"]["fixed_in_commit"] == "c0ffee"
    import json

    text = json.dumps(boom)
    assert "The answer names the document it used" in text and "The answer is polite" in text


def test_bad_case_file_names_the_file_and_the_reason(tmp_path: Path) -> None:
    from tracemend.export.cases import CaseFileError, load_cases

    (tmp_path / "broken.yaml").write_text("name: x\nentry_point: [unclosed\n")
    with pytest.raises(CaseFileError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_cases(tmp_path)
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump({"name": "x"}))
    with pytest.raises(CaseFileError, match=r"broken\.yaml: case 1: entry_point: Field required"):
        load_cases(tmp_path)


def test_sdk_export_builds_the_same_trees_in_opiks_local_recording(recorded, fake_opik) -> None:
    """opik's own emulator (record_traces_locally) assembles the exported traces into the expected trees."""
    import opik

    from tracemend.export.opik import export_to_opik
    from tracemend.export.opik_delivery import install

    traces = list(recorded.iter_traces(with_spans=True))
    install()  # a client passed in is verified when it was created after the delivery hook
    client = opik.Opik(project_name="tm-local")
    try:
        with opik.record_traces_locally(client=client) as storage:
            result = export_to_opik(traces, client=client)
            trees = {t.id: t for t in storage.trace_trees}
    finally:
        client.end()
    assert set(trees) == {opik_id(t.trace_id, t.start_time) for t in traces}
    assert result.ok and (result.traces, result.spans) == (2, 5)
    for trace in traces:
        tree = trees[opik_id(trace.trace_id, trace.start_time)]
        assert tree.name == "answer" and tree.project_name == opik_project()  # default: tracemend's project
        assert tree.metadata["tracemend"]["trace_id"] == trace.trace_id
        (root,) = tree.spans  # one root span, the agent
        assert root.type == "general" and root.name == "answer"
        children = {s.name: s for s in root.spans}
        assert children["search"].type == "tool"
        if trace.status == "error":
            assert tree.error_info["exception_type"] == "helpers.export_agent.ToolFailure"
            assert children["search"].error_info["exception_type"] == "helpers.export_agent.ToolFailure"
            assert "complete" not in children
        else:
            assert tree.error_info is None
            assert children["complete"].type == "llm" and children["complete"].model == "gpt-4o-mini"
            assert children["complete"].usage["prompt_tokens"] == 12


def test_refused_writes_are_counted_as_not_delivered(recorded, fake_opik) -> None:
    fake_opik.refuse["/v1/private/spans/batch"] = 400
    result = export_store_to_opik(recorded, project="tm-export")
    assert not result.ok
    assert (result.traces, result.failed_traces) == (2, 0)
    assert (result.spans, result.failed_spans) == (0, 5)
    assert result.refused >= 1
    assert any("400" in e and "/v1/private/spans/batch" in e for e in result.errors)


def test_an_unreachable_backend_delivers_nothing_and_sends_nothing(recorded) -> None:
    opik_fake.install()
    opik_fake.SWITCH.current = None  # every request: connection refused
    result = export_store_to_opik(recorded, project="tm-export")
    assert not result.ok
    assert (result.traces, result.spans, result.failed_traces, result.failed_spans) == (0, 0, 2, 5)
    assert result.errors and result.errors[0].startswith("cannot reach Opik at ")


def test_sdk_and_otlp_paths_use_one_project_name(recorded, fake_opik, monkeypatch) -> None:
    monkeypatch.delenv("OPIK_PROJECT_NAME", raising=False)
    monkeypatch.setenv("TRACEMEND_PROJECT", "tm-one")
    result = export_store_to_opik(recorded)
    assert result.project == opik_target().project == "tm-one"
    assert {p["project_name"] for p in fake_opik.latest("traces").values()} == {"tm-one"}
    assert {p["project_name"] for p in fake_opik.latest("spans").values()} == {"tm-one"}
    monkeypatch.setenv("OPIK_PROJECT_NAME", "from-opik")
    assert opik_project() == opik_target().project == "from-opik"
    assert opik_project("given") == opik_target(project="given").project == "given"
