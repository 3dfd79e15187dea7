"""Helpers for testing code that tracemend records or calls models for, in tracemend's tests and in yours.

Like ``logfire.testing``: public, stable, and light to import (the standard library only at import time;
PyYAML and the store load when a helper that needs them runs).

- :class:`LoopbackServer`: an OpenAI-compatible chat-completions server on 127.0.0.1. It speaks just enough
  of ``POST /v1/chat/completions`` for litellm's real HTTP path (``openai/<model>`` with ``api_base``) to run
  end to end: plain answers, tool calls, JSON mode, usage. A responder decides each answer from the request
  body (:func:`turn` says how many assistant turns it already holds), and one-off behaviours (a 429, a slow
  answer, a malformed or truncated body) can be queued ahead of it.
- :func:`scripted_model`: recorded answers written to a file, and the ``scripted:<path>`` model id that
  replays them offline.
- :func:`reset_recorder`: the recorder back to a new process's state (queue, counters, writer, settings).
- :func:`temporary_store`: a store in a temporary folder that traced calls record into, for one block.

See ``docs/testing.md``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracemend.capture.control import reset_recorder

if TYPE_CHECKING:
    from tracemend.store import Store

__all__ = [
    "LoopbackServer",
    "Reply",
    "Responder",
    "chat_body",
    "rate_limited",
    "reset_recorder",
    "scripted_model",
    "temporary_store",
    "turn",
]


@dataclass
class Reply:
    """One HTTP answer. ``body`` is JSON-encoded unless ``raw`` is given; ``truncate`` cuts the body short
    while announcing its full length (the client sees the connection close mid-answer)."""

    body: Any = None
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    truncate: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def chat_body(
    content: str | None = None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    model: str = "loopback-model",
    finish_reason: str | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
) -> dict[str, Any]:
    """A chat.completion body. ``tool_calls`` items are ``{"name": ..., "arguments": dict | str}``."""
    calls = None
    if tool_calls:
        calls = []
        for index, call in enumerate(tool_calls):
            args = call.get("arguments", {})
            calls.append(
                {
                    "id": call.get("id") or f"call_{index}_{uuid.uuid4().hex[:8]}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "tool_calls": calls},
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def rate_limited(retry_after: float | None = None) -> Reply:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    body = {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit"}}
    return Reply(body=body, status=429, headers=headers)


Responder = Callable[[dict[str, Any]], Reply | dict[str, Any] | str]


def turn(request: Mapping[str, Any]) -> int:
    """How many assistant messages the request already holds: 0 for the first call of a conversation.

    The scripted model's ``match: {turn: N}`` counts the same way.
    """
    return sum(
        1 for m in request.get("messages") or () if isinstance(m, dict) and m.get("role") == "assistant"
    )


def _default_responder(request: dict[str, Any]) -> Reply:
    return Reply(body=chat_body("ok", model=str(request.get("model", "loopback-model"))))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent clients connect at once in benchmarks


class LoopbackServer:
    """``with LoopbackServer(responder) as server: server.api_base`` → ``http://127.0.0.1:<port>/v1``.

    ``responder(request_json)`` returns a :class:`Reply`, a chat body dict, or a string (the answer's
    content); a responder that raises is answered with a 500 naming the exception, so a broken test shows
    as a failed call rather than a hang. ``latency`` delays every answer (seconds). ``requests`` holds every
    request body received.
    """

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0) -> None:
        self.responder: Responder = responder or _default_responder
        self.latency = latency
        self.requests: list[dict[str, Any]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---

    def enqueue(self, *replies: Reply) -> None:
        """Serve these replies, in order, to the next requests (then the responder again)."""
        with self._lock:
            self._queue.extend(replies)

    def clear(self) -> None:
        """Forget the requests received and the replies still queued."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def api_base(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def env(self, api_key: str = "sk-loopback") -> dict[str, str]:
        """Environment that points tracemend's model calls here, loopback requests allowed (for a
        subprocess, or ``monkeypatch.setenv``); ``openai/<any name>`` models then reach this server."""
        return {
            "TRACEMEND_API_BASE": self.api_base,
            "TRACEMEND_API_KEY": api_key,
            "TRACEMEND_ALLOW_MODEL_REQUESTS": "loopback",
        }

    def start(self) -> LoopbackServer:
        server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="loopback-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving ---

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            queued = self._queue.popleft() if self._queue else None
        if queued is not None:
            return queued
        try:
            answer = self.responder(request)
        except Exception as exc:
            return Reply(body={"error": {"message": f"responder failed: {exc!r}"}}, status=500)
        if isinstance(answer, Reply):
            return answer
        if isinstance(answer, str):
            return Reply(body=chat_body(answer, model=str(request.get("model", "loopback-model"))))
        return Reply(body=answer)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    request = json.loads(raw or b"{}")
                except ValueError:
                    request = {"_unparseable": raw.decode("utf-8", "replace")}
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(Reply(body={"error": {"message": f"no route {self.path}"}}, status=404))
                    return
                reply = owner._next_reply(request)
                delay = owner.latency + reply.delay
                if delay > 0:
                    time.sleep(delay)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(payload)))
                    if reply.truncate:
                        self.send_header("connection", "close")
                    self.end_headers()
                    if reply.truncate:
                        self.wfile.write(payload[: max(1, len(payload) // 2)])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler


# --- the scripted model -----------------------------------------------------------------------------


def scripted_model(path: str | Path, answers: Iterable[str | Mapping[str, Any]]) -> str:
    """Write ``answers`` to the scripted-model file ``path``; return the model id that replays them.

    Each answer becomes one entry of the file's ``answers`` list (format in ``docs/llm.md``): a string is
    the content of an answer to any request; a mapping with a ``response`` key (and optionally ``match``)
    is written as it is; any other mapping is the response (``content``, ``tool_calls``, ``usage``...).
    The first entry whose ``match`` holds answers, so put the specific ones first.
    """
    import yaml

    entries: list[Mapping[str, Any]] = []
    for answer in answers:
        if isinstance(answer, str):
            entries.append({"response": {"content": answer}})
        elif "response" in answer:
            entries.append(answer)
        else:
            entries.append({"response": dict(answer)})
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"answers": [dict(e) for e in entries]}, sort_keys=False, allow_unicode=True)
    target.write_text(text, encoding="utf-8")
    return f"scripted:{target}"


# --- the recorder's store ---------------------------------------------------------------------------


@contextmanager
def temporary_store(*, code_version: str | None = None) -> Iterator[Store]:
    """A new store in a temporary folder, and the recorder writing to it until the block ends.

    Traced calls in the block record there (``tracemend.flush()`` before reading them through the yielded
    :class:`~tracemend.store.Store`). ``code_version`` stamps every trace with that commit instead of
    asking git. Afterwards the folder is gone, ``TRACEMEND_DB`` and ``TRACEMEND_CODE_VERSION`` are as they
    were, and the recorder starts again from the environment's settings, as in a new process.
    """
    from tracemend.store import Store

    names = ("TRACEMEND_DB", "TRACEMEND_CODE_VERSION")
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="tracemend-test-") as folder:
        path = Path(folder) / "traces.db"
        reset_recorder()  # what is queued goes where it was meant to go
        os.environ["TRACEMEND_DB"] = str(path)
        if code_version is not None:
            os.environ["TRACEMEND_CODE_VERSION"] = code_version
        store = None
        try:
            store = Store(path)
            yield store
        finally:
            reset_recorder()
            if store is not None:
                store.close()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
