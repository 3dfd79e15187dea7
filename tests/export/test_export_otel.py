"""Stored traces as OTel spans: ids, parents, times, OpenInference/GenAI attributes, errors; joining the
app's active OTel span; the exporter's batching and failure accounting. No server needed here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from tracemend.capture.opik_tap import parse_error
from tracemend.export import otel
from tracemend.records import ErrorInfo, Frame


class Collecting(SpanExporter):
    def __init__(self, fail_every: int = 0) -> None:
        self.batches: list[list[ReadableSpan]] = []
        self.fail_every = fail_every

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        if self.fail_every and len(self.batches) % self.fail_every == 0:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def test_conversion_keeps_ids_parents_times_and_attributes(recorded) -> None:
    traces = list(recorded.iter_traces(with_spans=True))
    for trace in traces:
        converted = {f"{s.context.span_id:016x}": s for s in otel.to_otel_spans(trace)}
        assert set(converted) == {s.span_id for s in trace.spans}
        for span in trace.spans:
            got = converted[span.span_id]
            assert f"{got.context.trace_id:032x}" == trace.trace_id
            assert (f"{got.parent.span_id:016x}" if got.parent else None) == span.parent_id
            assert got.start_time == int(span.start_time.timestamp() * 1_000_000) * 1000
            assert got.attributes["openinference.span.kind"] == otel.OPENINFERENCE_KIND[span.kind]
        root = converted[trace.root_span().span_id]
        assert root.attributes["tracemend.entry_point"] == "helpers.export_agent:answer"
        assert json.loads(root.attributes["metadata"])["config"] == {
            "model": "gpt-4o-mini",
            "temperature": 0.0,
        }
        assert root.resource.attributes["openinference.project.name"] == trace.project
    failed = next(t for t in traces if t.status == "error")
    spans = otel.to_otel_spans(failed)
    errored = [s for s in spans if s.status.status_code == StatusCode.ERROR]
    assert {s.name for s in errored} == {"answer", "search"}
    event = next(e for e in errored[0].events if e.name == "exception")
    assert event.attributes["exception.type"] == "helpers.export_agent.ToolFailure"
    assert "Traceback (most recent call last):" in event.attributes["exception.stacktrace"]


def test_no_active_otel_span_leaves_the_trace_alone(recorded) -> None:
    for trace in recorded.iter_traces():
        assert otel.OTEL_TRACE_KEY not in trace.metadata


def test_root_span_joins_the_apps_active_otel_span(store_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    import tracemend
    from tracemend.store import Store

    from helpers.export_agent import answer

    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("request") as app_span:
        answer("inside")
    answer("outside")
    tracemend.flush()
    ctx = app_span.get_span_context()
    with Store(store_path) as store:
        traces = {t.input["question"]: t for t in store.iter_traces(with_spans=True)}
    inside = traces["inside"]
    assert inside.metadata[otel.OTEL_TRACE_KEY] == f"{ctx.trace_id:032x}"  # hex, as OTel prints ids
    assert inside.metadata[otel.OTEL_PARENT_KEY] == f"{ctx.span_id:016x}"
    spans = {s.name: s for s in otel.to_otel_spans(inside)}
    assert all(s.context.trace_id == ctx.trace_id for s in spans.values())
    assert spans["answer"].parent.span_id == ctx.span_id and spans["answer"].parent.is_remote
    assert spans["search"].parent.span_id == spans["answer"].context.span_id
    assert otel.OTEL_TRACE_KEY not in traces["outside"].metadata  # the app span had ended


def test_batches_hold_whole_traces_and_failures_are_counted(recorded) -> None:
    exporter = Collecting(fail_every=2)
    traces = list(recorded.iter_traces(with_spans=True)) * 3  # 6 traces, 15 spans
    result = otel.export_traces(traces, exporter, batch_spans=4)
    sizes = [len(b) for b in exporter.batches]
    assert sum(sizes) == 15 and all(n in (5, 6) for n in sizes[:-1])  # never a trace split across batches
    assert result.traces + result.failed_traces == 6 and result.batches == len(sizes)
    assert result.failed_traces > 0 and result.traces > 0
    assert result.failed_batches == len(sizes) // 2 and not result.ok
    assert result.spans + result.failed_spans == 15


def test_endpoint_normalisation_and_bad_endpoints() -> None:
    assert otel.traces_endpoint("http://127.0.0.1:6006") == "http://127.0.0.1:6006/v1/traces"
    assert otel.traces_endpoint("http://h:4318/custom/path") == "http://h:4318/custom/path"
    with pytest.raises(ValueError, match="http"):
        otel.traces_endpoint("127.0.0.1:4318")


def test_opik_traceback_becomes_a_chained_error_with_in_app_frames(tmp_path: Path) -> None:
    from tracemend.capture.errorinfo import FrameClassifier

    app = tmp_path / "app.py"
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{app}", line 3, in fetch\n'
        "    raise KeyError('k')\n"
        "KeyError: 'k'\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/site-packages/opik/decorator/base_track_decorator.py", line 349, in wrapper\n'
        f'  File "{app}", line 9, in handle\n'
        "    raise app.Failed('lookup failed') from exc\n"
        "app.Failed: lookup failed\n"
    )
    error = parse_error(
        {"exception_type": "Failed", "message": "lookup failed", "traceback": text}, FrameClassifier(tmp_path)
    )
    assert error.type == "app.Failed" and error.message == "lookup failed"
    assert [f.function for f in error.frames] == ["wrapper", "handle"]
    assert error.top_in_app_frame() == Frame(file="app.py", line=9, function="handle", in_app=True)
    assert error.cause_kind == "cause" and error.cause is not None
    assert error.cause.type == "KeyError" and error.cause.message == "'k'"
    # And back: the OTel stack trace text reads the same chain.
    assert "direct cause" in otel.stacktrace(error)
    assert otel.stacktrace(ErrorInfo(type="X", message="")).endswith("X")
