"""A stand-in for the Opik backend behind the SDK's public httpx client hook (``httpx.MockTransport``).

It records every REST request the SDK sends (gzip bodies decoded) and answers the few calls that need
an answer (dataset lookup and creation); everything else gets 204 like the real backend's batch calls.
"""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeOpik:
    requests: list[Request] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Path suffix -> status: writes to these paths are refused (e.g. {"/spans/batch": 400}).
    refuse: dict[str, int] = field(default_factory=dict)

    def handler(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        body = json.loads(raw) if raw else None
        path = request.url.path
        self.requests.append(Request(request.method, path, dict(request.headers), body))
        for suffix, status in self.refuse.items():
            if path.endswith(suffix):
                return httpx.Response(status, json={"errors": ["refused by the fake"]})
        if path.endswith("/v1/private/datasets/retrieve"):
            found = self.datasets.get(body["dataset_name"])
            return (
                httpx.Response(200, json=found)
                if found
                else httpx.Response(404, json={"errors": ["not found"]})
            )
        if path.endswith("/v1/private/datasets") and request.method == "POST":
            self.datasets[body["name"]] = {"id": str(uuid.uuid4()), **body}
            return httpx.Response(201)
        if request.method == "GET" or path.endswith("/retrieve"):
            return httpx.Response(404, json={"errors": ["not found"]})
        return httpx.Response(204)

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        """Every trace or span payload sent in batches (``kind``: traces or spans), in order."""
        out: list[dict[str, Any]] = []
        for req in self.requests:
            if req.method == "POST" and req.path.endswith(f"/v1/private/{kind}/batch"):
                out.extend(req.body[kind])
        return out

    def latest(self, kind: str) -> dict[str, dict[str, Any]]:
        """Payloads merged by id, later fields winning (as the backend upserts them)."""
        merged: dict[str, dict[str, Any]] = {}
        for item in self.payloads(kind):
            merged.setdefault(item["id"], {}).update({k: v for k, v in item.items() if v is not None})
        return merged


class Switch:
    """One hook for the whole test session that forwards to whichever fake the running test set."""

    current: FakeOpik | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.current is None:  # outside these tests: behave like the closed port OPIK_URL_OVERRIDE names
            raise httpx.ConnectError("connection refused (no fake Opik backend active)", request=request)
        return self.current.handler(request)


SWITCH = Switch()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from opik import hooks

    hooks.add_httpx_client_hook(
        hooks.HttpxClientHook(
            client_modifier=None, client_init_arguments={"transport": httpx.MockTransport(SWITCH.handler)}
        )
    )
    _installed = True
