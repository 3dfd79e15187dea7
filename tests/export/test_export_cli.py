"""`tracemend export ...` as a user runs it: the CLI in a subprocess, against loopback servers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest


def tm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


class _Sink(BaseHTTPRequestHandler):
    paths: list[str] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink():
    _Sink.paths, _Sink.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_export_otlp_sends_and_reports(recorded, store_path: Path, sink) -> None:
    done = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(store_path))
    assert done.returncode == 0, done.stderr
    assert "5 spans of 2 traces" in done.stdout
    assert _Sink.paths == ["/v1/traces"]


def test_export_otlp_reads_the_standard_variables_and_filters(recorded, store_path: Path, sink) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}/collector"}
    done = tm("export", "otlp", "--failing", "--db", str(store_path), env=env)
    assert done.returncode == 0, done.stderr
    assert "2 spans of 1 traces" in done.stdout
    assert _Sink.paths == ["/collector/v1/traces"]


def test_export_otlp_refused_is_exit_1_and_bad_endpoint_exit_2(recorded, store_path: Path, sink) -> None:
    _Sink.status = 400  # a permanent refusal: no retries
    done = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(store_path))
    assert done.returncode == 1 and "failed" in done.stderr
    done = tm("export", "otlp", "--endpoint", "localhost:4318", "--db", str(store_path))
    assert done.returncode == 2 and "http" in done.stderr


def test_export_opik_otlp_goes_to_opiks_path(recorded, store_path: Path, sink) -> None:
    url = f"http://127.0.0.1:{sink.server_port}/api"
    done = tm("export", "opik", "--otlp", "--url", url, "--project", "p1", "--db", str(store_path))
    assert done.returncode == 0, done.stderr
    assert _Sink.paths == ["/api/v1/private/otel/v1/traces"]
    assert "project p1" in done.stdout


def test_export_cases_with_no_cases_is_a_usage_error(tmp_path: Path) -> None:
    done = tm("export", "cases", "--dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "nowhere: no such file or folder" in done.stderr
    (tmp_path / "bad.yaml").write_text("- 1\n")
    done = tm("export", "cases", "--dir", str(tmp_path))
    assert done.returncode == 2 and "bad.yaml: case 1 is a int" in done.stderr
