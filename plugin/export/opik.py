"""Stored traces into an Opik project: through the opik SDK, or through Opik's OTLP endpoint.

SDK path: each trace becomes an Opik trace and its spans Opik spans, with the agent's config, its hash
and class, the code version and the entry point as metadata, errors as Opik ``error_info`` (type,
message, a Python-style traceback) and span kinds mapped to Opik span types. Opik wants UUIDv7 ids;
tracemend's ids are turned into UUIDv7 deterministically (start time + a hash of the id), so exporting
the same trace twice updates it instead of duplicating it.

OTLP path: the same OTel spans as :mod:`tracemend.export.otel`, posted to
``<opik url>/v1/private/otel/v1/traces`` with the ``projectName``, ``Comet-Workspace`` and
``Authorization`` headers Opik reads.

opik is imported when a function here runs, never when tracemend is imported.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack

from tracemend.export.otel import (
    ExportResult,
    Sent,
    TraceQuery,
    export_traces,
    make_exporter,
    stacktrace,
    stored_traces,
    timed,
)
from tracemend.records import ErrorInfo, Span, Trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from tracemend.store import Store

# tracemend span kind -> Opik span type (Opik has general, tool, llm, guardrail).
OPIK_SPAN_TYPE = {"agent": "general", "llm": "llm", "tool": "tool", "retrieval": "tool", "general": "general"}
OTLP_PATH = "/v1/private/otel/v1/traces"
DEFAULT_OPIK_URL = "https://www.comet.com/opik/api"


@dataclass
class OpikExportResult(Sent):
    """What an export through the SDK delivered: ``traces`` and ``spans`` count what the backend
    acknowledged (see :mod:`tracemend.export.opik_delivery`), ``failed_*`` what it did not."""

    project: str | None = None
    url: str | None = None
    # tracemend trace id -> Opik trace id, so a user can find an exported trace in the Opik UI.
    ids: dict[str, str] = field(default_factory=dict)
    queued_traces: int = 0
    queued_spans: int = 0
    failed_traces: int = 0
    failed_spans: int = 0
    batches: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_traces == 0 and self.failed_spans == 0


def opik_project(project: str | None = None) -> str:
    """The Opik project every export path uses: ``project``, else ``OPIK_PROJECT_NAME``, else tracemend's
    own project name (``TRACEMEND_PROJECT``, ``[tool.tracemend] project``, the project folder's name)."""
    if project:
        return project
    from_env = os.environ.get("OPIK_PROJECT_NAME")
    if from_env:
        return from_env
    from tracemend import settings
    from tracemend.project import project_root

    return settings.get("project") or project_root().name or "default"


def opik_id(tracemend_id: str, at: datetime) -> str:
    """A UUIDv7 for a tracemend id: the time part from ``at``, the rest from a hash of the id."""
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(tracemend_id.encode()).digest()[:10], "big")
    rand_a = digest & 0xFFF
    rand_b = (digest >> 12) & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def error_info(error: ErrorInfo) -> dict[str, str]:
    """Opik's ``error_info`` (exception_type, message, traceback) for a tracemend error."""
    return {"exception_type": error.type, "message": error.message, "traceback": stacktrace(error)}


def _as_dict(value: Any, key: str) -> dict[str, Any] | None:
    # Opik stores input and output as JSON objects.
    if value is None:
        return None
    return value if isinstance(value, dict) else {key: value}


def trace_metadata(trace: Trace) -> dict[str, Any]:
    """What Opik shows as the trace's metadata: tracemend's facts first, the app's own metadata kept."""
    meta: dict[str, Any] = dict(trace.metadata)
    meta["tracemend"] = {
        "trace_id": trace.trace_id,
        "entry_point": trace.entry_point,
        "status": trace.status,
        "environment": trace.environment,
        "code_version": trace.code_version.model_dump(),
        "config": trace.config,
        "config_hash": trace.config_hash,
        "config_class": trace.config_class,
        "config_param": trace.config_param,
        # The error as recorded (frames with their modules), so a trace source reads the same signature.
        "error": trace.error.model_dump(mode="json") if trace.error is not None else None,
    }
    return meta


def _usage(span: Span) -> dict[str, int] | None:
    usage = span.attributes.get("usage")
    if not isinstance(usage, dict):
        return None
    out = {k: int(v) for k, v in usage.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return out or None


def _span_kwargs(span: Span, trace_uuid: str, ids: dict[str, str], project: str) -> dict[str, Any]:
    attrs = dict(span.attributes)
    model = attrs.pop("model", None)
    attrs.pop("usage", None)
    cost = attrs.pop("cost", None)
    metadata = attrs.pop("metadata", None) or {}
    metadata = {**metadata, "tracemend": {"span_id": span.span_id, "kind": span.kind, **attrs}}
    return {
        "trace_id": trace_uuid,
        "id": ids[span.span_id],
        "parent_span_id": ids.get(span.parent_id) if span.parent_id else None,
        "name": span.name,
        "type": OPIK_SPAN_TYPE.get(span.kind, "general"),
        "start_time": span.start_time,
        "end_time": span.end_time or span.start_time,
        "input": _as_dict(span.input, "input"),
        "output": _as_dict(span.output, "output"),
        "metadata": metadata,
        "usage": _usage(span),
        "model": model if isinstance(model, str) else None,
        "total_cost": float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        "error_info": error_info(span.error) if span.error is not None else None,
        "project_name": project,
    }


@contextmanager
def opik_client(client: Any = None, *, project: str | None = None) -> Iterator[Any]:
    """``client``, or a new ``opik.Opik`` ended afterwards; flushed when the block succeeds.

    A client made here is made after the delivery hook is installed, so its answers are counted.
    """
    own = client is None
    if own:
        from tracemend.errors import require
        from tracemend.export.opik_delivery import install

        opik = require("opik", "export to Opik")

        install()
        client = opik.Opik(project_name=project)
    try:
        yield client
        client.flush()
    finally:
        if own:
            client.end()


def _log_trace(client: Any, trace: Trace, project: str | None) -> tuple[str, list[str]]:
    """Log one trace and its spans; returns its Opik id and the Opik ids of its spans."""
    target = project or trace.project
    trace_uuid = opik_id(trace.trace_id, trace.start_time)
    ids = {s.span_id: opik_id(f"{trace.trace_id}/{s.span_id}", s.start_time) for s in trace.spans}
    error = trace.error
    client.trace(
        id=trace_uuid,
        name=trace.name,
        start_time=trace.start_time,
        end_time=trace.end_time or trace.start_time,
        input=trace.input,
        output=_as_dict(trace.output, "output"),
        metadata=trace_metadata(trace),
        tags=list(dict.fromkeys([*trace.tags, f"status:{trace.status}"])),
        project_name=target,
        error_info=error_info(error) if error is not None else None,
        environment=trace.environment,
    )
    # Parents before children, so a backend that links on arrival always finds the parent.
    for span in sorted(trace.spans, key=lambda s: (s.start_time, s.parent_id is not None)):
        client.span(**_span_kwargs(span, trace_uuid, ids, target))
    return trace_uuid, list(ids.values())


def export_to_opik(
    traces: Iterable[Trace],
    *,
    project: str | None = None,
    client: Any = None,
    progress: Callable[[OpikExportResult], None] | None = None,
) -> OpikExportResult:
    """Log traces and their spans to Opik through the SDK, and count what the backend acknowledged.

    ``project`` default: :func:`opik_project`. A ``client`` you pass is only verified when it was created
    after :func:`tracemend.export.opik_delivery.install`; otherwise its answers are never seen, and
    nothing counts as delivered.
    """
    from tracemend.export.opik_delivery import Deliveries, preflight

    project = opik_project(project)
    result = OpikExportResult(project=project, url=os.environ.get("OPIK_URL_OVERRIDE") or DEFAULT_OPIK_URL)
    span_ids: dict[str, list[str]] = {}
    with timed(result), Deliveries() as deliveries:
        with opik_client(client, project=project) as opik:
            reachable = preflight(opik, deliveries, result.url)
            for trace in traces:
                if reachable:
                    trace_uuid, spans = _log_trace(opik, trace, project)
                    deliveries.expect([trace_uuid, *spans])
                else:  # nothing can arrive: count what would have gone, send nothing
                    trace_uuid = opik_id(trace.trace_id, trace.start_time)
                    spans = [s.span_id for s in trace.spans]
                result.ids[trace.trace_id] = trace_uuid
                span_ids[trace_uuid] = spans
                result.queued_traces += 1
                result.queued_spans += len(spans)
                if progress is not None:
                    progress(result)
        # Flushed and ended: every answer the backend will give has been given.
        result.traces = deliveries.delivered(span_ids.keys())
        result.spans = deliveries.delivered(i for spans in span_ids.values() for i in spans)
        result.failed_traces = result.queued_traces - result.traces
        result.failed_spans = result.queued_spans - result.spans
        result.batches, result.refused = deliveries.batches, deliveries.refused
        result.errors = list(deliveries.errors)
        if not result.ok and deliveries.answers == 0 and not result.errors:
            result.errors.append(
                "no answer from Opik reached tracemend: the server never answered, or the client was "
                "created before tracemend.export.opik_delivery.install()"
            )
    return result


def export_store_to_opik(
    store: Store,
    *,
    project: str | None = None,
    client: Any = None,
    progress: Callable[[OpikExportResult], None] | None = None,
    **query: Unpack[TraceQuery],
) -> OpikExportResult:
    """Export the traces ``query`` selects to Opik through the SDK."""
    return export_to_opik(stored_traces(store, **query), project=project, client=client, progress=progress)


# --- Opik's OTLP endpoint ---------------------------------------------------------------------------


@dataclass
class OpikTarget:
    """Where and as whom to send: Opik's base API URL, project, workspace and API key."""

    url: str
    project: str | None
    workspace: str | None
    api_key: str | None

    @property
    def otlp_endpoint(self) -> str:
        return self.url.rstrip("/") + OTLP_PATH

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.project:
            headers["projectName"] = self.project
        if self.workspace:
            headers["Comet-Workspace"] = self.workspace
        if self.api_key:
            headers["Authorization"] = self.api_key
        return headers


def opik_target(
    url: str | None = None,
    project: str | None = None,
    workspace: str | None = None,
    api_key: str | None = None,
) -> OpikTarget:
    """Arguments win; then the OPIK_* variables (OPIK_URL_OVERRIDE, OPIK_WORKSPACE, OPIK_API_KEY), read
    without importing opik; then Opik Cloud's URL. The project is :func:`opik_project`'s, as for the SDK."""
    env = os.environ.get
    return OpikTarget(
        url=url or env("OPIK_URL_OVERRIDE") or DEFAULT_OPIK_URL,
        project=opik_project(project),
        workspace=workspace or env("OPIK_WORKSPACE"),
        api_key=api_key or env("OPIK_API_KEY"),
    )


def opik_otlp_exporter(target: OpikTarget | None = None, *, endpoint: str | None = None) -> SpanExporter:
    """The SDK's OTLP/HTTP exporter aimed at Opik (``endpoint`` overrides the URL, headers stay)."""
    target = target or opik_target()
    return make_exporter(endpoint or target.otlp_endpoint, headers=target.headers())


def export_store_to_opik_otlp(
    store: Store,
    target: OpikTarget | None = None,
    *,
    progress: Callable[[ExportResult], None] | None = None,
    **query: Unpack[TraceQuery],
) -> ExportResult:
    """Export the traces ``query`` selects to Opik's OTLP endpoint (``target`` default: the environment)."""
    target = target or opik_target()
    exporter = opik_otlp_exporter(target)
    try:
        result = export_traces(stored_traces(store, **query), exporter, progress=progress)
    finally:
        exporter.shutdown()
    result.endpoint = target.otlp_endpoint
    return result
