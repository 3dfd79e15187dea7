"""What every remote trace source shares: the :class:`~tracemend.store.source.TraceSource` reads, built on
four primitives a backend implements (root spans by query, counts over time ranges, one trace with its
spans, the code versions seen), and plain notes on what the backend's traces lack.

A trace is its root span: its status, error, entry point and code version are the root's. Failing traces
are streamed page by page in time order and every other count is asked of the server, so memory does not
grow with the number of traces.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Unpack

from tracemend.errors import SourceError, StoreError
from tracemend.store.reading import NO_ENTRY_POINT, FailureRow, VersionRow
from tracemend.store.rows import to_us

if TYPE_CHECKING:
    from tracemend.records import Trace
    from tracemend.store.sqlite import TraceFilter

FAILING = ("error", "failed_assertion")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class RootQuery:
    """Which root spans to read: the Store's trace filters, as a backend pushes them to its server."""

    since: datetime | None = None
    until: datetime | None = None
    failing: bool | None = None  # True: ERROR status; False: not ERROR; None: any
    statuses: tuple[str, ...] | None = None  # exact tracemend statuses, checked after mapping
    entry_point: str | None = None
    revision: str | None = None  # a full code version as code_versions() lists it
    newest_first: bool = False
    limit: int | None = None


def option(options: dict[str, str], allowed: Sequence[str], spec: str) -> dict[str, str]:
    """The source URL's ``?key=value`` options, refusing unknown ones by name."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise SourceError(
            f"{spec}: unknown option {', '.join(unknown)} (known: {', '.join(allowed) or 'none'})"
        )
    return options


class RemoteSource(ABC):
    """A trace source on a server. Subclasses implement the primitives; the reads are built here."""

    kind = "remote"
    location: str

    def __init__(self, location: str, project: str) -> None:
        self.location = location
        self.project = project
        self.notes: list[str] = []
        self._versions: list[VersionRow] | None = None

    # --- what a backend implements --------------------------------------------------------------------

    @abstractmethod
    def roots(self, query: RootQuery) -> Iterator[Trace]:
        """Traces (without spans) whose root spans match ``query``, in time order, page by page."""

    @abstractmethod
    def counts(self, ranges: Sequence[tuple[datetime | None, datetime | None]], query: RootQuery) -> list[int]:
        """How many root spans match ``query`` in each ``[start, end)`` range (the server counts)."""

    @abstractmethod
    def fetch_trace(self, trace_id: str) -> Trace | None:
        """One trace with all of its spans, by full id."""

    @abstractmethod
    def trace_ids(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` trace ids starting with ``prefix``."""

    @abstractmethod
    def scan_versions(self) -> list[VersionRow]:
        """Every code version with its first and last trace time and trace count."""

    def close(self) -> None:
        """Forget what was cached; a closed source opens nothing again by itself."""
        self._versions = None

    def __enter__(self) -> RemoteSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- notes -----------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Say once what the traces lack (the CLI prints notes after a command)."""
        if text not in self.notes:
            self.notes.append(text)

    def _check(self, trace: Trace) -> Trace:
        if not trace.entry_point:
            self.note(f"traces from {self.location}: {NO_ENTRY_POINT}")
        return trace

    # --- the TraceSource reads -------------------------------------------------------------------------

    def _query(self, filters: dict[str, Any], **more: Any) -> RootQuery:
        status = filters.get("status")
        statuses: tuple[str, ...] | None = None
        failing: bool | None = None
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            bad = set(statuses) - {"ok", *FAILING}
            if bad:
                raise StoreError(f"unknown trace status {sorted(bad)[0]!r}")
            if set(statuses) <= set(FAILING):
                failing = True
            elif statuses == ("ok",):
                failing = False
        revision = filters.get("revision")
        if revision:
            revision = self._full_revision(revision)
        return RootQuery(
            since=filters.get("since"),
            until=filters.get("until"),
            failing=failing,
            statuses=statuses,
            entry_point=filters.get("entry_point"),
            revision=revision,
            **more,
        )

    def _full_revision(self, revision: str) -> str:
        wanted = revision.strip().lower()
        matches = [c for c, *_ in self.code_versions() if c.lower().startswith(wanted)]
        return matches[0] if len(matches) == 1 else revision

    def score_rows(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[Any]:
        """A server holds no tracemend scores: judged failures are analyzed from the local store."""
        return iter(())

    def iter_failures(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[FailureRow]:
        query = RootQuery(since=since, until=until, failing=True, statuses=FAILING)
        for trace in self.roots(query):
            if trace.status not in FAILING:
                continue
            self._check(trace)
            error = trace.error.model_dump_json() if trace.error is not None else None
            meta = json.dumps(trace.metadata, default=repr) if error is None else None
            output = json.dumps(trace.output, default=repr) if error is None else None
            yield (
                trace.trace_id,
                to_us(trace.start_time),
                trace.status,
                trace.entry_point,
                trace.code_version.commit,
                error,
                meta,
                output,
            )

    def count(self, **filters: Unpack[TraceFilter]) -> int:
        query = self._query(dict(filters))
        if query.revision is not None and query.revision not in {c for c, *_ in self.code_versions()}:
            return 0
        return self.counts([(query.since, query.until)], query)[0]

    def count_bins(self, *, since: datetime, until: datetime, bin_seconds: float, status: Any = None) -> list[int]:
        step = timedelta(seconds=bin_seconds)
        ranges: list[tuple[datetime | None, datetime | None]] = []
        lo = since
        while lo < until:
            ranges.append((lo, min(lo + step, until)))
            lo += step
        return self.counts(ranges, self._query({"status": status})) if ranges else []

    def code_versions(self) -> list[VersionRow]:
        if self._versions is None:
            self._versions = sorted(self.scan_versions(), key=lambda v: v[1])
        return self._versions

    def first_trace_by_revision(self) -> list[tuple[str, datetime]]:
        return [(commit, first) for commit, first, _last, _n in self.code_versions()]

    def get_trace(self, trace_id: str, *, with_spans: bool = True) -> Trace | None:
        """A trace by id or by an unambiguous id prefix (as the CLI prints them)."""
        wanted = trace_id.strip().lower()
        if not wanted:
            return None
        if len(wanted) < 32 and set(wanted) <= _HEX:
            ids = self.trace_ids(wanted, 2)
            if len(ids) > 1:
                raise StoreError(f"Trace id prefix {wanted!r} is ambiguous; give more characters.")
            if not ids:
                return None
            wanted = ids[0]
        trace = self.fetch_trace(wanted)
        if trace is not None and not with_spans:
            trace.spans = []
        return self._check(trace) if trace is not None else None

    def iter_traces(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        with_spans: bool = False,
        **filters: Unpack[TraceFilter],
    ) -> Iterator[Trace]:
        query = self._query(dict(filters), newest_first=newest_first)
        # The server can stop at ``limit`` only when it filters everything itself.
        query = replace(query, limit=limit if query.statuses is None else None)
        taken = 0
        for trace in self.roots(query):
            if query.statuses is not None and trace.status not in query.statuses:
                continue
            if limit is not None and taken >= limit:
                return
            taken += 1
            if with_spans:
                full = self.fetch_trace(trace.trace_id)
                trace = full if full is not None else trace
            yield self._check(trace)
