"""The loop reading from Opik, through the opik SDK's REST client, against a loopback Opik server.

Opik's real backend needs Docker, which these machines cannot run; ``helpers.opik_server`` implements the
endpoints the SDK calls, shaped from Opik's published OpenAPI spec (docs/sources.md says so). The traces
get there the way a user's would: ``tracemend export opik`` through the SDK. Every command runs in a
process of its own (the SDK keeps process-wide state).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tracemend.store import Store

from helpers.opik_server import OpikServer
from helpers.traffic import deploy_time, traffic

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEPLOY = deploy_time()


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "160"}, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def opik(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("opik")
    db = root / "traces.db"
    with Store(db) as store:
        store.add_traces(traffic(deploy=DEPLOY, per_hour=20, regression_rate=0.15, baseline_hours=24, seed=5))
        total = store.count()
    with OpikServer() as server:
        sent = _cli("export", "opik", "--db", str(db), "--project", "support", "--url", server.url)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert len(server.traces) == total  # what the SDK sent is what the server holds
        yield {"server": server, "db": db, "source": f"opik://127.0.0.1:{server.port}/api/support", "root": root}


def test_analyze_from_opik_flags_the_same_regression_as_the_local_store(opik: dict[str, Any]) -> None:
    local = _cli("analyze", "--db", str(opik["db"]), "--baseline", "24h", "--json")
    remote = _cli("analyze", "--source", opik["source"], "--baseline", "24h", "--json")
    assert local.returncode == remote.returncode == 1, remote.stdout + remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert (b["revision"], b["deploy_time"]) == (a["revision"], a["deploy_time"])
    assert (b["baseline_traces"], b["window_traces"]) == (a["baseline_traces"], a["window_traces"])
    assert b["findings"] == a["findings"]
    assert b["findings"][0]["signature"]["exception_types"] == ["KeyError"]
    # Filters went to the server: failing traces by error_info, counts as one-item pages.
    paths = {p for _m, p in opik["server"].requests}
    assert "/api/v1/private/traces" in paths and "/api/v1/private/projects/retrieve" in paths


def test_a_trace_reads_back_from_opik_as_it_was_stored(opik: dict[str, Any]) -> None:
    with Store(opik["db"], create=False) as store:
        failing = next(store.iter_traces(status="error", newest_first=True, with_spans=True))
    shown = _cli("show", failing.trace_id, "--source", opik["source"], "--json")
    assert shown.returncode == 0, shown.stderr
    back = json.loads(shown.stdout)
    assert back.pop("scores") == []  # judges' and people's scores live in the local store only
    expected = json.loads(failing.model_dump_json())
    expected["project"] = "support"
    assert back == expected


def test_an_opik_integrations_trace_is_analyzed_from_its_error_info(opik: dict[str, Any], tmp_path: Path) -> None:
    """A trace an Opik integration logged (no tracemend metadata): frames from the traceback text, mapped
    to this checkout (the app ran under /srv/shop on its host), the version from a metadata key."""
    checkout = tmp_path / "shop"
    (checkout / "src" / "shop").mkdir(parents=True)
    (checkout / "src" / "shop" / "__init__.py").write_text("")
    (checkout / "src" / "shop" / "agent.py").write_text("def refund_window(order):\n    return WINDOWS[order]\n")
    (checkout / "pyproject.toml").write_text('[project]\nname = "shop"\n')
    traceback = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "/srv/shop/src/shop/agent.py", line 2, in refund_window
            return WINDOWS[order]
          File "/srv/shop/.venv/lib/python3.11/site-packages/openai/_base_client.py", line 1047, in request
            raise self._make_status_error_from_response(err.response) from None
        openai.BadRequestError: Error code: 400 - {'error': {'message': 'max_tokens is too large: 9000'}}
        """
    )
    server: OpikServer = opik["server"]
    project = f"foreign-{uuid.uuid4().hex[:6]}"
    for i, version in enumerate(["1111111"] * 10 + ["2222222"] * 20):
        start = DEPLOY + timedelta(minutes=i)
        failed = version == "2222222" and i % 2 == 0
        trace_id = str(uuid.uuid4())
        server.traces[trace_id] = {
            "id": trace_id,
            "project_name": project,
            "name": "refund_window",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(seconds=1)).isoformat(),
            "input": {"order": f"A{i}"},
            "output": None if failed else {"output": "30 days"},
            "metadata": {"deploy": {"sha": version}},
            "error_info": {
                "exception_type": "BadRequestError",
                "message": f"Error code: 400 - {{'error': {{'message': 'max_tokens is too large: {9000 + i}'}}}}",
                "traceback": traceback,
            } if failed else None,
        }
        server.projects.add(project)
    source = f"opik://127.0.0.1:{server.port}/api/{project}?version=deploy.sha"
    out = _cli("analyze", "--source", source, "--baseline", "1h", "--json", cwd=checkout)
    assert out.returncode == 1, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["revision"] == "2222222" and result["window_traces"] == 20 and result["baseline_traces"] == 10
    assert result["findings"][0]["verdict"] == "new" and result["findings"][0]["window_count"] == 10
    sig = result["findings"][0]["signature"]
    assert sig["exception_types"] == ["openai.BadRequestError"]  # qualified from the traceback's last line
    assert sig["frame"] == "shop.agent:refund_window"  # /srv/shop/src/shop/agent.py is src/shop/agent.py here
    # The error body's message stays template text (it says what went wrong); its number is a parameter.
    assert sig["template"] == "Error code: <*> - {'message': 'max_tokens is too large: <*>'}"
    assert "no entry point recorded: rerun and lock need `@tracemend.track`" in out.stderr


def test_a_wrong_project_or_option_is_a_usage_error(opik: dict[str, Any]) -> None:
    port = opik["server"].port
    missing = _cli("signatures", "--source", f"opik://127.0.0.1:{port}/api/nope")
    assert missing.returncode == 2 and "no project 'nope' in Opik" in missing.stderr
    bad = _cli("signatures", "--source", f"opik://127.0.0.1:{port}/api/support?colour=red")
    assert bad.returncode == 2 and "unknown option colour" in bad.stderr
