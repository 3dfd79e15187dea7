"""The loop reading from Arize Phoenix on PostgreSQL: the demo's traffic, recorded by ``@tracemend.track``,
sent over OTLP by several host processes at once, and read back through ``--source phoenix://…``.

The demo world is the one ``tracemend demo`` builds (the example support agent in a scratch git
repository, a week of real traffic backdated, the seeded regression, the hour after the deploy). The
traces of the last 12 hours before the deploy and of the hour after it are split among three host
stores, as three machines would each hold their own, and three ``tracemend export otlp`` processes
(``host.name`` host-0, host-1, host-2) send them to Phoenix concurrently. (Phoenix on PostgreSQL stores
a few dozen to a few hundred spans a second on these shared 2-core machines, hence 12 hours and not the
week; every command below runs with ``--baseline 12h``, the local store's included.) Analyze from
Phoenix must then say what analyze says from the local store, and heal must run from Phoenix to a
locked, passing regression case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tracemend.heal import load_state
from tracemend.store import Store

from helpers.phoenix import PhoenixServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("phoenix")]
HOSTS = 3
BASELINE = "12h"


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, phoenix_pg: PhoenixServer) -> dict[str, Any]:
    """The demo world, its traces in Phoenix under a project of its own, sent by three host processes."""
    from tracemend.demo import prepare

    root = tmp_path_factory.mktemp("demo-world")
    started = time.perf_counter()
    scenario = prepare(root)
    project = f"support-{uuid.uuid4().hex[:8]}"
    hosts = [root / f"host-{i}.db" for i in range(HOSTS)]
    stores = [Store(path) for path in hosts]
    total = 0
    since = scenario.deploy_time - timedelta(hours=12)
    with Store(scenario.db, create=False) as store:
        for i, trace in enumerate(store.iter_traces(since=since, with_spans=True)):
            trace.project = project
            stores[i % HOSTS].add_traces([trace])
            total += 1
    for s in stores:
        s.close()
    recorded = time.perf_counter() - started
    started = time.perf_counter()
    exporters = [
        subprocess.Popen(
            [sys.executable, "-m", "tracemend.cli", "export", "otlp", "--db", str(path), "--endpoint", phoenix_pg.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "OTEL_RESOURCE_ATTRIBUTES": f"host.name=host-{i}"},
        )
        for i, path in enumerate(hosts)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in exporters]
    for process, output in zip(exporters, outputs, strict=True):
        assert process.returncode == 0, output
    stored = phoenix_pg.wait_for_traces(project, total, timeout=900)  # ingestion is slow on a busy machine
    print(
        f"\n[phoenix/postgres] demo world: {total} traces recorded in {recorded:.1f} s; sent by {HOSTS} hosts "
        f"and stored in {time.perf_counter() - started:.1f} s"
    )
    assert stored == total
    return {"scenario": scenario, "project": project, "source": f"phoenix://127.0.0.1:{phoenix_pg.url.rsplit(':', 1)[1]}/{project}",
            "total": total, "outputs": outputs}


def test_hosts_exported_concurrently_and_every_trace_arrived(world: dict[str, Any]) -> None:
    for i, output in enumerate(world["outputs"]):
        assert "✓ OTLP: " in output and " delivered to " in output, f"host-{i}: {output}"
    # Each host sent its own share (the traces the exporter reported delivered); together the whole store.
    sent = [int(o.split("✓ OTLP: ")[1].split(" trace")[0]) for o in world["outputs"]]
    assert sum(sent) == world["total"] and min(sent) > 0


def test_analyze_from_phoenix_flags_the_same_regression_as_the_local_store(world: dict[str, Any]) -> None:
    scenario = world["scenario"]
    local = _cli("analyze", "--db", str(scenario.db), "--baseline", BASELINE, "--json")
    started = time.perf_counter()
    remote = _cli("analyze", "--source", world["source"], "--baseline", BASELINE, "--json")
    remote_s = time.perf_counter() - started
    assert local.returncode == 1, local.stdout + local.stderr  # 1: something is flagged
    assert remote.returncode == 1, remote.stdout + remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    print(f"\n[phoenix/postgres] analyze --source over {world['total']} traces: {remote_s:.1f} s")
    assert b["revision"] == a["revision"] == scenario.bad_commit
    assert b["deploy_time"] == a["deploy_time"]
    assert (b["baseline_traces"], b["window_traces"]) == (a["baseline_traces"], a["window_traces"])
    assert b["findings"] == a["findings"]  # signatures, counts, p- and q-values, examples: all the same
    flagged = [f for f in b["findings"] if f["verdict"] != "noise"]
    assert flagged and flagged[0]["signature"]["exception_types"] == ["KeyError"]
    assert flagged[0]["signature"]["frame"] == "support_agent.tools:refund_policy"


def test_signatures_and_show_read_from_phoenix(world: dict[str, Any]) -> None:
    scenario = world["scenario"]
    since = (scenario.deploy_time - timedelta(hours=12)).isoformat()
    local = _cli("signatures", "--db", str(scenario.db), "--since", since, "--json")
    remote = _cli("signatures", "--source", world["source"], "--since", since, "--json")
    assert remote.returncode == 0, remote.stderr
    assert [json.loads(line) for line in remote.stdout.splitlines()] == [
        json.loads(line) for line in local.stdout.splitlines()
    ]
    with Store(scenario.db, create=False) as store:
        failing = next(store.iter_traces(status="error", newest_first=True, with_spans=True))
    shown = _cli("show", failing.trace_id[:12], "--source", world["source"], "--json")
    assert shown.returncode == 0, shown.stderr
    back = json.loads(shown.stdout)
    assert back.pop("scores") == []  # judges' and people's scores live in the local store only
    expected = json.loads(failing.model_dump_json())
    expected["project"] = world["project"]
    for span in expected["spans"]:
        usage = span["attributes"].get("usage")
        if usage and "total_tokens" not in usage:  # the exporter sends the total it can compute
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    assert back == expected  # the whole trace, spans and error frames included, as it was recorded


def test_heal_runs_from_phoenix_on_the_bundled_example(world: dict[str, Any]) -> None:
    scenario = world["scenario"]
    out = _cli(
        "heal", "--source", world["source"], "--baseline", BASELINE, "--yes", "--model", scenario.model, "--repo", str(scenario.repo),
        cwd=scenario.repo,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    state = load_state(scenario.repo)
    assert state is not None and state.outcome == "healed", out.stdout
    assert state.db == world["source"]  # the saved run says where it read its traces
    assert state.finding is not None and state.finding.signature.exception_types == ["KeyError"]
    assert state.check_before is not None and not state.check_before.passed
    assert state.check_after is not None and state.check_after.passed
    assert state.case_path and (scenario.repo / state.case_path).exists()
    assert "KeyError @ support_agent.tools:refund_policy" in out.stdout
