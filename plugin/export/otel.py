"""Stored traces as OpenTelemetry spans, exported through the OTLP/HTTP exporter of opentelemetry-sdk.

A stored :class:`~tracemend.records.Trace` becomes one OTel span per tracemend span, with the same trace
and span ids, parent links and start/end times, and attributes in both conventions that LLM backends
read: OpenInference (``openinference.span.kind``, ``input.value``, ``llm.model_name``,
``llm.token_count.*``; Phoenix, Arize) and OTel GenAI (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.usage.*``; Opik, Langfuse, Datadog...). Errors become an ``exception`` event and an ERROR status.

When the traced app ran inside an OpenTelemetry span, the recorder noted that span's ids in the trace's
metadata (``otel.trace_id``, ``otel.parent_span_id``): the exported spans then carry the app's trace id
and the root span hangs under the app's span, so both show as one trace in the backend.

Export reads the store and sends batches; it is never on the traced call's path. The exporter is
configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables unless an endpoint is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from urllib.parse import urlsplit

from tracemend.records import ErrorInfo, Span, Trace

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

    from tracemend.store import Store

# tracemend span kind -> OpenInference span kind / GenAI operation name.
OPENINFERENCE_KIND = {
    "agent": "AGENT",
    "llm": "LLM",
    "tool": "TOOL",
    "retrieval": "RETRIEVER",
    "general": "CHAIN",
}
GENAI_OPERATION = {"agent": "invoke_agent", "llm": "chat", "tool": "execute_tool", "retrieval": "retrieval"}
# Metadata keys the recorder sets on a trace that ran inside an OTel span (see capture.py).
OTEL_TRACE_KEY = "otel.trace_id"
OTEL_PARENT_KEY = "otel.parent_span_id"
MAX_VALUE_CHARS = 100_000
SCOPE_NAME = "tracemend"


class TraceQuery(TypedDict, total=False):
    """Which stored traces an export sends (oldest first): ``Store.iter_traces`` filters."""

    since: datetime | None
    until: datetime | None
    status: str | tuple[str, ...] | None
    limit: int | None


def stored_traces(store: Store, **query: Unpack[TraceQuery]) -> Iterator[Trace]:
    """The traces ``query`` selects, with their spans, read lazily from ``store``."""
    return store.iter_traces(**query, with_spans=True)


@contextmanager
def timed(result: Any) -> Iterator[None]:
    """Set ``result.seconds`` (any result with that field) to how long the block took."""
    started = time.perf_counter()
    try:
        yield
    finally:
        result.seconds = time.perf_counter() - started


@dataclass
class Sent:
    """What every export reports: traces and spans delivered, and how long it took."""

    traces: int = 0
    spans: int = 0
    seconds: float = 0.0


@dataclass
class ExportResult(Sent):
    """What one OTLP export did: ``traces`` and ``spans`` count what went in batches the exporter reported
    delivered; ``failed_*`` what was refused by (or never reached) the backend."""

    endpoint: str | None = None
    batches: int = 0
    failed_batches: int = 0
    failed_traces: int = 0
    failed_spans: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_batches == 0


# --- conversion -------------------------------------------------------------------------------------


def _hex_id(value: str | int | None, digits: int) -> int:
    """A tracemend id as an int; ids of another shape (imports) are hashed to the right width."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < (1 << (digits * 4)) else _hex_id(str(value), digits)
    if value:
        text = value.replace("-", "").lower()
        if len(text) == digits:
            try:
                number = int(text, 16)
            except ValueError:
                number = 0
            if number:
                return number
        digest = hashlib.blake2b(value.encode(), digest_size=digits // 2).hexdigest()
        return int(digest, 16) or 1
    return 0


def _ns(value: datetime | None) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() * 1_000_000) * 1000


def _value(data: Any) -> tuple[str, str]:
    """(text, mime type) of an input or output, as OpenInference wants them."""
    if isinstance(data, str):
        text, mime = data, "text/plain"
    else:
        text, mime = json.dumps(data, default=repr, ensure_ascii=False), "application/json"
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"…[truncated, {len(text)} chars]"
        mime = "text/plain"
    return text, mime


def _primitive(value: Any) -> Any:
    """An attribute value OTel accepts: str/bool/int/float or a homogeneous list of them; else JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds.pop() in (str, bool, int, float):
            return list(value)
    return json.dumps(value, default=repr, ensure_ascii=False)


def stacktrace(error: ErrorInfo) -> str:
    """A Python-style traceback text for an ErrorInfo chain (innermost cause first, as Python prints)."""
    blocks: list[str] = []
    chain = error.chain()
    for index, err in enumerate(reversed(chain)):
        lines = ["Traceback (most recent call last):"]
        for frame in err.frames:
            lines.append(f'  File "{frame.file}", line {frame.line}, in {frame.function}')
        lines.append(f"{err.type}: {err.message}" if err.message else err.type)
        blocks.append("\n".join(lines))
        if index < len(chain) - 1:
            # The chain link is stored on the outer error: it says how its cause is attached.
            outer = chain[len(chain) - 2 - index]
            if outer.cause_kind == "context":
                blocks.append("During handling of the above exception, another exception occurred:")
            else:
                blocks.append("The above exception was the direct cause of the following exception:")
    return "\n\n".join(blocks)


def _usage_numbers(usage: Any) -> tuple[int | None, int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None, None

    def pick(*keys: str) -> int | None:
        for key in keys:
            value = usage.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
        return None

    prompt = pick("prompt_tokens", "input_tokens")
    completion = pick("completion_tokens", "output_tokens")
    total = pick("total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def span_attributes(span: Span) -> dict[str, Any]:
    """OpenInference + GenAI attributes for one span (inputs, outputs, model, usage, cost, extras)."""
    attrs: dict[str, Any] = {
        "openinference.span.kind": OPENINFERENCE_KIND.get(span.kind, "CHAIN"),
        "tracemend.span.kind": span.kind,
    }
    operation = GENAI_OPERATION.get(span.kind)
    if operation:
        attrs["gen_ai.operation.name"] = operation
    if span.kind == "tool":
        attrs["tool.name"] = attrs["gen_ai.tool.name"] = span.name
    elif span.kind == "agent":
        attrs["gen_ai.agent.name"] = span.name
    if span.input is not None:
        attrs["input.value"], attrs["input.mime_type"] = _value(span.input)
    if span.output is not None:
        attrs["output.value"], attrs["output.mime_type"] = _value(span.output)
    extra = dict(span.attributes)
    model = extra.pop("model", None)
    if isinstance(model, str) and model:
        attrs["llm.model_name"] = attrs["gen_ai.request.model"] = attrs["gen_ai.response.model"] = model
    prompt, completion, total = _usage_numbers(extra.pop("usage", None))
    if prompt is not None:
        attrs["llm.token_count.prompt"] = attrs["gen_ai.usage.input_tokens"] = prompt
    if completion is not None:
        attrs["llm.token_count.completion"] = attrs["gen_ai.usage.output_tokens"] = completion
    if total is not None:
        attrs["llm.token_count.total"] = total
    cost = extra.pop("cost", None)
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        attrs["llm.cost.total"] = float(cost)
    metadata = extra.pop("metadata", None)
    if metadata:
        attrs["metadata"] = json.dumps(metadata, default=repr, ensure_ascii=False)
    for key, value in extra.items():
        if value is not None:
            attrs[f"tracemend.{key}"] = _primitive(value)
    return attrs


def _trace_attributes(trace: Trace) -> dict[str, Any]:
    """Facts about the whole trace, put on its root span (where backends show trace-level data)."""
    attrs: dict[str, Any] = {
        "tracemend.trace_id": trace.trace_id,
        "tracemend.entry_point": trace.entry_point,
        "tracemend.status": trace.status,
        "tracemend.environment": trace.environment,
        "deployment.environment.name": trace.environment,
    }
    if trace.code_version.commit:
        attrs["tracemend.code.commit"] = trace.code_version.commit
        attrs["vcs.ref.head.revision"] = trace.code_version.commit
    attrs["tracemend.code.dirty"] = trace.code_version.dirty
    if trace.code_version.branch:
        attrs["tracemend.code.branch"] = trace.code_version.branch
    if trace.config_hash:
        attrs["tracemend.config_hash"] = trace.config_hash
    if trace.config_class:
        attrs["tracemend.config_class"] = trace.config_class
    if trace.config_param:
        attrs["tracemend.config_param"] = trace.config_param
    if trace.tags:
        attrs["tag.tags"] = list(trace.tags)
    metadata = {k: v for k, v in trace.metadata.items() if k not in (OTEL_TRACE_KEY, OTEL_PARENT_KEY)}
    metadata["code_version"] = trace.code_version.model_dump()
    if trace.config is not None:
        metadata["config"] = trace.config
    attrs["metadata"] = json.dumps(metadata, default=repr, ensure_ascii=False)
    return attrs


class SpanConverter:
    """Turns stored traces into SDK ``ReadableSpan`` objects, reusing one Resource per project."""

    def __init__(self, service_name: str | None = None) -> None:
        self.service_name = service_name or os.environ.get("OTEL_SERVICE_NAME") or None
        self._resources: dict[tuple[str, str], Resource] = {}
        self._scope: Any = None

    def _resource(self, trace: Trace) -> Resource:
        key = (trace.project, trace.environment)
        resource = self._resources.get(key)
        if resource is None:
            from opentelemetry.sdk.resources import Resource

            resource = Resource.create(
                {
                    "service.name": self.service_name or trace.project,
                    # Phoenix files spans under this project; other backends ignore it.
                    "openinference.project.name": trace.project,
                    "deployment.environment.name": trace.environment,
                }
            )
            self._resources[key] = resource
        return resource

    def convert(self, trace: Trace) -> list[ReadableSpan]:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        from tracemend import __version__

        if self._scope is None:
            self._scope = InstrumentationScope(SCOPE_NAME, __version__)
        resource = self._resource(trace)
        otel_trace = trace.metadata.get(OTEL_TRACE_KEY)
        otel_parent = trace.metadata.get(OTEL_PARENT_KEY)
        # The recorder stores the app's ids in hex; stores written before that hold ints, read as well.
        joined = isinstance(otel_trace, int | str) and isinstance(otel_parent, int | str) and bool(otel_trace)
        trace_id = _hex_id(otel_trace if joined else trace.trace_id, 32)
        flags = TraceFlags(TraceFlags.SAMPLED)
        spans = trace.spans or []
        known = {s.span_id for s in spans}
        out: list[ReadableSpan] = []
        for span in spans:
            context = SpanContext(trace_id, _hex_id(span.span_id, 16), is_remote=False, trace_flags=flags)
            parent = None
            if span.parent_id and span.parent_id in known:
                parent = SpanContext(
                    trace_id, _hex_id(span.parent_id, 16), is_remote=False, trace_flags=flags
                )
            elif span.parent_id is None and joined:
                parent = SpanContext(trace_id, _hex_id(otel_parent, 16), is_remote=True, trace_flags=flags)
            attributes = span_attributes(span)
            is_root = span.parent_id is None
            error = span.error
            if is_root:
                attributes.update(_trace_attributes(trace))
                if error is None and trace.status != "ok":
                    error = trace.error or ErrorInfo(type=f"tracemend.{trace.status}", message="")
            events: list[Any] = []
            status = Status(StatusCode.OK)
            if error is not None:
                message = f"{error.type}: {error.message}" if error.message else error.type
                status = Status(StatusCode.ERROR, message)
                attributes["error.type"] = error.type
                if error is span.error or error is trace.error:
                    # The record itself (frames with modules and in-app flags), so a trace source reads
                    # back the same signature; the event below is for everyone else.
                    attributes["tracemend.error"] = error.model_dump_json()
                events.append(
                    Event(
                        "exception",
                        {
                            "exception.type": error.type,
                            "exception.message": error.message,
                            "exception.stacktrace": stacktrace(error),
                            "exception.escaped": True,
                        },
                        timestamp=_ns(span.end_time) or _ns(span.start_time),
                    )
                )
            end = span.end_time or span.start_time
            out.append(
                ReadableSpan(
                    name=span.name,
                    context=context,
                    parent=parent,
                    start_time=_ns(span.start_time),
                    end_time=_ns(end),
                    kind=SpanKind.INTERNAL,
                    status=status,
                    attributes=attributes,
                    events=events,
                    resource=resource,
                    instrumentation_scope=self._scope,
                )
            )
        return out


def to_otel_spans(trace: Trace) -> list[ReadableSpan]:
    """The OTel spans of one stored trace (with its spans loaded)."""
    return SpanConverter().convert(trace)


# --- exporting --------------------------------------------------------------------------------------


def traces_endpoint(endpoint: str) -> str:
    """A full OTLP/HTTP traces URL: a bare base URL (``http://host:4318``) gets ``/v1/traces``."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"OTLP endpoint must be an http(s) URL; got {endpoint!r}")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def configured_endpoint() -> str:
    """Where the SDK's exporter sends traces when no endpoint is given (OTEL_EXPORTER_OTLP_* rules)."""
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if explicit:
        return explicit
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"


def make_exporter(
    endpoint: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> SpanExporter:
    """The SDK's OTLP/HTTP (protobuf) span exporter; None arguments fall back to OTEL_EXPORTER_OTLP_*."""
    from tracemend.errors import require

    exporter = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLP export")
    return exporter.OTLPSpanExporter(
        endpoint=traces_endpoint(endpoint) if endpoint else None,
        headers=headers,
        timeout=timeout,
    )


def _batches(spans: Iterator[list[ReadableSpan]], size: int) -> Iterator[tuple[list[ReadableSpan], int]]:
    """Groups of whole traces of about ``size`` spans; yields (spans, trace count)."""
    batch: list[ReadableSpan] = []
    traces = 0
    for trace_spans in spans:
        batch.extend(trace_spans)
        traces += 1
        if len(batch) >= size:
            yield batch, traces
            batch, traces = [], 0
    if batch or traces:
        yield batch, traces


def export_traces(
    traces: Iterable[Trace],
    exporter: SpanExporter,
    *,
    batch_spans: int = 512,
    progress: Callable[[ExportResult], None] | None = None,
    converter: SpanConverter | None = None,
) -> ExportResult:
    """Send traces through ``exporter`` in batches; a refused batch is counted, the rest still go."""
    converter = converter or SpanConverter()
    result = ExportResult(endpoint=getattr(exporter, "_endpoint", None))
    with timed(result):
        for batch, count in _batches((converter.convert(t) for t in traces), batch_spans):
            if not batch:  # traces without spans: nothing to send, nothing lost
                result.traces += count
                continue
            _send(exporter, batch, count, result)
            if progress is not None:
                progress(result)
    return result


def _send(exporter: SpanExporter, batch: list[ReadableSpan], traces: int, result: ExportResult) -> None:
    """One batch of whole traces; a refused batch is counted, and a broken exporter's exception too."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    result.batches += 1
    try:
        outcome = exporter.export(batch)
    except Exception as exc:  # the exporter normally reports, but a broken one must not lose the rest
        outcome = SpanExportResult.FAILURE
        result.errors.append(f"{type(exc).__name__}: {exc}")
    if outcome == SpanExportResult.SUCCESS:
        result.spans += len(batch)
        result.traces += traces
    else:
        result.failed_batches += 1
        result.failed_spans += len(batch)
        result.failed_traces += traces


def export_store(
    store: Store,
    exporter: SpanExporter | None = None,
    *,
    batch_spans: int = 512,
    progress: Callable[[ExportResult], None] | None = None,
    **query: Unpack[TraceQuery],
) -> ExportResult:
    """Export stored traces (oldest first) through ``exporter`` (default: OTLP/HTTP from the environment)."""
    own = exporter is None
    exporter = exporter or make_exporter()
    try:
        return export_traces(
            stored_traces(store, **query), exporter, batch_spans=batch_spans, progress=progress
        )
    finally:
        if own:
            exporter.shutdown()
