"""The opik tap: an app whose agent is instrumented with @opik.track (and not with tracemend) uploads
to Opik as usual, and its traces also land in a real tracemend SQLite store, errors and spans included.

The app runs in its own process (the SDK's hooks and client are process-wide), with the network off:
Opik's backend is an httpx.MockTransport given through the SDK's public client hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracemend.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT = """
import opik


class LookupFailed(RuntimeError):
    pass


@opik.track(type="tool")
def lookup(order_id):
    if order_id == "missing":
        raise LookupFailed(f"order {order_id} not found")
    return {"order": order_id, "status": "shipped"}


@opik.track(type="llm")
def reply(facts):
    opik.opik_context.update_current_span(
        model="gpt-4o-mini", usage={"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    )
    return f"Your order is {facts['status']}."


@opik.track
def support_agent(order_id):
    return reply(lookup(order_id))
"""

APP = """
import json, sys
import httpx
import opik
from opik import hooks

uploaded = []

def backend(request):
    uploaded.append(request.url.path)
    return httpx.Response(204)

# Opik's backend stand-in; in production this hook is absent and uploads go to the Opik server.
hooks.add_httpx_client_hook(hooks.HttpxClientHook(None, {"transport": httpx.MockTransport(backend)}))

from tracemend.capture.opik_tap import install_tap

tap = install_tap(sys.argv[1])

from support import LookupFailed, support_agent

assert support_agent("A-1") == "Your order is shipped."
try:
    support_agent("missing")
except LookupFailed:
    pass
opik.flush_tracker()
tap.close()
print(json.dumps({"uploaded": uploaded, "payloads": tap.payloads, "written": tap.traces_written, "errors": tap.errors}))
"""


def test_opik_tracked_agent_feeds_the_tracemend_store(tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "support.py").write_text(textwrap.dedent(AGENT))
    (project / "app.py").write_text(textwrap.dedent(APP))
    db = tmp_path / "traces.db"
    env = {
        **os.environ,
        "TRACEMEND_PROJECT_ROOT": str(project),
        "PYTHONPATH": str(project),
        "OPIK_PROJECT_NAME": "shop",
    }
    env.pop("TRACEMEND_DB", None)
    done = subprocess.run(
        [sys.executable, "app.py", str(db)], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The upload to Opik went on: traces and spans batches reached the (mock) backend.
    assert any(p.endswith("/v1/private/traces/batch") for p in report["uploaded"])
    assert any(p.endswith("/v1/private/spans/batch") for p in report["uploaded"])
    assert report["errors"] == 0 and report["payloads"] > 0

    with Store(db) as store:
        assert store.status_counts() == {"ok": 1, "error": 1}
        traces = {t.status: t for t in store.iter_traces(with_spans=True)}
    ok, failed = traces["ok"], traces["error"]
    for trace in (ok, failed):
        assert trace.entry_point == "support:support_agent"  # importable, so it can be rerun
        assert trace.project == "shop"
        assert len(trace.spans) == 3 if trace is ok else len(trace.spans) == 2
        root = trace.root_span()
        assert root is not None and root.name == "support_agent"
        assert all(s.parent_id == root.span_id for s in trace.spans if s is not root)
        assert (
            len(trace.trace_id) == 32 and trace.metadata["opik_trace_id"].replace("-", "") == trace.trace_id
        )
    assert ok.input == {"order_id": "A-1"} and ok.output == "Your order is shipped."
    llm = next(s for s in ok.spans if s.kind == "llm")
    assert llm.attributes["model"] == "gpt-4o-mini"
    assert llm.attributes["usage"] == {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    tool = next(s for s in failed.spans if s.kind == "tool")
    assert tool.error is not None
    # The error reads like one tracemend recorded itself: qualified type, message, in-app frames.
    error = failed.error
    assert error is not None
    assert error.type == "support.LookupFailed"
    assert error.message == "order missing not found"
    top = error.top_in_app_frame()
    assert top is not None and top.file == "support.py" and top.function == "lookup"
    assert not any(f.in_app for f in error.frames if "site-packages" in f.file)
