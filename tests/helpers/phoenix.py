"""A real Arize Phoenix server on loopback, in its own cached virtualenv, for the OTLP round-trip tests
and the Phoenix trace source tests.

The virtualenv lives at ``$TRACEMEND_PHOENIX_VENV`` (default ``~/.cache/tracemend-phoenix-venv``) and is
built once with pip from the configured package index (``arize-phoenix[pg]``: with the PostgreSQL
driver); later runs reuse it, and a venv built before the driver was needed gets it added. A file lock
keeps parallel test workers from building it twice. If pip cannot install Phoenix the test fails with
pip's output: the round trip is part of CI and must not be skipped silently.

Phoenix stores spans in SQLite in its working folder, or in PostgreSQL when ``start_phoenix`` is given a
``database_url`` (see helpers/postgres.py). The same venv holds ``openai`` and
``openinference-instrumentation-openai`` (Phoenix depends on them): the OpenInference-instrumented app of
the source tests runs on its interpreter, as an app would on its own host.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

READY_MARK = ".tracemend-phoenix-ready"
INSTALL_TIMEOUT_S = 1800
START_TIMEOUT_S = 600  # migrations on PostgreSQL take minutes on a busy 2-core machine
PACKAGE = "arize-phoenix[pg]"


def venv_dir() -> Path:
    env = os.environ.get("TRACEMEND_PHOENIX_VENV")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tracemend-phoenix-venv"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_phoenix_venv() -> tuple[Path, float | None]:
    """The venv's python and the seconds spent installing (None when the cached venv was reused)."""
    venv = venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install = [str(_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check", PACKAGE]
        check = [str(_python(venv)), "-c", "import phoenix.server.main, asyncpg, openinference.instrumentation.openai"]
        # Installed distributions, read without importing them (Phoenix's import takes minutes when busy).
        installed = [str(_python(venv)), "-c", "import importlib.metadata as m; "
                     "[m.version(d) for d in ('arize-phoenix', 'asyncpg', 'openinference-instrumentation-openai')]"]
        if (venv / READY_MARK).exists() and _python(venv).exists():
            if subprocess.run(installed, capture_output=True, timeout=INSTALL_TIMEOUT_S).returncode == 0:
                return _python(venv), None
            steps = [install, check]  # a venv from before the PostgreSQL driver was needed
        else:
            base = getattr(sys, "_base_executable", None) or sys.executable
            steps = [[base, "-m", "venv", "--clear", str(venv)], install, check]
        started = time.perf_counter()
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            if done.returncode != 0:
                tail = (done.stdout + done.stderr)[-4000:]
                pytest.fail(
                    f"Could not install Arize Phoenix into {venv} (is the package index reachable?).\n"
                    f"Command: {' '.join(step)}\nExit code {done.returncode}; output:\n{tail}",
                    pytrace=False,
                )
        (venv / READY_MARK).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return _python(venv), time.perf_counter() - started


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PhoenixServer:
    url: str
    grpc_port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    install_seconds: float | None
    start_seconds: float

    @property
    def otlp_traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        query = ""
        if params:
            query = "?" + "&".join(
                f"{k}={urllib.parse.quote(str(v))}" for k, v in params.items() if v is not None
            )
        with urllib.request.urlopen(self.url + path + query, timeout=30) as response:
            return json.loads(response.read())

    def spans(self, project: str, limit: int = 1000) -> list[dict[str, Any]]:
        """Every span Phoenix holds for ``project`` (following the REST API's cursor)."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            try:
                page = self.get(
                    f"/v1/projects/{urllib.parse.quote(project)}/spans", {"limit": limit, "cursor": cursor}
                )
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project does not exist until its first span is stored
                    return []
                raise
            out.extend(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def wait_for_spans(self, project: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Phoenix inserts spans in background batches: poll until ``count`` are queryable."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            spans = self.spans(project)
            if len(spans) >= count:
                return spans
            time.sleep(0.2)
        raise AssertionError(
            f"Phoenix holds {len(spans)} spans for {project!r} after {timeout}s; expected {count}"
        )

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url + "/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def root_count(self, project: str) -> int:
        """Root spans (traces) Phoenix has stored for ``project`` (0 before its first span)."""
        try:
            pid = self.get(f"/v1/projects/{urllib.parse.quote(project)}")["data"]["id"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 0
            raise
        data = self.graphql(
            'query($id: ID!) { node(id: $id) { ... on Project { recordCount(filterCondition: "parent_id is None") } } }',
            {"id": pid},
        )
        return int(data["node"]["recordCount"])

    def wait_for_traces(self, project: str, count: int, timeout: float = 300.0) -> int:
        """Phoenix inserts spans in background batches: poll until ``count`` root spans are queryable."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = self.root_count(project)
            if seen >= count:
                return seen
            time.sleep(2.0)  # each look is a count on the server: do not compete with its ingestion
        raise AssertionError(f"Phoenix holds {seen} traces for {project!r} after {timeout}s; expected {count}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)


def start_phoenix(workdir: Path, *, database_url: str | None = None) -> PhoenixServer:
    """A Phoenix server on free loopback ports; on SQLite in ``workdir``, or on ``database_url``
    (``postgresql://…``), which Phoenix migrates on start."""
    python, install_seconds = ensure_phoenix_venv()
    port, grpc_port = free_port(), free_port()
    while grpc_port == port:
        grpc_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    env.update(
        {
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(workdir),
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if database_url:
        env["PHOENIX_SQL_DATABASE_URL"] = database_url
    log_path = workdir / "phoenix.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "phoenix.server.main", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() ends the server and its children
            cwd=workdir,
        )
    server = PhoenixServer(f"http://127.0.0.1:{port}", grpc_port, process, log_path, install_seconds, 0.0)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"Phoenix exited with {process.returncode} while starting:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"Phoenix did not answer within {START_TIMEOUT_S}s:\n{server.log_tail()}")
        time.sleep(0.2)
    server.start_seconds = time.perf_counter() - started
    return server
