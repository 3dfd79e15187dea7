"""An app tracemend never instrumented: OpenInference spans in Phoenix, analyzed and triaged from there.

The app (a scratch git repository, ``shop/``) calls an OpenAI-compatible model through the ``openai``
client, instrumented by ``openinference-instrumentation-openai``, under a CHAIN span of its own, and
sends its spans over OTLP to Phoenix on PostgreSQL. It runs on the Phoenix venv's interpreter (which has
``openai`` and the instrumentor), in processes of its own, as it would on its own hosts; the model is
``tracemend.testing.LoopbackServer``. Its version reaches the spans through a span processor that copies
the resource's ``service.version`` onto them (Phoenix keeps span attributes only).

Version 1 works; version 2 looks up a refund region table that lacks ``uk``, so UK orders raise
``KeyError``. ``tracemend analyze --source phoenix://…`` must flag that signature from the spans' exception
events alone, say that the traces carry no entry point, and ``tracemend triage`` must find the change
between the two versions and judge it (the verdict asked of a loopback model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from tracemend.testing import LoopbackServer

from helpers.phoenix import PhoenixServer, ensure_phoenix_venv

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("phoenix")]

AGENT_V1 = '''
import json


def refund_window(client, order_id: str) -> int:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"refund policy for order {order_id}"}]
    )
    policy = json.loads(reply.choices[0].message.content)
    days = {"us": 30, "eu": 30, "uk": 30}
    return days[policy["region"]]


def handle_ticket(client, tracer, order_id: str) -> str:
    with tracer.start_as_current_span(
        "handle_ticket", attributes={"openinference.span.kind": "CHAIN", "input.value": order_id}
    ) as span:
        days = refund_window(client, order_id)
        answer = f"You can return order {order_id} within {days} days."
        span.set_attribute("output.value", answer)
        return answer
'''
# Version 2: "ISO codes for regions", while the model still answers "uk".
AGENT_V2 = AGENT_V1.replace('{"us": 30, "eu": 30, "uk": 30}', '{"us": 30, "eu": 30, "gb": 30}')

RUNNER = '''
import sys
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from openinference.instrumentation.openai import OpenAIInstrumentor

from shop.agent import handle_ticket

endpoint, project, version, api_base, host = sys.argv[1:6]
orders = sys.argv[6:]


class VersionOnSpans(SpanProcessor):
    """Phoenix keeps span attributes, not the resource's: copy the version onto every span."""

    def on_start(self, span, parent_context=None):
        span.set_attribute("service.version", span.resource.attributes["service.version"])


provider = TracerProvider(resource=Resource.create(
    {"service.name": "shop", "service.version": version, "openinference.project.name": project, "host.name": host}
))
provider.add_span_processor(VersionOnSpans())
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = provider.get_tracer("shop")
client = OpenAI(base_url=api_base, api_key="sk-loopback", max_retries=0)
failed = 0
for order in orders:
    try:
        handle_ticket(client, tracer, order)
    except KeyError:
        failed += 1
provider.shutdown()
print(f"{len(orders)} tickets, {failed} failed")
'''


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _policy(request: dict[str, Any]) -> str:
    text = request["messages"][-1]["content"]
    region = "uk" if "UK-" in text else "us"
    return json.dumps({"region": region})


def _run_hosts(python: Path, repo: Path, phoenix: PhoenixServer, project: str, version: str, api_base: str,
               orders: list[str]) -> None:
    halves = [orders[::2], orders[1::2]]  # two hosts, each with its share of the tickets
    procs = [
        subprocess.Popen(
            [str(python), str(repo / "run_app.py"), phoenix.url, project, version, api_base, f"host-{i}", *share],
            cwd=repo, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(repo)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i, share in enumerate(halves)
    ]
    for proc in procs:
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, phoenix_pg: PhoenixServer) -> dict[str, Any]:
    python, _ = ensure_phoenix_venv()
    repo = tmp_path_factory.mktemp("shop")
    (repo / "shop").mkdir()
    (repo / "shop" / "__init__.py").write_text("")
    (repo / "shop" / "agent.py").write_text(textwrap.dedent(AGENT_V1))
    (repo / "run_app.py").write_text(RUNNER)
    (repo / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1.0.0"\n')
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "shop agent")
    v1 = _git(repo, "rev-parse", "HEAD")
    project = f"shop-{uuid.uuid4().hex[:8]}"
    orders_v1 = [f"{'UK' if i % 3 == 0 else 'US'}-{1000 + i}" for i in range(24)]
    orders_v2 = [f"{'UK' if i % 3 == 0 else 'US'}-{2000 + i}" for i in range(24)]
    with LoopbackServer(_policy) as model:
        _run_hosts(python, repo, phoenix_pg, project, v1, model.api_base, orders_v1)
        (repo / "shop" / "agent.py").write_text(textwrap.dedent(AGENT_V2))
        _git(repo, "commit", "-q", "-am", "Use ISO 3166 codes for refund regions")
        v2 = _git(repo, "rev-parse", "HEAD")
        _run_hosts(python, repo, phoenix_pg, project, v2, model.api_base, orders_v2)
        calls = model.request_count
    assert calls == 48  # every ticket reached the model through the instrumented client
    phoenix_pg.wait_for_traces(project, 48)
    port = phoenix_pg.url.rsplit(":", 1)[1]
    return {"repo": repo, "v1": v1, "v2": v2, "source": f"phoenix://127.0.0.1:{port}/{project}"}


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "160", **(env or {})}, stdin=subprocess.DEVNULL,
    )


def test_analyze_finds_the_openinference_apps_new_failure(app: dict[str, Any]) -> None:
    out = _cli("analyze", "--source", app["source"], "--baseline", "1h", "--json", cwd=app["repo"])
    assert out.returncode == 1, out.stdout + out.stderr  # flagged
    result = json.loads(out.stdout)
    assert result["revision"] == app["v2"]  # the deploy: the first span carrying version 2
    assert result["window_traces"] == 24 and result["baseline_traces"] == 24
    flagged = [f for f in result["findings"] if f["verdict"] != "noise"]
    assert len(flagged) == 1, result["findings"]
    sig = flagged[0]["signature"]
    # From the span's exception event: the type, the message template, and the top in-app frame mapped to
    # this checkout's module (the frames were recorded by another process under this repository's path).
    assert sig["exception_types"] == ["KeyError"] and sig["template"] == "<*>"
    assert sig["frame"] == "shop.agent:refund_window"
    assert flagged[0]["window_count"] == 8 and flagged[0]["baseline_count"] == 0
    # What these traces lack is said plainly, once.
    assert out.stderr.count("no entry point recorded: rerun and lock need `@tracemend.track`") == 1


def test_triage_from_phoenix_finds_and_judges_the_change(app: dict[str, Any]) -> None:
    found = json.loads(_cli("analyze", "--source", app["source"], "--baseline", "1h", "--json", cwd=app["repo"]).stdout)
    signature = next(f for f in found["findings"] if f["verdict"] != "noise")["signature"]["signature_id"]
    verdict = {
        "decision": "investigate",
        "confidence": 0.85,
        "reasoning": "The region table lost 'uk' while the model still answers uk.",
        "linked_lines": [],
        "attributed_signatures": [signature],
    }
    with LoopbackServer(lambda request: json.dumps(verdict)) as judge:
        out = _cli(
            "triage", "--signature", signature[:10], "--source", app["source"], "--repo", str(app["repo"]),
            "--model", "openai/triage-model", "--json", cwd=app["repo"], env=judge.env(),
        )
        asked = [m["content"] for r in judge.requests for m in r["messages"] if m["role"] == "user"]
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert (result["base_revision"], result["head_revision"]) == (app["v1"], app["v2"])
    changed = {c["path"]: c["file_class"] for c in result["changed_files"]}
    assert changed == {"shop/agent.py": "runtime"}  # placed by the rules: the frames' module runs it
    assert result["caused_by_change"] is True and result["decision"] == "investigate"
    assert any("shop/agent.py" in line and "gb" in line for line in result["linked_lines"])
    # One model call, and it saw the failure as Phoenix recorded it.
    assert len(judge.requests) == 1
    assert "KeyError" in asked[0] and "shop/agent.py" in asked[0] and '"gb": 30' in asked[0]


def test_heal_from_phoenix_stops_plainly_where_an_entry_point_is_needed(app: dict[str, Any], tmp_path: Path) -> None:
    """Analyze, triage and diagnose work from the trace; rerunning and locking need our decorator, so heal
    says so, shows the unverified proposal and changes nothing."""
    from tracemend.heal import load_state
    from tracemend.testing import scripted_model

    model = scripted_model(tmp_path / "answers.yaml", [
        {"match": {"purpose": "triage"}, "response": {"content": json.dumps({
            "decision": "investigate", "confidence": 0.8, "reasoning": "uk left the region table.",
            "linked_lines": [], "attributed_signatures": []})}},
        {"match": {"purpose": "diagnose"}, "response": {"tool_calls": [{"name": "propose_fix", "arguments": {
            "root_cause": "shop/agent.py dropped the uk region the model still answers.",
            "locations": ["shop/agent.py:10"],
            "edits": 'shop/agent.py\n<<<<<<< SEARCH\n    days = {"us": 30, "eu": 30, "gb": 30}\n=======\n'
                     '    days = {"us": 30, "eu": 30, "gb": 30, "uk": 30}\n>>>>>>> REPLACE\n',
            "assertions": ["The reply states the refund window in days."]}}]}},
    ])
    before = (app["repo"] / "shop" / "agent.py").read_text()
    out = _cli("heal", "--source", app["source"], "--baseline", "1h", "--yes", "--model", model, "--repo",
               str(app["repo"]), "--fresh", cwd=app["repo"])
    assert out.returncode == 1, out.stdout + out.stderr  # a finding left unhealed
    state = load_state(app["repo"])
    assert state is not None and state.outcome == "cannot_rerun"
    assert state.triage is not None and state.triage.caused_by_change
    assert state.proposal is not None and state.proposal.touched_files == ["shop/agent.py"]
    assert state.proposal.comparison is None  # never claimed as verified
    assert "no entry point recorded: rerun and lock need `@tracemend.track`" in out.stdout
    assert (app["repo"] / "shop" / "agent.py").read_text() == before  # nothing was changed
    assert not (app["repo"] / "tests" / "regressions").exists()
