"""Secrets never stored or exported: every kind of secret in every place a traced app can put it, then the
whole SQLite file (with its WAL) and an OTLP/HTTP export captured on loopback searched for the values.

The places: call inputs (free text, nested, in a list, as a dict key, in an object's repr, at the truncation
boundary), outputs, a config field, a child span's input and output, a generator's items, span attributes
and name, trace metadata and tags, an exception's message, its cause and its context, a failed-assertion
message and an error-status message.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

import tracemend
from tracemend.capture.redact import Redactor

from helpers.secrets import CORPUS, USER_KEYS, USER_PATTERNS, Secret

pytestmark = pytest.mark.integration

MAX_STRING = 300


class CorpusConfig(tracemend.Config):
    model: str = "m"
    endpoint: str = ""


class Holder:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Holder({self.text})"


@tracemend.track(kind="tool")
def lookup(text: str) -> str:
    return f"found {text}"


@tracemend.track(kind="retrieval")
def stream(text: str) -> Any:
    yield text
    yield {"chunk": text}


@tracemend.track(kind="agent", tags=["corpus"])
def answer(
    message: str, payload: dict[str, Any], holder: Holder, long_text: str, config: CorpusConfig
) -> Any:
    lookup(message)
    list(stream(message))
    tracemend.update_current_span(name=f"answer {message}", note=message, model="m")
    tracemend.update_current_trace(metadata={"note": message, "deep": {"list": [message]}}, tags=[message])
    return {"answer": message, "why": [message]}


@tracemend.track(kind="agent")
def explode(message: str) -> None:
    try:
        raise ValueError(message)  # the context
    except ValueError:
        try:
            raise KeyError(message)  # the cause
        except KeyError as inner:
            raise RuntimeError(message) from inner


@tracemend.track(kind="agent")
def judged(message: str) -> str:
    tracemend.update_current_trace(status="failed_assertion", error_message=message)
    return "fine"


@tracemend.track(kind="agent")
def flagged(message: str) -> str:
    tracemend.update_current_trace(status="error", error_message=message)
    return "fine"


def _record(secret: Secret) -> None:
    message = f"[corpus-{secret.kind}] {secret.text}"
    payload = {"nested": [{"note": message}], message: 1, "items": [message, {"x": message}]}
    long_text = "x" * (MAX_STRING - 12) + " " + secret.text
    answer(message, payload, Holder(message), long_text, CorpusConfig(endpoint=message))
    with pytest.raises(RuntimeError):
        explode(message)
    judged(message)
    flagged(message)


class _Capture(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _store_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def _leaks(data: bytes) -> list[str]:
    return [f"{s.kind}: {n}" for s in CORPUS for n in s.needles if n.encode() in data]


def test_no_secret_kind_in_any_place_reaches_the_store_or_an_otlp_export(spine_store: Path) -> None:
    tracemend.configure(redact_keys=USER_KEYS, redact_patterns=USER_PATTERNS, max_string_chars=MAX_STRING)
    for secret in CORPUS:
        _record(secret)
    tracemend.flush()
    stats = tracemend.stats()
    assert stats["dropped"] == stats["lost"] == stats["failed"] == 0
    data = _store_bytes(spine_store)
    # The traces are there (the markers are not secret), so an empty search could not pass by accident.
    missing = [s.kind for s in CORPUS if f"corpus-{s.kind}".encode() not in data]
    assert missing == []
    assert _leaks(data) == []

    _Capture.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tracemend.cli", "export", "otlp", "--endpoint",
             f"http://127.0.0.1:{server.server_port}", "--db", str(spine_store)],
            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stdout + done.stderr
    exported = b"".join(_Capture.bodies)
    assert [s.kind for s in CORPUS if f"corpus-{s.kind}".encode() not in exported] == []
    assert _leaks(exported) == []


@pytest.mark.parametrize("engine", ["re2", "re"])
def test_both_engines_redact_every_kind_in_text_and_in_keys(engine: str) -> None:
    redactor = Redactor(USER_KEYS, USER_PATTERNS, engine=engine)
    for secret in CORPUS:
        scrubbed = redactor.scrub(f"before {secret.text} after")
        _, key = redactor.key(secret.text)
        assert [n for n in secret.needles if n in scrubbed or n in key] == [], secret.kind
        assert scrubbed.startswith("before ") and "[REDACTED]" in scrubbed


def test_ordinary_text_is_left_alone() -> None:
    redactor = Redactor()
    for text in (
        "max_tokens=256 num_tokens: 12 author: Ada tokenizer=cl100k",
        "the bearer of bad news had a basic understanding",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b and sha256 " + "ab" * 32,
        "see error: ../secret.txt: outside the repository",
        "https://example.com/docs/getting-started?page=2",
    ):
        assert redactor.scrub(text) == text
