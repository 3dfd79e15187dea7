"""Joining the app's OpenTelemetry trace: a tracked call is OTel's current parent while it runs, so spans
that auto-instrumented clients start inside it nest under the tracked span once tracemend's trace is
exported. Real parts: the OTel SDK with an in-memory exporter, opentelemetry-instrumentation-httpx, an
HTTP server on loopback, the recorder writing to a SQLite store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracemend
from tracemend.export.otel import OTEL_PARENT_KEY, OTEL_TRACE_KEY, export_traces
from tracemend.store import Store


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hello"
    server.shutdown()
    server.server_close()


@pytest.fixture
def otel() -> Iterator[tuple[otel_trace.Tracer, InMemorySpanExporter]]:
    """An app's OTel setup: a provider exporting to memory, and httpx instrumented."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        yield provider.get_tracer("app"), memory
    finally:
        HTTPXClientInstrumentor().uninstrument()


@tracemend.track(kind="tool")
def fetch(url: str) -> str:
    return httpx.get(url).text


@tracemend.track(kind="agent")
def handle(url: str) -> str:
    return fetch(url)


def _stored(path: Path) -> list:
    tracemend.flush()
    with Store(path) as store:
        return list(store.iter_traces(with_spans=True))


def _by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def test_an_instrumented_httpx_request_is_a_child_of_the_tracked_span(store_path: Path, otel, url) -> None:
    tracer, memory = otel
    with tracer.start_as_current_span("request") as app_span:
        assert handle(url) == "hello"
        assert otel_trace.get_current_span() is app_span  # the app's span is current again after the call
    (trace,) = _stored(store_path)
    app = app_span.get_span_context()
    assert trace.metadata[OTEL_TRACE_KEY] == f"{app.trace_id:032x}"  # hex, as OTel prints ids
    assert trace.metadata[OTEL_PARENT_KEY] == f"{app.span_id:016x}"

    export_traces([trace], memory)  # tracemend's spans, exported next to the app's and httpx's
    spans = _by_name(memory.get_finished_spans())
    (http_name,) = set(spans) - {"request", "handle", "fetch"}
    http = spans[http_name]
    assert http.attributes.get("http.request.method", http.attributes.get("http.method")) == "GET"
    assert {s.context.trace_id for s in spans.values()} == {app.trace_id}  # one trace in the backend
    assert http.parent.span_id == spans["fetch"].context.span_id  # the request nests under the tool call
    assert spans["fetch"].parent.span_id == spans["handle"].context.span_id
    assert spans["handle"].parent.span_id == app.span_id
    assert http.parent.span_id == int(trace.spans[[s.name for s in trace.spans].index("fetch")].span_id, 16)


def test_without_an_active_otel_span_nothing_is_joined(store_path: Path, otel, url) -> None:
    _, memory = otel
    assert handle(url) == "hello"
    assert otel_trace.get_current_span() is otel_trace.INVALID_SPAN
    (trace,) = _stored(store_path)
    assert OTEL_TRACE_KEY not in trace.metadata
    (http,) = memory.get_finished_spans()
    assert http.parent is None  # the app's own root, as without tracemend


def test_generators_and_tasks_are_current_only_while_they_run(store_path: Path, otel) -> None:
    tracer, _ = otel
    seen: dict[str, int] = {}

    @tracemend.track
    def numbers():
        for n in range(2):
            seen[f"gen{n}"] = otel_trace.get_current_span().get_span_context().span_id
            yield n

    @tracemend.track
    async def task(name: str) -> None:
        await asyncio.sleep(0)
        seen[name] = otel_trace.get_current_span().get_span_context().span_id

    @tracemend.track
    async def fan_out() -> None:
        await asyncio.gather(task("a"), task("b"))

    with tracer.start_as_current_span("request") as app_span:
        app = app_span.get_span_context().span_id
        for _ in numbers():
            assert otel_trace.get_current_span() is app_span  # between steps the caller's span is current
        asyncio.run(fan_out())
    traces = _stored(store_path)
    ids = {s.name: int(s.span_id, 16) for t in traces for s in t.spans if s.name != "task"}
    tasks = {int(s.span_id, 16) for t in traces for s in t.spans if s.name == "task"}
    assert seen["gen0"] == seen["gen1"] == ids["numbers"] != app
    assert {seen["a"], seen["b"]} == tasks and len(tasks) == 2
    assert otel_trace.get_current_span() is otel_trace.INVALID_SPAN
