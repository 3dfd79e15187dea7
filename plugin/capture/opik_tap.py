"""A tap on the opik SDK: traces of ``@opik.track``'ed agents also land in tracemend's store.

The tap registers an httpx client hook through the SDK's public ``opik.hooks.add_httpx_client_hook``.
Every request the SDK sends to Opik passes a request event hook that reads the trace and span payloads
(``/v1/private/traces[/batch]``, ``/v1/private/spans[/batch]``, and PATCH updates) and hands the request
on untouched: the upload to Opik goes on as before, whether or not the tap understood it.

Opik sends a trace when it starts and again when it ends, and spans in their own batches, in any order.
The tap merges payloads by id, writes a trace once it has ended, and writes it again when spans of it
arrive later (the store replaces a trace and its spans by id), so what the store holds converges on
what Opik holds. Ids are kept: the Opik trace UUID without dashes is the tracemend trace id; span ids
are a 64-bit hash of the Opik span UUID (the original UUIDs stay in the span attributes).

Install the tap before the app creates its first Opik client (the hook applies to clients created after
it), e.g. at import time next to ``opik.configure``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracemend.capture.config import config_hash
from tracemend.capture.errorinfo import FrameClassifier
from tracemend.capture.redact import default_redactor, redact_record
from tracemend.project import project_root, read_code_version
from tracemend.records import CodeVersion, ErrorInfo, Span, Trace
from tracemend.store import Store
from tracemend.store.tracebacks import parse_stacktrace

logger = logging.getLogger("tracemend")

OPIK_KIND = {"llm": "llm", "tool": "tool", "general": "general", "guardrail": "general"}
MAX_PENDING = 10_000
MAX_WRITTEN = 2_000


def span_id_for(opik_span_id: str) -> str:
    return hashlib.blake2b(opik_span_id.encode(), digest_size=8).hexdigest()


def trace_id_for(opik_trace_id: str) -> str:
    text = opik_trace_id.replace("-", "").lower()
    if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
        return text
    return hashlib.blake2b(opik_trace_id.encode(), digest_size=16).hexdigest()


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _ClassifiedFrames:
    """The tap's frames as the traceback parser wants them: this process's classifier decides what is in
    app (the tap runs in the app, so paths are this checkout's own)."""

    def __init__(self, classifier: FrameClassifier) -> None:
        self.classifier = classifier

    def map(self, filename: str) -> tuple[str, bool, str | None]:
        rel, in_app = self.classifier.classify(filename)
        return rel, in_app, None


def parse_error(info: dict[str, Any], classifier: FrameClassifier) -> ErrorInfo:
    """ErrorInfo from Opik's ``error_info``: frames and the chain of causes read from the traceback text.

    The traceback's last line names the exception with its module (``pkg.mod.Error: message``), which
    is how tracemend names it too; Opik's ``exception_type`` (the bare class name) is the fallback.
    """
    return parse_stacktrace(
        str(info.get("traceback") or ""),
        exc_type=str(info.get("exception_type") or "Exception"),
        message=str(info.get("message") or "") or None,
        mapper=_ClassifiedFrames(classifier),
    )


def _unwrap_output(value: Any) -> Any:
    # opik wraps a non-dict return value as {"output": value}.
    if isinstance(value, dict) and set(value) == {"output"}:
        return value["output"]
    return value


class OpikTap:
    """Feeds the traces the opik SDK uploads into a tracemend :class:`Store` as well."""

    def __init__(
        self,
        store: Store | str | Path | None = None,
        *,
        entry_points: dict[str, str] | None = None,
        root: Path | None = None,
        environment: str | None = None,
    ) -> None:
        self._store_arg = store
        self._store: Store | None = store if isinstance(store, Store) else None
        self.entry_points = dict(entry_points or {})
        self.environment = environment
        self._root = root or project_root()
        self._classifier = FrameClassifier(self._root)
        self._code_version: CodeVersion | None = None
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._spans: dict[str, dict[str, dict[str, Any]]] = {}
        self._written: OrderedDict[str, None] = OrderedDict()
        self.active = False
        self.payloads = 0
        self.traces_written = 0
        self.errors = 0
        self._resolved: dict[str, str] = {}
        self._hook: Any = None

    # --- wiring --------------------------------------------------------------------------------

    def install(self) -> OpikTap:
        """Register the hook with the opik SDK (clients created from now on are tapped)."""
        from opik import hooks

        if self._hook is None:
            self._hook = hooks.HttpxClientHook(client_modifier=self._attach, client_init_arguments=None)
            hooks.add_httpx_client_hook(self._hook)
        self.active = True
        return self

    def close(self) -> None:
        """Stop recording and close the store; the hook stays registered in opik but does nothing."""
        self.active = False
        with self._lock:
            self._flush_locked(final=True)
            if self._store is not None and not isinstance(self._store_arg, Store):
                self._store.close()
                self._store = None

    def _attach(self, client: Any) -> None:
        event_hooks = dict(client.event_hooks)
        event_hooks["request"] = [*event_hooks.get("request", []), self._on_request]
        client.event_hooks = event_hooks

    def _on_request(self, request: Any) -> None:
        # Runs on opik's sender thread; never raises into it (that would stop the upload).
        if not self.active:
            return
        try:
            self.handle(request.method, request.url.path, request.content)
        except Exception:
            self.errors += 1
            logger.warning(
                "tracemend: the opik tap could not read a request to %s", request.url, exc_info=True
            )

    # --- payloads ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> None:
        """Take one request the SDK sends: trace and span payloads are merged, the rest ignored."""
        marker = path.find("/v1/private/")
        if marker < 0:
            return
        parts = path[marker + len("/v1/private/") :].strip("/").split("/")
        if not parts or parts[0] not in ("traces", "spans") or len(parts) > 2:
            return
        if len(parts) == 2 and parts[1] != "batch" and method.upper() != "PATCH":
            return
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        if not body:
            return
        data = json.loads(body)
        items: list[dict[str, Any]]
        if len(parts) == 2 and parts[1] == "batch":
            items = list(data.get(parts[0], []))
        elif len(parts) == 2:  # PATCH /traces/{id}: a partial update
            items = [{**data, "id": parts[1]}]
        else:
            items = [data]
        with self._lock:
            self.payloads += len(items)
            for item in items:
                if parts[0] == "traces":
                    self._merge_trace(item)
                else:
                    self._merge_span(item)
            self._flush_locked()

    def _merge_trace(self, item: dict[str, Any]) -> None:
        trace_id = item.get("id")
        if not trace_id:
            return
        current = self._traces.setdefault(trace_id, {})
        current.update({k: v for k, v in item.items() if v is not None})
        self._traces.move_to_end(trace_id)
        while len(self._traces) > MAX_PENDING:
            old, _ = self._traces.popitem(last=False)
            self._spans.pop(old, None)

    def _merge_span(self, item: dict[str, Any]) -> None:
        span_id, trace_id = item.get("id"), item.get("trace_id")
        if not span_id:
            return
        if not trace_id:  # a PATCH names only the span: find the trace it belongs to
            trace_id = next((t for t, spans in self._spans.items() if span_id in spans), None)
            if trace_id is None:
                return
        spans = self._spans.setdefault(trace_id, {})
        current = spans.setdefault(span_id, {})
        current.update({k: v for k, v in item.items() if v is not None})
        current["_dirty"] = True

    def flush(self) -> int:
        """Write every ended trace with new data now; returns how many traces were written."""
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self, final: bool = False) -> int:
        ready: list[Trace] = []
        for opik_trace_id, payload in self._traces.items():
            spans = self._spans.get(opik_trace_id, {})
            dirty = payload.get("_dirty", True) or any(s.get("_dirty") for s in spans.values())
            ended = payload.get("end_time") is not None
            if not dirty or not (ended or (final and opik_trace_id in self._written)):
                continue
            try:
                ready.append(self._to_trace(payload, spans))
            except Exception:
                self.errors += 1
                logger.warning(
                    "tracemend: the opik tap could not convert trace %s", opik_trace_id, exc_info=True
                )
            payload["_dirty"] = False
            for span in spans.values():
                span["_dirty"] = False
            self._written[opik_trace_id] = None
        if not ready:
            return 0
        store = self._open_store()
        # The same redaction as the writer's: ingested traces carry the app's inputs and errors too.
        redactor = default_redactor()
        store.add_traces(redact_record(trace, redactor) for trace in ready)
        self.traces_written += len(ready)
        # Keep recently written traces (late spans rewrite them); forget the oldest.
        while len(self._written) > MAX_WRITTEN:
            old, _ = self._written.popitem(last=False)
            self._traces.pop(old, None)
            self._spans.pop(old, None)
        return len(ready)

    def _open_store(self) -> Store:
        if self._store is None:
            arg = self._store_arg
            self._store = Store(Path(arg) if isinstance(arg, str | Path) else None)
        return self._store

    # --- conversion ----------------------------------------------------------------------------

    def resolve_entry_point(self, name: str) -> str:
        """``module:qualname`` of the @opik.track'ed function called ``name``, so reruns can import it.

        Given mappings win; otherwise the app's own loaded modules (files under the project root) are
        searched for a decorated function (one with ``__wrapped__``) of that name. ``opik:<name>`` when
        nothing matches.
        """
        if name in self.entry_points:
            return self.entry_points[name]
        hit = self._resolved.get(name)
        if hit is not None:
            return hit
        import sys

        found = f"opik:{name}"
        for module in list(sys.modules.values()):
            file = getattr(module, "__file__", None)
            if not file or not self._classifier.classify(file)[1]:
                continue
            candidate = getattr(module, name, None)
            if callable(candidate) and hasattr(candidate, "__wrapped__"):
                found = f"{candidate.__module__}:{candidate.__qualname__}"
                break
        self._resolved[name] = found
        return found

    def _to_span(self, payload: dict[str, Any], trace_id: str, known: set[str]) -> Span:
        attributes: dict[str, Any] = {"opik_span_id": payload["id"]}
        if payload.get("model"):
            attributes["model"] = payload["model"]
        if payload.get("provider"):
            attributes["provider"] = payload["provider"]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            picked = {
                k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if k in usage
            }
            if picked:
                attributes["usage"] = picked
        if payload.get("total_cost") is not None:
            attributes["cost"] = payload["total_cost"]
        if payload.get("metadata"):
            attributes["metadata"] = payload["metadata"]
        if payload.get("tags"):
            attributes["tags"] = payload["tags"]
        parent = payload.get("parent_span_id")
        start = _time(payload.get("start_time")) or datetime.now(UTC)
        error = payload.get("error_info")
        return Span(
            span_id=span_id_for(payload["id"]),
            trace_id=trace_id,
            parent_id=span_id_for(parent) if parent and parent in known else None,
            name=str(payload.get("name") or "span"),
            kind=OPIK_KIND.get(str(payload.get("type")), "general"),  # type: ignore[arg-type]
            start_time=start,
            end_time=_time(payload.get("end_time")),
            input=payload.get("input"),
            output=_unwrap_output(payload.get("output")),
            error=parse_error(error, self._classifier) if isinstance(error, dict) else None,
            attributes=attributes,
        )

    def _to_trace(self, payload: dict[str, Any], span_payloads: dict[str, dict[str, Any]]) -> Trace:
        if self._code_version is None:
            self._code_version = read_code_version(self._root)
        trace_id = trace_id_for(payload["id"])
        known = set(span_payloads)
        spans = [self._to_span(p, trace_id, known) for p in span_payloads.values() if p.get("id")]
        metadata = dict(payload.get("metadata") or {})
        metadata["opik_trace_id"] = payload["id"]
        config = metadata.get("config") if isinstance(metadata.get("config"), dict) else None
        error_payload = payload.get("error_info")
        error = parse_error(error_payload, self._classifier) if isinstance(error_payload, dict) else None
        name = str(payload.get("name") or "trace")
        inp = payload.get("input")
        return Trace(
            trace_id=trace_id,
            entry_point=self.resolve_entry_point(name),
            name=name,
            project=str(payload.get("project_name") or "default"),
            environment=str(payload.get("environment") or self.environment or "development"),
            input=inp if isinstance(inp, dict) else ({"input": inp} if inp is not None else {}),
            output=_unwrap_output(payload.get("output")),
            status="error" if error is not None else "ok",
            error=error,
            start_time=_time(payload.get("start_time"))
            or min((s.start_time for s in spans), default=datetime.now(UTC)),
            end_time=_time(payload.get("end_time")),
            config=config,
            config_hash=config_hash(config) if config is not None else None,
            code_version=self._code_version,
            tags=[str(t) for t in payload.get("tags") or []],
            metadata=metadata,
            spans=sorted(spans, key=lambda s: s.start_time),
        )


def install_tap(
    store: Store | str | Path | None = None,
    *,
    entry_points: dict[str, str] | None = None,
) -> OpikTap:
    """Start feeding ``@opik.track`` traces into the tracemend store (default: the configured one)."""
    return OpikTap(store, entry_points=entry_points).install()
