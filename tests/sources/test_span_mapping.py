"""OTel spans as tracemend records, without a server: our own exported spans come back as they were
recorded; OpenInference and GenAI spans map their errors, model, tokens, cost and code version."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracemend.analyze.signatures import signature_of
from tracemend.records import ErrorInfo, Frame, Span, Trace
from tracemend.store.openinference import OtelSpan, SpanMapper, attr
from tracemend.store.tracebacks import FrameMapper, parse_stacktrace

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _otel(readable: Any) -> OtelSpan:
    """A ReadableSpan of the OTel SDK as an OTLP backend would hand it back (flat attributes)."""
    parent = readable.parent
    return OtelSpan(
        trace_id=f"{readable.context.trace_id:032x}",
        span_id=f"{readable.context.span_id:016x}",
        parent_id=f"{parent.span_id:016x}" if parent is not None else None,
        name=readable.name,
        start_time=datetime.fromtimestamp(readable.start_time / 1e9, tz=UTC),
        end_time=datetime.fromtimestamp(readable.end_time / 1e9, tz=UTC),
        status=readable.status.status_code.name,
        status_message=readable.status.description or "",
        attributes=dict(readable.attributes),
        events=[{"name": e.name, "attributes": dict(e.attributes)} for e in readable.events],
        resource=dict(readable.resource.attributes),
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text("")
    (tmp_path / "src" / "shop" / "tools.py").write_text("def lookup(order):\n    return ORDERS[order]\n")
    (tmp_path / "main.py").write_text("")
    return tmp_path


def test_our_exported_traces_map_back_exactly(recorded) -> None:
    from tracemend.export.otel import SpanConverter

    converter = SpanConverter()
    mapper = SpanMapper(FrameMapper(Path.cwd()), project="roundtrip")
    traces = list(recorded.iter_traces(with_spans=True))
    assert {t.status for t in traces} == {"ok", "error"}
    for trace in traces:
        spans = [_otel(s) for s in converter.convert(trace)]
        root = next(s for s in spans if s.parent_id is None)
        back = mapper.trace(root, spans)
        expected = trace.model_copy(update={"project": "roundtrip"})
        for span in expected.spans:  # the exporter sends the total it can compute
            usage = span.attributes.get("usage")
            if usage and "total_tokens" not in usage:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        assert back.model_dump() == expected.model_dump()
        if trace.status != "ok":
            assert signature_of(back) == signature_of(trace)


def test_a_remote_traceback_maps_onto_this_checkout(checkout: Path) -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/main.py", line 9, in handle\n'
        "    return lookup(order)\n"
        '  File "/srv/app/src/shop/tools.py", line 2, in lookup\n'
        "    return ORDERS[order]\n"
        "           ~~~~~~^^^^^^^\n"
        "KeyError: 'A17'\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/app/main.py", line 12, in handle\n'
        "    raise NotFound(order) from exc\n"
        '  File "/usr/local/lib/python3.11/site-packages/httpx/_client.py", line 80, in send\n'
        "    raise\n"
        "shop.errors.NotFound: order A17\n"
    )
    error = parse_stacktrace(text, exc_type="NotFound", message="order A17", mapper=FrameMapper(checkout))
    assert [e.type for e in error.chain()] == ["shop.errors.NotFound", "KeyError"]
    assert error.cause_kind == "cause" and error.message == "order A17"
    outer, inner = error.frames, error.cause.frames  # type: ignore[union-attr]
    assert (outer[0].file, outer[0].in_app, outer[0].module) == ("main.py", True, "main")
    assert outer[1].in_app is False and "site-packages" in outer[1].file
    assert (inner[1].file, inner[1].line, inner[1].module, inner[1].in_app) == ("src/shop/tools.py", 2, "shop.tools", True)
    assert error.cause.top_in_app_frame().function == "lookup"  # type: ignore[union-attr]


def test_paths_not_in_this_checkout_still_group_stably(checkout: Path) -> None:
    mapper = FrameMapper(checkout)
    assert mapper.map("/opt/service/handlers/refunds.py") == ("/opt/service/handlers/refunds.py", True, "handlers.refunds")
    assert mapper.map("<frozen runpy>")[1] is False
    assert mapper.map("/usr/lib/python3.11/json/decoder.py")[1] is False
    assert mapper.map(str(checkout / "src" / "shop" / "tools.py")) == ("src/shop/tools.py", True, "shop.tools")


def _span(**kw: Any) -> OtelSpan:
    base = dict(trace_id="ab" * 16, span_id="cd" * 8, parent_id=None, name="chat gpt-4o", start_time=T0,
                end_time=T0 + timedelta(seconds=1))
    base.update(kw)
    return OtelSpan(**base)  # type: ignore[arg-type]


def test_a_genai_span_maps_model_tokens_cost_kind_and_messages(checkout: Path) -> None:
    mapper = SpanMapper(FrameMapper(checkout), project="p")
    span = mapper.span(_span(attributes={
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cost": 0.0004,
        "gen_ai.input.messages": json.dumps([{"role": "user", "content": "hi"}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "hello"}]),
    }))
    assert span.kind == "llm"
    assert span.attributes == {
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        "cost": 0.0004,
    }
    assert span.input == [{"role": "user", "content": "hi"}] and span.output[0]["content"] == "hello"


def test_an_openinference_root_becomes_a_trace(checkout: Path) -> None:
    """Nested attributes (as Phoenix stores them), an exception event, the version on the resource."""
    stack = 'Traceback (most recent call last):\n  File "/srv/app/src/shop/tools.py", line 2, in lookup\nKeyError: \'A1\'\n'
    root = _span(
        name="handle",
        status="ERROR",
        status_message="KeyError: 'A1'",
        attributes={
            "openinference": {"span": {"kind": "CHAIN"}},
            "input": {"value": "where is A1?", "mime_type": "text/plain"},
            "llm": {"model_name": "gpt-4o", "token_count": {"prompt": 5, "completion": 2, "total": 7}},
            "metadata": {"tenant": "acme"},
            "tag": {"tags": ["beta"]},
        },
        events=[{"name": "exception", "attributes": {
            "exception.type": "KeyError", "exception.message": "'A1'", "exception.stacktrace": stack}}],
        resource={"service.version": "ABCDEF1234", "deployment.environment.name": "prod"},
    )
    trace = SpanMapper(FrameMapper(checkout), project="shop").trace(root, [root])
    assert (trace.status, trace.entry_point, trace.project, trace.environment) == ("error", "", "shop", "prod")
    assert trace.code_version.commit == "abcdef1234"  # a sha-like version, normalised as git prints it
    assert trace.input == {"input": "where is A1?"} and trace.tags == ["beta"] and trace.metadata == {"tenant": "acme"}
    assert trace.error is not None and trace.error.type == "KeyError"
    assert trace.error.frames == [Frame(file="src/shop/tools.py", line=2, function="lookup", module="shop.tools", in_app=True)]
    assert trace.spans[0].kind == "general" and trace.spans[0].attributes["usage"]["total_tokens"] == 7
    assert signature_of(trace).frame == "shop.tools:lookup"


def test_status_without_an_exception_and_a_configured_version(checkout: Path) -> None:
    mapper = SpanMapper(FrameMapper(checkout), project="p", version_attribute="app.build")
    root = _span(status="ERROR", status_message="upstream returned 503",
                 attributes={"error.type": "503", "app.build": "2026.11.2-rc1", "service.version": "x"})
    trace = mapper.trace(root)
    assert trace.error == ErrorInfo(type="503", message="upstream returned 503")
    assert trace.code_version.commit == "2026.11.2-rc1"
    ok = mapper.trace(_span(status="UNSET"))
    assert ok.status == "ok" and ok.error is None and ok.code_version.commit is None
    # An exception the app caught and recorded on an OK root: the span's event, not a failed trace.
    caught = _span(status="OK", events=[{"name": "exception", "attributes": {
        "exception.type": "TimeoutError", "exception.message": "retried once"}}])
    assert mapper.trace(caught).status == "ok" and mapper.trace(caught).error is None
    assert mapper.span(caught).error == ErrorInfo(type="TimeoutError", message="retried once")


def test_attr_reads_flat_and_nested_keys() -> None:
    assert attr({"llm.model_name": "a"}, "llm.model_name") == "a"
    assert attr({"llm": {"model_name": "b"}}, "llm.model_name") == "b"
    assert attr({"llm": {"token_count.total": 3}}, "llm.token_count.total") == 3
    assert attr({"llm": "flat"}, "llm.model_name") is None


def test_a_failing_trace_read_back_keeps_its_signature(checkout: Path) -> None:
    """A trace recorded with frames whose module differs from its path (a src/ layout, ``__main__``)
    keeps its signature through the exporter: the error record travels with the span."""
    from tracemend.export.otel import SpanConverter

    error = ErrorInfo(type="shop.errors.Refused", message="order A9 refused after 3 tries", frames=[
        Frame(file="run.py", line=3, function="main", module="__main__", in_app=True)])
    trace = Trace(trace_id="12" * 16, entry_point="__main__:main", name="main", start_time=T0, end_time=T0,
                  status="error", error=error, spans=[Span(span_id="34" * 8, trace_id="12" * 16, name="main",
                  start_time=T0, end_time=T0, error=error)])
    spans = [_otel(s) for s in SpanConverter().convert(trace)]
    back = SpanMapper(FrameMapper(checkout), project="p").trace(spans[0], spans)
    assert signature_of(back) == signature_of(trace)
    assert signature_of(back).frame == "__main__:main"
