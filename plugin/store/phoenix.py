"""Arize Phoenix as a trace source: ``phoenix://HOST:PORT/PROJECT`` (``phoenix+https://`` for TLS).

Reads go through Phoenix's own API and push every filter to its server (PostgreSQL or SQLite behind it):

- the project by name: ``GET /v1/projects/{name}`` (REST);
- root spans by time range and status, page by page in start-time order: the GraphQL ``spans``
  connection with a ``filterCondition`` (``parent_id is None and status_code == 'ERROR'``) and a cursor;
- counts per time range (hourly traffic, the window): GraphQL ``recordCount`` of root spans, one request
  for many ranges;
- code versions: the attribute that holds them (``?version=ATTR``, else the first of
  ``tracemend.code.commit``, ``vcs.ref.head.revision``, ``vcs.repository.ref.revision``,
  ``service.version`` found on root spans), each value found by asking for the newest root span whose
  value is not among those already seen, then its first and last trace and count;
- one trace: every span with that ``trace_id``.

Phoenix keeps span attributes but not resource attributes: a code version or host name set only on the
OTel resource does not reach it; put the version on the spans (see docs/sources.md).

Options (``?key=value``): ``version`` (the attribute holding the code version), ``page_size`` (spans per
request, default 500), ``timeout`` (seconds per request, default 60). ``PHOENIX_API_KEY`` is sent as a
bearer token when set.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tracemend.errors import SourceError
from tracemend.records import Trace
from tracemend.store.openinference import VERSION_ATTRIBUTES, OtelSpan, SpanMapper, attr
from tracemend.store.reading import VersionRow
from tracemend.store.remote import RemoteSource, RootQuery, option
from tracemend.store.tracebacks import FrameMapper

_SPAN_FIELDS = """
fragment SpanFields on Span {
  spanId parentId name statusCode statusMessage startTime endTime
  context { traceId }
  attributes
  events { name timestamp attributes }
}"""
_SPANS = (
    """
query Spans($id: ID!, $first: Int!, $after: String, $range: TimeRange, $filter: String, $sort: SpanSort) {
  node(id: $id) { ... on Project {
    spans(first: $first, after: $after, timeRange: $range, filterCondition: $filter, sort: $sort) {
      pageInfo { hasNextPage endCursor }
      edges { node { ...SpanFields } }
    }
  } }
}"""
    + _SPAN_FIELDS
)
MAX_VERSIONS = 500
# Phoenix refuses a query with more than 50 aliased fields.
COUNTS_PER_REQUEST = 50


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def literal(value: Any) -> str:
    """A value as a literal of Phoenix's filter language (Python syntax)."""
    return repr(value) if isinstance(value, str | int | float | bool) else repr(str(value))


def attribute_ref(name: str) -> str:
    """``a.b.c`` as ``attributes['a']['b']['c']`` (Phoenix stores dotted attributes nested)."""
    return "attributes" + "".join(f"[{p!r}]" for p in name.split("."))


class PhoenixSource(RemoteSource):
    kind = "phoenix"

    def __init__(self, base: str, project: str, **options: str) -> None:
        spec = f"phoenix://{urllib.parse.urlsplit(base).netloc}/{project}"
        opts = option(options, ("version", "page_size", "timeout"), spec)
        super().__init__(spec, project)
        self.base = base.rstrip("/")
        try:
            self.page_size = max(1, min(1000, int(opts.get("page_size", 500))))
            self.timeout = float(opts.get("timeout", 60))
        except ValueError as exc:
            raise SourceError(f"{spec}: {exc}") from None
        self._version_option = opts.get("version")
        self._version_attr: str | None | bool = self._version_option or False  # False: not looked up yet
        self._raw_versions: dict[str, Any] = {}
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get("PHOENIX_API_KEY")
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.mapper = SpanMapper(_frame_mapper(), project=project, version_attribute=self._version_option)
        self.project_id = self._project_id()

    # --- HTTP ----------------------------------------------------------------------------------------

    def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code in (401, 403):
                raise SourceError(
                    f"Phoenix at {self.base} refused the request ({exc.code}): set PHOENIX_API_KEY"
                ) from None
            if exc.code == 404:
                raise
            raise SourceError(f"Phoenix at {self.base} answered {exc.code} to {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"cannot reach Phoenix at {self.base}: {reason}") from None
        except ValueError:
            raise SourceError(f"{self.base}{path} did not answer JSON: is this a Phoenix server?") from None

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        answer = self._request("/graphql", {"query": query, "variables": variables})
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors:
            raise SourceError(f"Phoenix at {self.base}: {errors[0].get('message', errors[0])}")
        node = (answer.get("data") or {}).get("node")
        if node is None:
            raise SourceError(f"Phoenix at {self.base} no longer has project {self.project!r}")
        return node

    def _project_id(self) -> str:
        name = urllib.parse.quote(self.project, safe="")
        try:
            answer = self._request(f"/v1/projects/{name}")
        except urllib.error.HTTPError:
            known = ""
            try:
                listed = self._request("/v1/projects?limit=100")
                names = [p.get("name") for p in listed.get("data", [])]
                known = f" (it has: {', '.join(str(n) for n in names)})" if names else ""
            except (SourceError, urllib.error.HTTPError):
                pass
            raise SourceError(f"no project {self.project!r} in Phoenix at {self.base}{known}") from None
        try:
            return str(answer["data"]["id"])
        except (KeyError, TypeError):
            raise SourceError(f"{self.base} did not answer like Phoenix for project {self.project!r}") from None

    # --- filters -------------------------------------------------------------------------------------

    def version_attribute(self) -> str | None:
        """The attribute holding the code version: configured, else the first one root spans carry."""
        if self._version_attr is False:
            fields = " ".join(
                f"v{i}: recordCount(filterCondition: {json.dumps(self._root(f'{attribute_ref(a)} is not None'))})"
                for i, a in enumerate(VERSION_ATTRIBUTES)
            )
            node = self._graphql(f"query($id: ID!) {{ node(id: $id) {{ ... on Project {{ {fields} }} }} }}",
                                 {"id": self.project_id})
            found = [a for i, a in enumerate(VERSION_ATTRIBUTES) if node.get(f"v{i}")]
            self._version_attr = found[0] if found else None
            if found:
                self.mapper.version_attribute = found[0]
        return self._version_attr or None

    @staticmethod
    def _root(*more: str) -> str:
        return " and ".join(("parent_id is None", *more))

    def _condition(self, query: RootQuery) -> str:
        parts = []
        if query.failing is True:
            parts.append("status_code == 'ERROR'")
        elif query.failing is False:
            parts.append("status_code != 'ERROR'")
        if query.entry_point is not None:
            ref = attribute_ref("tracemend.entry_point")
            parts.append(f"{ref} == {literal(query.entry_point)}" if query.entry_point else f"{ref} is None")
        if query.revision is not None:
            name = self.version_attribute()
            raw = self._raw_versions.get(query.revision, query.revision)
            parts.append(f"{attribute_ref(name)} == {literal(raw)}" if name else "status_code == 'NONE'")
        return self._root(*parts)

    @staticmethod
    def _range(since: datetime | None, until: datetime | None) -> dict[str, str] | None:
        if since is None and until is None:
            return None
        out = {}
        if since is not None:
            out["start"] = since.isoformat()
        if until is not None:
            out["end"] = until.isoformat()
        return out

    # --- spans ---------------------------------------------------------------------------------------

    def _spans(
        self, condition: str, *, since: datetime | None = None, until: datetime | None = None,
        newest_first: bool = False, limit: int | None = None,
    ) -> Iterator[OtelSpan]:
        after = None
        seen = 0
        while True:
            first = self.page_size if limit is None else max(1, min(self.page_size, limit - seen))
            node = self._graphql(_SPANS, {
                "id": self.project_id, "first": first, "after": after, "range": self._range(since, until),
                "filter": condition, "sort": {"col": "startTime", "dir": "desc" if newest_first else "asc"},
            })
            page = node["spans"]
            for edge in page["edges"]:
                yield _otel_span(edge["node"])
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def roots(self, query: RootQuery) -> Iterator[Trace]:
        condition = self._condition(query)
        for span in self._spans(
            condition, since=query.since, until=query.until, newest_first=query.newest_first, limit=query.limit
        ):
            yield self.mapper.trace(span)

    def counts(self, ranges: Sequence[tuple[datetime | None, datetime | None]], query: RootQuery) -> list[int]:
        condition = json.dumps(self._condition(query))
        out: list[int] = []
        for start in range(0, len(ranges), COUNTS_PER_REQUEST):
            chunk = ranges[start : start + COUNTS_PER_REQUEST]
            fields = []
            for i, (lo, hi) in enumerate(chunk):
                window = self._range(lo, hi)
                arg = f"timeRange: {{{', '.join(f'{k}: {json.dumps(v)}' for k, v in window.items())}}}, " if window else ""
                fields.append(f"c{i}: recordCount({arg}filterCondition: {condition})")
            node = self._graphql(
                f"query($id: ID!) {{ node(id: $id) {{ ... on Project {{ {' '.join(fields)} }} }} }}",
                {"id": self.project_id},
            )
            out.extend(int(node[f"c{i}"]) for i in range(len(chunk)))
        return out

    def fetch_trace(self, trace_id: str) -> Trace | None:
        spans = list(self._spans(f"trace_id == {literal(trace_id)}"))
        if not spans:
            return None
        ids = {s.span_id for s in spans}
        roots = [s for s in spans if not s.parent_id] or [s for s in spans if s.parent_id not in ids]
        root = min(roots or spans, key=lambda s: s.start_time)
        if self._version_attr is False:
            self.version_attribute()
        return self.mapper.trace(root, spans)

    def trace_ids(self, prefix: str, limit: int) -> list[str]:
        pad = 32 - len(prefix)
        condition = self._root(f"trace_id >= {literal(prefix + '0' * pad)}", f"trace_id <= {literal(prefix + 'f' * pad)}")
        found: list[str] = []
        for span in self._spans(condition, limit=limit + 1):
            if span.trace_id not in found:
                found.append(span.trace_id)
        return found[:limit]

    def scan_versions(self) -> list[VersionRow]:
        name = self.version_attribute()
        if name is None:
            self.note(
                f"traces from {self.location} carry no code version (looked for "
                f"{', '.join(VERSION_ATTRIBUTES)} on root spans): pass --since or --revision, or name the "
                f"attribute with ?version=ATTR"
            )
            return []
        ref = attribute_ref(name)
        raw_values: list[Any] = []
        while len(raw_values) < MAX_VERSIONS:
            seen = f" and {ref} not in ({', '.join(literal(v) for v in raw_values)},)" if raw_values else ""
            newest = next(self._spans(self._root(f"{ref} is not None{seen}"), newest_first=True, limit=1), None)
            if newest is None:
                break
            value = attr(newest.attributes, name)
            if value is None or value in raw_values:
                break
            raw_values.append(value)
        rows: list[VersionRow] = []
        per_request = COUNTS_PER_REQUEST // 3  # three aliased fields per version
        for start in range(0, len(raw_values), per_request):
            chunk = raw_values[start : start + per_request]
            fields = []
            for i, value in enumerate(chunk):
                cond = json.dumps(self._root(f"{ref} == {literal(value)}"))
                for alias, direction in (("f", "asc"), ("l", "desc")):
                    fields.append(
                        f"{alias}{i}: spans(first: 1, filterCondition: {cond}, sort: {{col: startTime, dir: "
                        f"{direction}}}) {{ edges {{ node {{ startTime }} }} }}"
                    )
                fields.append(f"n{i}: recordCount(filterCondition: {cond})")
            node = self._graphql(
                f"query($id: ID!) {{ node(id: $id) {{ ... on Project {{ {' '.join(fields)} }} }} }}",
                {"id": self.project_id},
            )
            for i, value in enumerate(chunk):
                first_edges, last_edges = node[f"f{i}"]["edges"], node[f"l{i}"]["edges"]
                if not first_edges:
                    continue
                commit = self.mapper.code_version(_with_version(name, value)).commit or str(value)
                self._raw_versions[commit] = value
                rows.append((
                    commit,
                    datetime.fromisoformat(first_edges[0]["node"]["startTime"]),
                    datetime.fromisoformat(last_edges[0]["node"]["startTime"]),
                    int(node[f"n{i}"]),
                ))
        return rows


def _with_version(name: str, value: Any) -> OtelSpan:
    return OtelSpan("", "", None, "", datetime.now(), None, attributes={name: value})


def _otel_span(node: dict[str, Any]) -> OtelSpan:
    attributes = node.get("attributes")
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except ValueError:
            attributes = {}
    return OtelSpan(
        trace_id=node["context"]["traceId"],
        span_id=node["spanId"],
        parent_id=node.get("parentId"),
        name=node.get("name") or "",
        start_time=_time(node["startTime"]),  # type: ignore[arg-type]
        end_time=_time(node.get("endTime")),
        status=node.get("statusCode") or "UNSET",
        status_message=node.get("statusMessage") or "",
        attributes=attributes if isinstance(attributes, dict) else {},
        events=[e for e in node.get("events") or [] if isinstance(e, dict)],
    )


def _frame_mapper() -> FrameMapper:
    from tracemend.project import project_root

    return FrameMapper(Path(project_root()))
