"""A loopback HTTP server answering the Opik REST endpoints the opik SDK calls, for the Opik source tests.

Opik's backend needs Docker (ClickHouse, MySQL, Redis, the Java service), which these machines cannot
run. This server implements, in memory, the few endpoints tracemend's Opik source and exporter use,
shaped as Opik's published OpenAPI spec (``sdks/code_generation/fern/openapi/openapi.yaml`` in
comet-ml/opik) describes them:

- ``POST /v1/private/traces/batch``, ``POST /v1/private/spans/batch`` (``TraceBatch_Write``,
  ``SpanBatch_Write``; gzip bodies as the SDK sends them), ``PATCH /v1/private/traces/{id}`` and
  ``/spans/{id}``: writes, merged by id;
- ``GET /v1/private/traces`` (``getTracesByProject``: ``project_name``, ``page``, ``size``, ``filters``,
  ``sorting`` → ``TracePage_Public``), ``GET /v1/private/traces/{id}`` (``Trace_Public``);
- ``GET /v1/private/spans`` (``getSpansByProject``: ``project_name``, ``trace_id``, ``page``, ``size``
  → ``SpanPage_Public``);
- ``POST /v1/private/projects/retrieve`` (``ProjectRetrieve`` → ``ProjectDetailed``, 404 when unknown);
- ``GET /is-alive/ping``: the SDK's health check (it sends nothing to a server that fails it).

Filters (the ``filters`` query parameter, a JSON list of ``{field, operator, key, value}``) cover what the
source sends: ``start_time`` with ``>=``/``<``, ``error_info`` with ``is_empty``/``is_not_empty``,
``metadata`` keys (a dotted JSON path) with ``=``. Anything else is refused with 400, so a query the server
would not understand fails the test instead of passing by accident. Every request is recorded.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _sort_key(row: dict[str, Any], field: str) -> Any:
    return _time(row[field]) if field.endswith("_time") else str(row.get(field) or "")


def _path_get(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


class OpikServer:
    def __init__(self) -> None:
        self.traces: dict[str, dict[str, Any]] = {}
        self.spans: dict[str, dict[str, Any]] = {}
        self.projects: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def __enter__(self) -> OpikServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- writes --------------------------------------------------------------------------------------

    def _merge(self, table: dict[str, dict[str, Any]], item: dict[str, Any]) -> None:
        row = table.setdefault(item["id"], {})
        row.update({k: v for k, v in item.items() if v is not None})
        if row.get("project_name"):
            self.projects.add(row["project_name"])

    # --- reads ---------------------------------------------------------------------------------------

    @staticmethod
    def _matches(row: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
        for f in filters:
            field, op, value = f.get("field"), f.get("operator"), f.get("value")
            if field == "start_time" and op in (">=", "<"):
                start = _time(row["start_time"])
                bound = _time(value)
                if (op == ">=" and start < bound) or (op == "<" and start >= bound):
                    return False
            elif field == "error_info" and op in ("is_empty", "is_not_empty"):
                if (row.get("error_info") is None) != (op == "is_empty"):
                    return False
            elif field == "metadata" and op == "=" and f.get("key"):
                if str(_path_get(row.get("metadata"), f["key"])) != value:
                    return False
            else:
                raise ValueError(f"filter not supported by the loopback Opik server: {f}")
        return True

    def _page(self, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        page, size = int(query.get("page", 1)), int(query.get("size", 10))
        chunk = rows[(page - 1) * size : page * size]
        return {"page": page, "size": len(chunk), "total": len(rows), "content": chunk}

    def list_traces(self, query: dict[str, str]) -> dict[str, Any]:
        filters = json.loads(query["filters"]) if query.get("filters") else []
        with self._lock:
            rows = [
                dict(r) for r in self.traces.values()
                if r.get("project_name") == query.get("project_name") and self._matches(r, filters)
            ]
        sorting = json.loads(query["sorting"]) if query.get("sorting") else [{"field": "id", "direction": "DESC"}]
        for sort in reversed(sorting):
            rows.sort(key=lambda r, f=sort["field"]: _sort_key(r, f), reverse=sort.get("direction") == "DESC")
        return self._page(rows, query)

    def list_spans(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            rows = [
                dict(r) for r in self.spans.values()
                if r.get("project_name") == query.get("project_name")
                and (not query.get("trace_id") or r.get("trace_id") == query["trace_id"])
            ]
        rows.sort(key=lambda r: r["start_time"])
        return self._page(rows, query)

    # --- HTTP ----------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if raw[:2] == b"\x1f\x8b":
                    raw = gzip.decompress(raw)
                return json.loads(raw) if raw else None

            def _send(self, status: int, body: Any = None) -> None:
                payload = json.dumps(body, default=str).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _route(self) -> tuple[str, dict[str, str]]:
                parts = urlsplit(self.path)
                owner.requests.append((self.command, parts.path))
                path = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else parts.path
                return path, {k: v[-1] for k, v in parse_qs(parts.query).items()}

            def do_GET(self) -> None:
                path, query = self._route()
                try:
                    if path.startswith("/is-alive/"):  # the SDK's health check before it sends anything
                        return self._send(200, {})
                    if path == "/v1/private/traces":
                        return self._send(200, owner.list_traces(query))
                    if path == "/v1/private/spans":
                        return self._send(200, owner.list_spans(query))
                    if path.startswith("/v1/private/traces/"):
                        found = owner.traces.get(path.rsplit("/", 1)[1])
                        return self._send(200, found) if found else self._send(404, {"errors": ["not found"]})
                except ValueError as exc:
                    return self._send(400, {"errors": [str(exc)]})
                self._send(404, {"errors": [f"no route {path}"]})

            def do_POST(self) -> None:
                path, _ = self._route()
                body = self._body()
                with owner._lock:
                    if path == "/v1/private/traces/batch":
                        for item in body["traces"]:
                            owner._merge(owner.traces, item)
                        return self._send(204)
                    if path == "/v1/private/spans/batch":
                        for item in body["spans"]:
                            owner._merge(owner.spans, item)
                        return self._send(204)
                    if path == "/v1/private/projects/retrieve":
                        name = body.get("name")
                        if name in owner.projects:
                            return self._send(200, {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "name": name})
                        return self._send(404, {"errors": [f"Project {name} not found"]})
                self._send(204)

            def do_PATCH(self) -> None:
                path, _ = self._route()
                body = self._body() or {}
                kind, _, item_id = path.removeprefix("/v1/private/").partition("/")
                with owner._lock:
                    table = owner.traces if kind == "traces" else owner.spans
                    owner._merge(table, {**body, "id": item_id})
                self._send(204)

        return Handler
