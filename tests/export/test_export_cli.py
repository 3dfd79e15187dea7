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
    headers_seen: list[dict[str, str]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        type(self).headers_seen.append(dict(self.headers))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink():
    _Sink.paths, _Sink.headers_seen, _Sink.status = [], [], 200
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_export_otlp_sends_and_reports(recorded, store_path: Path, sink) -> None:
    done = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(store_path))
    assert done.returncode == 0, done.stderr
    assert "2 traces (5 spans) delivered" in done.stdout
    assert _Sink.paths == ["/v1/traces"]


def test_export_otlp_reads_the_standard_variables_and_filters(recorded, store_path: Path, sink) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}/collector"}
    done = tm("export", "otlp", "--failing", "--db", str(store_path), env=env)
    assert done.returncode == 0, done.stderr
    assert "1 trace (2 spans) delivered" in done.stdout
    assert _Sink.paths == ["/collector/v1/traces"]


def test_export_otlp_refused_is_exit_1_and_bad_endpoint_exit_2(recorded, store_path: Path, sink) -> None:
    _Sink.status = 400  # a permanent refusal: no retries
    done = tm("export", "otlp", "--endpoint", f"http://127.0.0.1:{sink.server_port}", "--db", str(store_path))
    assert done.returncode == 1 and "0 of 2 traces (0 of 5 spans) delivered" in done.stderr
    assert "1 of 1 batch failed" in done.stderr
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


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, never listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_export_opik_to_a_dead_address_exits_1_with_what_failed(recorded, store_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    done = tm("export", "opik", "--url", url, "--db", str(store_path), env={"TRACEMEND_PROJECT": "tm-dead"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"0 of 2 traces (0 of 5 spans) acknowledged by {url}, project tm-dead" in done.stderr
    assert f"cannot reach Opik at {url}: ConnectError" in done.stderr
    assert "✓" not in done.stdout


def test_opik_paths_use_one_project_name(recorded, store_path: Path, sink) -> None:
    url = f"http://127.0.0.1:{sink.server_port}/api"
    env = {"TRACEMEND_PROJECT": "tm-one"}
    done = tm("export", "opik", "--otlp", "--url", url, "--db", str(store_path), env=env)
    assert done.returncode == 0 and "(project tm-one)" in done.stdout, done.stderr
    assert {k.lower(): v for k, v in _Sink.headers_seen[-1].items()}["projectname"] == "tm-one"


@pytest.mark.slow
def test_export_cases_to_a_dead_address_exits_1(tmp_path: Path) -> None:
    from tracemend.assertions.case import write_case
    from tracemend.records import Check, RegressionCase

    case = RegressionCase(name="a case", entry_point="agent:answer", checks=[Check(kind="not_raises")])
    write_case(case, tmp_path / "cases")
    url = f"http://127.0.0.1:{_closed_port()}/api"
    done = tm("export", "cases", "--dir", str(tmp_path / "cases"), env={"OPIK_URL_OVERRIDE": url})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach Opik at {url}: ConnectError" in done.stderr and "✓" not in done.stdout
