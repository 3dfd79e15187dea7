"""Round trip through a real Arize Phoenix server: tracemend traces out over OTLP/HTTP, back from its REST API.

Phoenix runs from its own cached virtualenv (see helpers/phoenix.py), bound to 127.0.0.1 on free ports,
with telemetry and external resources off and a temporary working directory; it is stopped afterwards.
The figures (install, server start, export, query) are printed for the record.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from helpers.phoenix import PhoenixServer, start_phoenix

# One Phoenix server (~450 MB) per run: every test of this module goes to the same xdist worker.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("phoenix")]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory):
    server = start_phoenix(tmp_path_factory.mktemp("phoenix"))
    install = "cached venv" if server.install_seconds is None else f"{server.install_seconds:.1f} s"
    print(f"\n[phoenix] install: {install}; server start: {server.start_seconds:.2f} s; {server.url}")
    yield server
    server.stop()
    assert server.process.poll() is not None


def _by_name(spans: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for span in spans:
        out.setdefault(span["name"], []).append(span)
    return out


def test_tracemend_traces_round_trip_through_phoenix(phoenix: PhoenixServer, recorded, monkeypatch) -> None:
    from tracemend.export import otel

    project = "tracemend-roundtrip"
    for trace in recorded.iter_traces():
        assert trace.project  # recorded by the real writer
    # The stored traces go to a project of their own, so this test reads back exactly what it sent.
    traces = list(recorded.iter_traces(with_spans=True))
    for trace in traces:
        trace.project = project
    assert len(traces) == 2 and sum(len(t.spans) for t in traces) == 5

    # Configured the standard way: the SDK exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", phoenix.otlp_traces_url)
    exporter = otel.make_exporter()
    started = time.perf_counter()
    result = otel.export_traces(traces, exporter)
    export_s = time.perf_counter() - started
    exporter.shutdown()
    assert result.ok and result.spans == 5 and result.traces == 2, result

    started = time.perf_counter()
    spans = phoenix.wait_for_spans(project, 5)
    query_s = time.perf_counter() - started
    print(f"[phoenix] export: {result.spans} spans / {result.traces} traces in {export_s * 1000:.1f} ms")
    print(f"[phoenix] query back (incl. Phoenix's ingest delay): {query_s * 1000:.1f} ms")
    assert len(spans) == 5

    by_id = {s["context"]["span_id"]: s for s in spans}
    for trace in traces:
        for span in trace.spans:
            got = by_id[span.span_id]  # span ids preserved
            assert got["context"]["trace_id"] == trace.trace_id  # trace ids preserved
            assert got["parent_id"] == span.parent_id  # parent links preserved
            assert got["span_kind"] == otel.OPENINFERENCE_KIND[span.kind]
            assert got["name"] == span.name
            assert datetime.fromisoformat(got["start_time"]) == span.start_time  # times preserved
            assert datetime.fromisoformat(got["end_time"]) == span.end_time
    named = _by_name(spans)
    assert {s["span_kind"] for s in named["answer"]} == {"AGENT"}
    assert {s["span_kind"] for s in named["search"]} == {"TOOL"}
    llm = named["complete"][0]
    assert llm["span_kind"] == "LLM"
    attrs = llm["attributes"]
    assert attrs["llm.model_name"] == attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert (attrs["llm.token_count.prompt"], attrs["llm.token_count.completion"]) == (12, 5)
    assert attrs["llm.token_count.total"] == 17 and attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["output.value"] == "answer to refunds using doc about refunds"
    assert json.loads(attrs["input.value"]) == {"prompt": "refunds using doc about refunds"}
    assert attrs["input.mime_type"] == "application/json"

    ok_root = next(s for s in named["answer"] if s["status_code"] == "OK")
    failed_root = next(s for s in named["answer"] if s["status_code"] == "ERROR")
    assert json.loads(ok_root["attributes"]["input.value"]) == {"question": "refunds"}
    assert ok_root["attributes"]["output.value"] == "answer to refunds using doc about refunds"
    assert ok_root["attributes"]["tracemend.entry_point"] == "helpers.export_agent:answer"
    assert ok_root["attributes"]["tracemend.status"] == "ok"
    assert failed_root["attributes"]["tracemend.status"] == "error"
    assert "ToolFailure" in failed_root["status_message"]
    failed_tool = next(s for s in named["search"] if s["status_code"] == "ERROR")
    events = [e for e in failed_tool["events"] if e["name"] == "exception"]
    assert events, failed_tool
    event = events[0]["attributes"]
    assert event["exception.type"].endswith("ToolFailure")
    assert "no index for 'boom'" in event["exception.message"]
    assert "export_agent.py" in event["exception.stacktrace"]


def test_spans_join_the_apps_active_otel_trace_in_phoenix(phoenix: PhoenixServer, store_path: Path) -> None:
    """An app that uses OpenTelemetry itself: tracemend's spans show up inside the app's own trace."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import tracemend
    from tracemend.export import otel
    from tracemend.store import Store

    from helpers.export_agent import answer

    project = "tracemend-joined"
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=phoenix.otlp_traces_url)))
    tracer = provider.get_tracer("the-app")
    with tracer.start_as_current_span("handle-request") as app_span:
        answer("joined")
    provider.shutdown()
    tracemend.flush()
    app_ctx = app_span.get_span_context()

    with Store(store_path) as store:
        traces = list(store.iter_traces(with_spans=True))
    assert len(traces) == 1
    for trace in traces:
        trace.project = project
    exporter = otel.make_exporter(phoenix.url)  # a bare base URL gets /v1/traces
    result = otel.export_traces(traces, exporter)
    exporter.shutdown()
    assert result.ok and result.spans == 3

    spans = phoenix.wait_for_spans(project, 4)
    assert {s["context"]["trace_id"] for s in spans} == {f"{app_ctx.trace_id:032x}"}
    named = _by_name(spans)
    assert named["handle-request"][0]["parent_id"] is None
    assert named["answer"][0]["parent_id"] == f"{app_ctx.span_id:016x}"
    assert named["answer"][0]["attributes"]["tracemend.trace_id"] == traces[0].trace_id
    assert named["search"][0]["parent_id"] == named["answer"][0]["context"]["span_id"]


def test_opik_otlp_exporter_delivers_to_a_real_otlp_server(phoenix: PhoenixServer, recorded) -> None:
    """The exporter aimed at Opik (its headers on) speaks plain OTLP/HTTP: Phoenix takes the same request."""
    from tracemend.export.opik import opik_otlp_exporter, opik_target
    from tracemend.export.otel import export_traces

    project = "tracemend-opik-otlp"
    traces = list(recorded.iter_traces(with_spans=True))
    for trace in traces:
        trace.project = project
    target = opik_target(url="http://127.0.0.1:9/api", project=project, workspace="team-a", api_key="key-123")
    exporter = opik_otlp_exporter(target, endpoint=phoenix.otlp_traces_url)
    result = export_traces(traces, exporter)
    exporter.shutdown()
    assert result.ok and result.spans == 5
    spans = phoenix.wait_for_spans(project, 5)
    errors = [s for s in spans if s["status_code"] == "ERROR"]
    assert {s["name"] for s in errors} == {"answer", "search"}
