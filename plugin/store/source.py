"""Where the loop reads traces: a trace source.

Analyze, triage, diagnose, rerun and heal read traces through :class:`TraceSource`, a few streaming reads
that the embedded :class:`~tracemend.store.Store` already has. Three sources implement it:

- the local store (the default, unchanged): :class:`LocalSource` wraps a ``Store``;
- Arize Phoenix, ``phoenix://HOST:PORT/PROJECT`` (:mod:`tracemend.store.phoenix`);
- Opik, ``opik://HOST:PORT/PROJECT`` (:mod:`tracemend.store.opik_source`).

Choose one with ``--source``, ``TRACEMEND_SOURCE`` or ``source = "…"`` in ``[tool.tracemend]``; without
one the local store at ``--db`` is read. A source reads only what a stage asks for: the analyzer streams
failing traces and counts the rest, so memory stays flat however many traces there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Unpack, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

from tracemend.errors import SourceError
from tracemend.store.reading import NO_ENTRY_POINT, FailureRow, VersionRow

if TYPE_CHECKING:
    from tracemend.records import Trace
    from tracemend.store.sqlite import Store, TraceFilter

SCHEMES = ("phoenix", "phoenix+https", "opik", "opik+https")
__all__ = ["NO_ENTRY_POINT", "FailureRow", "LocalSource", "TraceSource", "VersionRow", "open_source", "where"]


@runtime_checkable
class TraceSource(Protocol):
    """The reads every stage makes. ``Store`` has them all; remote sources implement the same."""

    def iter_failures(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[FailureRow]: ...

    def score_rows(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[Any]:
        """Judges' and people's pass/fail scores (``ScoreRow``) of the traces started in [since, until)."""
        ...

    def count(self, **filters: Unpack[TraceFilter]) -> int: ...

    def count_bins(
        self, *, since: datetime, until: datetime, bin_seconds: float, status: Any = None
    ) -> list[int]: ...

    def first_trace_by_revision(self) -> list[tuple[str, datetime]]: ...

    def code_versions(self) -> list[VersionRow]: ...

    def get_trace(self, trace_id: str, *, with_spans: bool = True) -> Trace | None: ...

    def iter_traces(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        with_spans: bool = False,
        **filters: Unpack[TraceFilter],
    ) -> Iterator[Trace]: ...

    def close(self) -> None: ...


def where(source: Any) -> str:
    """How to name a source in a message: its location, or a store's path."""
    return str(getattr(source, "location", None) or getattr(source, "path", source))


def notes(source: Any) -> list[str]:
    """What reading from ``source`` showed it lacks, said once each (empty for the local store)."""
    return list(getattr(source, "notes", ()) or ())


class LocalSource:
    """The embedded store as a trace source (the default). Every read is the Store's own."""

    kind = "local"

    def __init__(self, store: Store, *, owned: bool = True) -> None:
        self.store = store
        self.path = store.path
        self.location = str(store.path)
        self.notes: list[str] = []
        self._owned = owned

    def iter_failures(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[FailureRow]:
        return self.store.iter_failures(since=since, until=until)

    def score_rows(self, *, since: datetime | None = None, until: datetime | None = None) -> Iterator[Any]:
        return self.store.score_rows(since=since, until=until)

    def count(self, **filters: Unpack[TraceFilter]) -> int:
        return self.store.count(**filters)

    def count_bins(self, *, since: datetime, until: datetime, bin_seconds: float, status: Any = None) -> list[int]:
        return self.store.count_bins(since=since, until=until, bin_seconds=bin_seconds, status=status)

    def first_trace_by_revision(self) -> list[tuple[str, datetime]]:
        return self.store.first_trace_by_revision()

    def code_versions(self) -> list[VersionRow]:
        return self.store.code_versions()

    def get_trace(self, trace_id: str, *, with_spans: bool = True) -> Trace | None:
        return self.store.get_trace(trace_id, with_spans=with_spans)

    def iter_traces(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        with_spans: bool = False,
        **filters: Unpack[TraceFilter],
    ) -> Iterator[Trace]:
        return self.store.iter_traces(limit=limit, newest_first=newest_first, with_spans=with_spans, **filters)

    # Scores (judges' verdicts, feedback) live in the local store only; server sources have none.
    def scores_of(self, trace_id: str) -> list[Any]:
        return self.store.scores_of(trace_id)

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def __enter__(self) -> LocalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_source(store_or_source: Any) -> Any:
    """A ``Store`` wrapped as a source (not closed with it); a source as it is."""
    from tracemend.store.sqlite import Store

    if isinstance(store_or_source, Store):
        return LocalSource(store_or_source, owned=False)
    return store_or_source


def configured_source(explicit: str | None = None) -> str | None:
    """``explicit``, else the ``source`` setting (``TRACEMEND_SOURCE``, ``[tool.tracemend] source``)."""
    if explicit:
        return explicit
    from tracemend import settings

    value = settings.get("source")
    return str(value) if value else None


def is_remote(spec: str | None) -> bool:
    return bool(spec) and urlsplit(str(spec)).scheme in SCHEMES


def parse_spec(spec: str) -> tuple[str, str, str, dict[str, str]]:
    """``scheme://host:port/path`` → (scheme, base URL of the server, project, options).

    The last path segment is the project; the path before it is where the server's API lives
    (``opik://localhost:5173/api/my-project``). ``+https`` in the scheme means TLS.
    """
    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise SourceError(
            f"unknown trace source {spec!r}: use phoenix://HOST:PORT/PROJECT or opik://HOST:PORT/PROJECT "
            "(or leave --source out for the local store)"
        )
    path = parts.path.strip("/")
    prefix, _, project = path.rpartition("/")
    project = unquote(project)
    if not project:
        raise SourceError(f"{spec!r} names no project: add it as the last part of the path (…/PROJECT)")
    http = "https" if scheme.endswith("+https") else "http"
    base = f"{http}://{parts.netloc}/{prefix}".rstrip("/") if parts.netloc else ""
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return scheme.split("+")[0], base, project, options


def open_source(spec: str | None = None, *, db: Path | str | None = None) -> Any:
    """The trace source ``spec`` names (default: the configured one, else the local store at ``db``).

    Remote sources are checked on opening (the server answers, the project exists), so a wrong
    address fails here with a clear message rather than in the middle of a stage.
    """
    spec = configured_source(spec) if db is None else spec
    if not spec or spec == "local":
        from tracemend.store.sqlite import Store

        return LocalSource(Store(db, create=False))
    kind, base, project, options = parse_spec(spec)
    if kind == "phoenix":
        from tracemend.store.phoenix import PhoenixSource

        return PhoenixSource(base, project, **options)
    from tracemend.store.opik_source import OpikSource

    return OpikSource(base or None, project, **options)
