"""What the Opik backend acknowledged: the answers to the SDK's trace and span writes, counted.

The opik SDK sends in the background and never raises: with no server it logs a connection error and parks
the messages for a replay that never comes once the process ends; a refused batch is a logged error. So an
export cannot trust the calls it made. It counts what the backend answered instead: a response hook on the
SDK's httpx client (installed through opik's public ``opik.hooks``, so it applies to clients created
afterwards) reads each answer to a trace or span write, and an item counts as delivered when a 2xx answer
(or a 409: it already exists) came back for a request that carried its id. A refused answer, a connection
that never answered, a flush that timed out: each leaves its items undelivered, and they are counted.

Before sending, :func:`preflight` asks the backend one synchronous question (the SDK's ``auth_check``), so
an unreachable server or a refused API key fails in a second instead of after the SDK's retries.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The REST paths of trace and span writes (batches, and single creates) and the body key of a batch.
WRITE_PATHS = {
    "/v1/private/traces/batch": "traces",
    "/v1/private/spans/batch": "spans",
    "/v1/private/traces": None,
    "/v1/private/spans": None,
}
MAX_ERRORS = 5
_lock = threading.Lock()
_sessions: list[Deliveries] = []
_installed = False


@dataclass
class Deliveries:
    """The acknowledgements one export is waiting for (ids of the Opik traces and spans it logged)."""

    expected: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    answers: int = 0  # answers of any kind from the backend this export's client talks to
    batches: int = 0  # write requests the backend accepted
    refused: int = 0  # write requests it answered with an error (a retried request may count again)
    errors: list[str] = field(default_factory=list)

    def expect(self, ids: Iterable[str]) -> None:
        with _lock:
            self.expected.update(ids)

    def delivered(self, ids: Iterable[str]) -> int:
        with _lock:
            return sum(1 for i in ids if i in self.acked)

    def error(self, text: str) -> None:
        with _lock:
            if len(self.errors) < MAX_ERRORS and text not in self.errors:
                self.errors.append(text)

    def __enter__(self) -> Deliveries:
        install()
        with _lock:
            _sessions.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            if self in _sessions:
                _sessions.remove(self)


def _ids(content: bytes, key: str | None) -> set[str]:
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    body = json.loads(content) if content else None
    items = body.get(key) if key and isinstance(body, dict) else [body]
    return {item["id"] for item in items or () if isinstance(item, dict) and isinstance(item.get("id"), str)}


def on_response(response: Any) -> None:
    """The httpx response hook: credit the ids of an acknowledged write to the exports waiting for them."""
    if not _sessions:
        return
    try:
        request = response.request
        path = request.url.path
        key = next((k for p, k in WRITE_PATHS.items() if path.endswith(p)), "-")
        status = response.status_code
        with _lock:
            sessions = list(_sessions)
            for session in sessions:
                session.answers += 1
        if key == "-" or request.method != "POST":
            return
        if 200 <= status < 300 or status == 409:
            ids = _ids(request.content, key)
            with _lock:
                for session in sessions:
                    if ids & session.expected:
                        session.batches += 1
                        session.acked.update(ids & session.expected)
            return
        for session in sessions:
            with _lock:
                session.refused += 1
            session.error(f"Opik answered {status} {response.reason_phrase} to POST {path}")
    except Exception as exc:  # never break the SDK's sender; an unread id stays undelivered
        for session in list(_sessions):
            session.error(f"could not read an Opik answer: {type(exc).__name__}: {exc}")


def _modify(client: Any) -> None:
    hooks = client.event_hooks
    client.event_hooks = {"request": list(hooks["request"]), "response": [*hooks["response"], on_response]}


def install() -> None:
    """Watch the answers on every opik httpx client created from now on (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from opik import hooks

        hooks.add_httpx_client_hook(
            hooks.HttpxClientHook(client_modifier=_modify, client_init_arguments=None)
        )
        _installed = True


def preflight(client: Any, deliveries: Deliveries, url: str | None) -> bool:
    """One synchronous request to the backend; False (with the reason noted) when it cannot take writes."""
    import httpx

    where = f" at {url}" if url else ""
    try:
        client.auth_check()
    except (httpx.TransportError, OSError) as exc:
        deliveries.error(f"cannot reach Opik{where}: {type(exc).__name__}: {exc}")
        return False
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            deliveries.error(
                f"Opik{where} refused the credentials ({status}): check OPIK_API_KEY and OPIK_WORKSPACE"
            )
            return False
        # Another answer (an older server without this endpoint, say): the writes themselves will tell.
    return True
