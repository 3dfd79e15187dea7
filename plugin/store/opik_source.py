"""Opik as a trace source: ``opik://HOST:PORT/PROJECT`` (``opik+https://`` for TLS; ``opik:///PROJECT`` for
the server the opik SDK is configured for: ``OPIK_URL_OVERRIDE``, ``~/.opik.config``, Opik Cloud).

Reads go through the opik SDK's REST client (``Opik.rest_client``), filters pushed to the server:

- traces by project, page by page in start-time order, with a ``filters`` string (Opik's filter JSON:
  ``start_time >=``/``<``, ``error_info is_not_empty``, ``metadata`` keys): ``GET /v1/private/traces``;
- counts: the ``total`` of a one-item page for each time range;
- one trace: ``GET /v1/private/traces/{id}`` and its spans, ``GET /v1/private/spans?trace_id=``;
- code versions: one pass over the project's traces, keeping one row per version.

A trace exported by ``tracemend export opik`` carries ``metadata.tracemend`` (entry point, status, code
version, config, the error record) and reads back as it was stored; a trace of an Opik integration maps
its ``error_info`` (frames parsed from the traceback), input, output, model, usage and cost.

Options (``?key=value``): ``workspace``, ``version`` (the metadata key holding the code version, default
``tracemend.code_version.commit``), ``page_size`` (default 200). ``OPIK_API_KEY`` as the SDK reads it.
The opik SDK is imported when the source opens.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracemend.errors import SourceError
from tracemend.records import CodeVersion, ErrorInfo, Span, Trace
from tracemend.store.reading import VersionRow
from tracemend.store.remote import RemoteSource, RootQuery, option
from tracemend.store.tracebacks import FrameMapper, parse_stacktrace

DEFAULT_VERSION_KEY = "tracemend.code_version.commit"
_KINDS = {"llm": "llm", "tool": "tool", "general": "general", "guardrail": "general"}


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _unwrap(value: Any, key: str) -> Any:
    # The exporter (and the opik SDK) wrap values that are not objects as {key: value}.
    return value[key] if isinstance(value, dict) and set(value) == {key} else value


class OpikSource(RemoteSource):
    kind = "opik"

    def __init__(self, base: str | None, project: str, **options: str) -> None:
        where = base.split("://", 1)[-1] if base else ""
        spec = f"opik://{where}/{project}"
        opts = option(options, ("workspace", "version", "page_size"), spec)
        super().__init__(spec, project)
        try:
            self.page_size = max(1, min(2000, int(opts.get("page_size", 200))))
        except ValueError as exc:
            raise SourceError(f"{spec}: {exc}") from None
        self.version_key = opts.get("version") or DEFAULT_VERSION_KEY
        from tracemend.project import project_root

        self.frames = FrameMapper(Path(project_root()))
        try:
            import opik

            self.client = opik.Opik(
                project_name=project, workspace=opts.get("workspace"), host=base, _show_misconfiguration_message=False
            )
        except Exception as exc:  # the SDK's configuration errors name what is missing
            raise SourceError(f"cannot open Opik for {spec}: {exc}") from None
        self.rest = self.client.rest_client
        self._call(lambda: self.rest.projects.retrieve_project(name=project), f"no project {project!r} in Opik")

    def close(self) -> None:
        super().close()
        try:
            self.client.end()
        except Exception:  # ending a client that sent nothing cannot fail in a way that matters
            pass

    def _call(self, fn: Any, missing: str | None = None) -> Any:
        from opik.rest_api.core.api_error import ApiError

        try:
            return fn()
        except ApiError as exc:
            if exc.status_code == 404 and missing is not None:
                raise SourceError(f"{missing} at {self.location}") from None
            if exc.status_code in (401, 403):
                raise SourceError(f"Opik at {self.location} refused the request: set OPIK_API_KEY and the workspace") from None
            raise SourceError(f"Opik at {self.location} answered {exc.status_code}: {str(exc.body)[:300]}") from None
        except OSError as exc:
            raise SourceError(f"cannot reach Opik for {self.location}: {exc}") from None
        except Exception as exc:  # httpx errors are not OSErrors
            if type(exc).__module__.startswith("httpx"):
                raise SourceError(f"cannot reach Opik for {self.location}: {exc}") from None
            raise

    # --- filters -------------------------------------------------------------------------------------

    def _filters(self, query: RootQuery, lo: datetime | None = None, hi: datetime | None = None) -> str | None:
        items: list[dict[str, str]] = []
        since, until = (lo, hi) if (lo or hi) else (query.since, query.until)
        if since is not None:
            items.append({"field": "start_time", "operator": ">=", "value": since.isoformat()})
        if until is not None:
            items.append({"field": "start_time", "operator": "<", "value": until.isoformat()})
        if query.failing is True:
            items.append({"field": "error_info", "operator": "is_not_empty", "value": ""})
        elif query.failing is False:
            items.append({"field": "error_info", "operator": "is_empty", "value": ""})
        if query.entry_point:
            items.append({"field": "metadata", "key": "tracemend.entry_point", "operator": "=", "value": query.entry_point})
        if query.revision is not None:
            items.append({"field": "metadata", "key": self.version_key, "operator": "=", "value": query.revision})
        return json.dumps(items) if items else None

    def _pages(self, query: RootQuery) -> Iterator[Any]:
        sorting = json.dumps([{"field": "start_time", "direction": "DESC" if query.newest_first else "ASC"}])
        filters = self._filters(query)
        page, seen = 1, 0
        while True:
            size = self.page_size if query.limit is None else max(1, min(self.page_size, query.limit - seen))
            result = self._call(
                lambda p=page, s=size: self.rest.traces.get_traces_by_project(
                    project_name=self.project, page=p, size=s, filters=filters, sorting=sorting
                )
            )
            content = list(result.content or [])
            for item in content:
                yield item
                seen += 1
                if query.limit is not None and seen >= query.limit:
                    return
            if len(content) < size:
                return
            page += 1

    # --- primitives ----------------------------------------------------------------------------------

    def roots(self, query: RootQuery) -> Iterator[Trace]:
        for item in self._pages(query):
            trace = self.trace(item)
            if query.entry_point == "" and trace.entry_point:
                continue
            yield trace

    def counts(self, ranges: Sequence[tuple[datetime | None, datetime | None]], query: RootQuery) -> list[int]:
        out = []
        for lo, hi in ranges:
            filters = self._filters(query, lo, hi)
            page = self._call(
                lambda f=filters: self.rest.traces.get_traces_by_project(
                    project_name=self.project, page=1, size=1, filters=f
                )
            )
            out.append(int(page.total or 0))
        return out

    def _find(self, trace_id: str) -> Any:
        """The Opik trace with our id (exported by tracemend), else the one whose UUID it is."""
        mine = json.dumps([{"field": "metadata", "key": "tracemend.trace_id", "operator": "=", "value": trace_id}])
        page = self._call(
            lambda: self.rest.traces.get_traces_by_project(project_name=self.project, page=1, size=1, filters=mine)
        )
        if page.content:
            return page.content[0]
        try:
            opik_id = str(uuid.UUID(trace_id))
        except ValueError:
            return None
        try:
            return self._call(lambda: self.rest.traces.get_trace_by_id(opik_id), "no trace")
        except SourceError:
            return None

    def fetch_trace(self, trace_id: str) -> Trace | None:
        item = self._find(trace_id)
        if item is None:
            return None
        opik_id = str(item.id)
        spans: list[Any] = []
        page = 1
        while True:
            result = self._call(
                lambda p=page: self.rest.spans.get_spans_by_project(
                    project_name=self.project, trace_id=opik_id, page=p, size=self.page_size
                )
            )
            content = list(result.content or [])
            spans.extend(content)
            if len(content) < self.page_size:
                break
            page += 1
        return self.trace(item, spans)

    def trace_ids(self, prefix: str, limit: int) -> list[str]:
        # Opik ids are UUIDv7 (time first): a prefix is matched among the newest traces, page by page.
        found: list[str] = []
        for item in self._pages(RootQuery(newest_first=True)):
            tid = _trace_id(item)
            if tid.startswith(prefix):
                found.append(tid)
                if len(found) >= limit:
                    break
        return found

    def scan_versions(self) -> list[VersionRow]:
        rows: dict[str, list[Any]] = {}
        for item in self._pages(RootQuery()):
            commit = _get(item.metadata, self.version_key)
            if commit is None:
                continue
            start = _aware(item.start_time)
            row = rows.setdefault(str(commit), [start, start, 0])
            row[0], row[1], row[2] = min(row[0], start), max(row[1], start), row[2] + 1
        if not rows:
            self.note(
                f"traces from {self.location} carry no code version (metadata.{self.version_key}): pass "
                "--since or --revision, or name the metadata key with ?version=KEY"
            )
        return [(c, a, b, n) for c, (a, b, n) in rows.items()]

    # --- mapping -------------------------------------------------------------------------------------

    def _error(self, info: Any) -> ErrorInfo | None:
        if info is None:
            return None
        data = info if isinstance(info, dict) else info.dict()
        return parse_stacktrace(
            str(data.get("traceback") or ""),
            exc_type=data.get("exception_type"),
            message=data.get("message"),
            mapper=self.frames,
        )

    def trace(self, item: Any, spans: list[Any] | None = None) -> Trace:
        metadata = dict(item.metadata) if isinstance(item.metadata, dict) else {}
        ours = metadata.pop("tracemend", None)
        ours = ours if isinstance(ours, dict) else {}
        # Our exporter's own record of the error is exact (frames with modules); else the traceback.
        recorded = ours.get("error")
        error = ErrorInfo.model_validate(recorded) if isinstance(recorded, dict) else self._error(item.error_info)
        status = ours.get("status") if ours.get("status") in ("ok", "error", "failed_assertion") else (
            "error" if item.error_info is not None else "ok"
        )
        version = ours.get("code_version") if isinstance(ours.get("code_version"), dict) else {}
        commit = _get(item.metadata, self.version_key)
        inp = item.input if isinstance(item.input, dict) else ({} if item.input is None else {"input": item.input})
        ids = {s.id: _span_id(s) for s in spans or []}
        trace_id = _trace_id(item)
        return Trace(
            trace_id=trace_id,
            entry_point=str(ours.get("entry_point") or ""),
            name=item.name or "trace",
            project=self.project,
            environment=str(ours.get("environment") or item.environment or "development"),
            input=inp,
            output=_unwrap(item.output, "output"),
            status=status,
            error=error,
            start_time=_aware(item.start_time),  # type: ignore[arg-type]
            end_time=_aware(item.end_time),
            config=ours.get("config") if isinstance(ours.get("config"), dict) else None,
            config_hash=ours.get("config_hash"),
            config_class=ours.get("config_class"),
            config_param=ours.get("config_param"),
            code_version=CodeVersion(
                commit=str(commit) if commit is not None else None,
                dirty=version.get("dirty") is True,
                branch=version.get("branch") if isinstance(version.get("branch"), str) else None,
            ),
            tags=[str(t) for t in item.tags or [] if not str(t).startswith("status:")],
            metadata=metadata,
            spans=sorted((self._span(s, ids, trace_id) for s in spans or []),
                         key=lambda s: s.start_time),
        )

    def _span(self, item: Any, ids: dict[str, str], trace_id: str) -> Span:
        metadata = dict(item.metadata) if isinstance(item.metadata, dict) else {}
        ours = metadata.pop("tracemend", None)
        ours = dict(ours) if isinstance(ours, dict) else {}
        attributes: dict[str, Any] = {}
        if item.model:
            attributes["model"] = item.model
        if item.usage:
            attributes["usage"] = dict(item.usage)
        if item.total_estimated_cost is not None:
            attributes["cost"] = item.total_estimated_cost
        if metadata:
            attributes["metadata"] = metadata
        kind = ours.pop("kind", None)
        ours.pop("span_id", None)
        error_record = ours.pop("error", None)
        attributes.update(ours)
        error = ErrorInfo.model_validate(error_record) if isinstance(error_record, dict) else self._error(item.error_info)
        return Span(
            span_id=ids[item.id],
            trace_id=trace_id,
            parent_id=ids.get(item.parent_span_id) if item.parent_span_id else None,
            name=item.name or "span",
            kind=kind if kind in ("agent", "llm", "tool", "retrieval", "general") else _KINDS.get(str(item.type), "general"),
            start_time=_aware(item.start_time),  # type: ignore[arg-type]
            end_time=_aware(item.end_time),
            input=_unwrap(item.input, "input"),
            output=_unwrap(item.output, "output"),
            error=error,
            attributes=attributes,
        )


def _trace_id(item: Any) -> str:
    """Our trace id when tracemend exported the trace, else the Opik UUID without dashes."""
    ours = item.metadata.get("tracemend") if isinstance(item.metadata, dict) else None
    if isinstance(ours, dict) and isinstance(ours.get("trace_id"), str):
        return ours["trace_id"]
    return str(item.id).replace("-", "")


def _span_id(item: Any) -> str:
    ours = item.metadata.get("tracemend") if isinstance(item.metadata, dict) else None
    if isinstance(ours, dict) and isinstance(ours.get("span_id"), str):
        return ours["span_id"]
    return hashlib.blake2b(str(item.id).encode(), digest_size=8).hexdigest()
