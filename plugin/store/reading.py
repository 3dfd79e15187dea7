"""The shapes a trace source returns (shared by the local store's wrapper and the remote sources), and
the plain words for what a source's traces may lack."""

from __future__ import annotations

from datetime import datetime

# (trace id, start µs, status, entry point, commit, error JSON, metadata JSON, output JSON): a failing
# trace as the analyzer reads it (Store.iter_failures).
FailureRow = tuple[str, int, str, str, str | None, str | None, str | None, str | None]
# (commit, first trace time, last trace time, trace count)
VersionRow = tuple[str, datetime, datetime, int]

NO_ENTRY_POINT = "no entry point recorded: rerun and lock need `@tracemend.track` on the entry function"
