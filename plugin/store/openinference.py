"""OpenTelemetry spans as tracemend records: OpenInference and OTel GenAI conventions, and our own.

A backend (Phoenix, any OTLP store) holds spans; the loop reads :class:`~tracemend.records.Trace` and
:class:`~tracemend.records.Span`. The root span of a trace carries the trace's facts. What maps:

- our own attributes, as ``tracemend.export.otel`` writes them (``tracemend.entry_point``, ``.status``,
  ``.code.commit``, ``.config_hash``, ``.error`` (the ErrorInfo as JSON), ``metadata`` with the config...):
  a trace recorded by ``@tracemend.track`` and exported comes back as it was stored;
- errors: the ``tracemend.error`` attribute, else the span's ``exception`` event (``exception.type``,
  ``exception.message``, frames and causes parsed from ``exception.stacktrace``), else an ERROR status
  (``error.type`` and the status message);
- inputs and outputs (``input.value``/``output.value`` with their mime types; GenAI messages), model
  (``llm.model_name``, ``gen_ai.request.model``), tokens (``llm.token_count.*``, ``gen_ai.usage.*``),
  cost (``llm.cost.total``), span kind (``openinference.span.kind``, ``gen_ai.operation.name``);
- the code version: a configured attribute, else ``tracemend.code.commit``, ``vcs.ref.head.revision``,
  ``vcs.repository.ref.revision``, ``service.version`` (span attributes first, then the resource's).

Attributes may be flat (``{"llm.model_name": ...}``, as OTLP sends them) or nested (``{"llm":
{"model_name": ...}}``, as Phoenix stores them); both are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracemend.records import CodeVersion, ErrorInfo, Span, Trace
from tracemend.store.tracebacks import FrameMapper, parse_stacktrace

VERSION_ATTRIBUTES = (
    "tracemend.code.commit",
    "vcs.ref.head.revision",
    "vcs.repository.ref.revision",
    "service.version",
)
# tracemend's exported trace-level attributes: not span extras when read back.
_TRACE_KEYS = frozenset(
    {"trace_id", "entry_point", "status", "environment", "code", "config_hash", "config_class",
     "config_param", "span", "error"}
)
_SPAN_KEYS = frozenset({"span", "error"})
_OI_KIND = {
    "LLM": "llm",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
    "EMBEDDING": "retrieval",
    "CHAIN": "general",
}
_GENAI_KIND = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "embeddings": "retrieval",
    "retrieval": "retrieval",
}
_STATUSES = ("ok", "error", "failed_assertion")
ERROR_STATUS_TYPE = "tracemend.ErrorStatus"


@dataclass
class OtelSpan:
    """One span as a backend returns it, before mapping (times are aware datetimes)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_time: datetime
    end_time: datetime | None
    status: str = "UNSET"  # OK, ERROR or UNSET
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # {name, timestamp, attributes}
    resource: dict[str, Any] = field(default_factory=dict)


def attr(attributes: dict[str, Any], key: str) -> Any:
    """The value of a dotted attribute in flat or nested attributes (None when absent)."""
    if key in attributes:
        return attributes[key]
    node: Any = attributes
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        # A nested dict may hold the rest of the key flat ({"llm": {"token_count.total": 3}}).
        rest = ".".join(parts[i:])
        return node.get(rest)
    return node


def first(attributes: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attr(attributes, key)
        if value is not None and value != "":
            return value
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _value(attributes: dict[str, Any], prefix: str) -> Any:
    """``input``/``output``: the value by its mime type (JSON parsed), else GenAI messages."""
    value = attr(attributes, f"{prefix}.value")
    if value is not None:
        mime = attr(attributes, f"{prefix}.mime_type")
        return _json(value) if mime == "application/json" else value
    genai = "gen_ai.input.messages" if prefix == "input" else "gen_ai.output.messages"
    legacy = "gen_ai.prompt" if prefix == "input" else "gen_ai.completion"
    found = first(attributes, genai, legacy)
    return _json(found) if found is not None else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _kind(attributes: dict[str, Any]) -> str:
    ours = attr(attributes, "tracemend.span.kind")
    if ours in ("agent", "llm", "tool", "retrieval", "general"):
        return ours
    oi = attr(attributes, "openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in _OI_KIND:
        return _OI_KIND[oi.upper()]
    op = attr(attributes, "gen_ai.operation.name")
    return _GENAI_KIND.get(op, "general") if isinstance(op, str) else "general"


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def span_extras(attributes: dict[str, Any], *, root_of_ours: bool = False) -> dict[str, Any]:
    """model, usage, cost, metadata and our ``tracemend.<name>`` extras, as ``Span.attributes`` holds them.

    On the root span of a trace we exported, ``metadata`` and the ``tracemend.*`` trace facts are the
    trace's, not the span's (a root span with a config keeps its ``config_hash``, as recorded).
    """
    skip = (_TRACE_KEYS - {"config_hash"}) if root_of_ours else _SPAN_KEYS
    out: dict[str, Any] = {}
    model = first(attributes, "llm.model_name", "gen_ai.request.model", "gen_ai.response.model")
    if isinstance(model, str):
        out["model"] = model
    usage = {}
    for name, keys in (
        ("prompt_tokens", ("llm.token_count.prompt", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
        ("completion_tokens", ("llm.token_count.completion", "gen_ai.usage.output_tokens",
                               "gen_ai.usage.completion_tokens")),
        ("total_tokens", ("llm.token_count.total",)),
    ):
        number = _number(first(attributes, *keys))
        if number is not None:
            usage[name] = int(number)
    if usage:
        if "total_tokens" not in usage and {"prompt_tokens", "completion_tokens"} <= set(usage):
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        out["usage"] = usage
    cost = _number(first(attributes, "llm.cost.total", "gen_ai.usage.cost"))
    if cost is not None:
        out["cost"] = float(cost)
    metadata = _json(attr(attributes, "metadata"))
    if isinstance(metadata, dict) and metadata and not root_of_ours:
        out["metadata"] = metadata
    ours = attributes.get("tracemend") if isinstance(attributes.get("tracemend"), dict) else None
    extras: dict[str, Any] = {}
    if ours is not None:
        for key, value in ours.items():
            if key not in skip:
                _flat(key, value, extras)
    for key, value in attributes.items():
        if key.startswith("tracemend.") and key.split(".")[1] not in skip:
            extras[key[len("tracemend.") :]] = value
    out.update(extras)
    return out


class SpanMapper:
    """Maps one backend's spans; holds what is shared across them (the frame mapper, the project)."""

    def __init__(self, mapper: FrameMapper, *, project: str, version_attribute: str | None = None) -> None:
        self.frames = mapper
        self.project = project
        self.version_attribute = version_attribute

    # --- errors -------------------------------------------------------------------------------------

    def error(self, span: OtelSpan) -> ErrorInfo | None:
        """The span's error: our exact record, else its exception event, else its ERROR status."""
        attributes = span.attributes
        recorded = _json(attr(attributes, "tracemend.error"))
        if isinstance(recorded, dict):
            try:
                return ErrorInfo.model_validate(recorded)
            except ValueError:
                pass
        ours = attr(attributes, "tracemend.trace_id") is not None or attr(attributes, "tracemend.span.kind")
        for event in reversed(span.events):
            if event.get("name") != "exception":
                continue
            ev = event.get("attributes") or {}
            etype = ev.get("exception.type")
            if ours and isinstance(etype, str) and etype.startswith("tracemend.") and etype[10:11].islower():
                # Our exporter's stand-in for a failure that raised nothing: the status says it all.
                return None
            return parse_stacktrace(
                str(ev.get("exception.stacktrace") or ""),
                exc_type=str(etype) if etype else None,
                message=str(ev["exception.message"]) if ev.get("exception.message") is not None else None,
                mapper=self.frames,
            )
        if span.status == "ERROR" and not ours:
            etype = attr(attributes, "error.type")
            return ErrorInfo(type=str(etype) if etype else ERROR_STATUS_TYPE, message=span.status_message or "")
        return None

    # --- spans and traces ---------------------------------------------------------------------------

    def span(self, span: OtelSpan, *, root_of_ours: bool = False) -> Span:
        return Span(
            span_id=span.span_id,
            trace_id=span.trace_id,
            parent_id=span.parent_id or None,
            name=span.name or "span",
            kind=_kind(span.attributes),  # type: ignore[arg-type]
            start_time=span.start_time,
            end_time=span.end_time,
            input=_value(span.attributes, "input"),
            output=_value(span.attributes, "output"),
            error=self.error(span),
            attributes=span_extras(span.attributes, root_of_ours=root_of_ours),
        )

    def code_version(self, span: OtelSpan) -> CodeVersion:
        keys = (self.version_attribute,) if self.version_attribute else VERSION_ATTRIBUTES
        commit = first(span.attributes, *keys)
        if commit is None:
            commit = first(span.resource, *keys)
        dirty = attr(span.attributes, "tracemend.code.dirty")
        branch = attr(span.attributes, "tracemend.code.branch")
        return CodeVersion(
            commit=str(commit).strip().lower() if _is_sha(commit) else (str(commit) if commit else None),
            dirty=dirty is True,
            branch=branch if isinstance(branch, str) else None,
        )

    def trace(self, root: OtelSpan, spans: list[OtelSpan] | None = None) -> Trace:
        """The trace whose root span is ``root`` (with ``spans``, all of its spans, mapped too)."""
        attributes = root.attributes
        ours = attr(attributes, "tracemend.trace_id") is not None
        status = attr(attributes, "tracemend.status")
        if status not in _STATUSES:
            # A trace failed when its root span did; an exception the app caught and recorded on an OK
            # span is the span's, not a failure of the trace (and the server's failing filter agrees).
            status = "error" if root.status == "ERROR" else "ok"
        error = self.error(root) if status != "ok" else None
        metadata = _json(attr(attributes, "metadata"))
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        config = metadata.pop("config", None) if ours else None
        if ours:
            metadata.pop("code_version", None)
        inp = _value(attributes, "input")
        if not isinstance(inp, dict):
            inp = {} if inp is None else {"input": inp}
        tags = attr(attributes, "tag.tags")
        environment = first(
            attributes, "tracemend.environment", "deployment.environment.name", "deployment.environment"
        ) or first(root.resource, "deployment.environment.name", "deployment.environment")
        mapped = [self.span(s, root_of_ours=ours and s is root) for s in spans] if spans else []
        return Trace(
            trace_id=root.trace_id,
            entry_point=str(attr(attributes, "tracemend.entry_point") or ""),
            name=root.name or "trace",
            project=self.project,
            environment=str(environment or "development"),
            input=inp,
            output=_value(attributes, "output"),
            status=status,
            error=error,
            start_time=root.start_time,
            end_time=root.end_time,
            config=config if isinstance(config, dict) else None,
            config_hash=_str(attr(attributes, "tracemend.config_hash")),
            config_class=_str(attr(attributes, "tracemend.config_class")),
            config_param=_str(attr(attributes, "tracemend.config_param")),
            code_version=self.code_version(root),
            tags=[str(t) for t in tags] if isinstance(tags, list) else [],
            metadata=metadata,
            spans=sorted(mapped, key=lambda s: s.start_time),
        )


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and 7 <= len(value.strip()) <= 40 and all(
        c in "0123456789abcdefABCDEF" for c in value.strip()
    )
