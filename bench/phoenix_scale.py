"""``tracemend analyze`` over traces held in Arize Phoenix on PostgreSQL, beside the same traces in the local
store: wall time and peak memory of the real CLI, each in a process of its own.

    python bench/phoenix_scale.py                        # 20,000 and 100,000 traces
    python bench/phoenix_scale.py --sizes 5000           # a quick run

The traffic: a week of an agent (an AGENT root span over a TOOL span per trace) at a steady rate, ~4%
failing across 30 signatures, then the hour after a deploy where 10% of the traces fail with a new
``KeyError``. The same Trace records go into a local store and into Phoenix.

How they get into Phoenix: Phoenix on PostgreSQL stores OTLP spans at a few dozen to a few hundred spans a
second on these shared 2-core machines (this script measures it on a sample), so 100,000 traces through
OTLP would take hours. They are written straight into Phoenix's ``traces`` and ``spans`` tables with
PostgreSQL ``COPY``, in the row format Phoenix's own ingestion writes: the exporter's attributes
(``tracemend.export.otel``), nested as Phoenix nests dotted keys, ``metadata`` parsed, exception events,
span kind and cumulative error counts. The script checks that claim before measuring: a sample of
traces goes through OTLP into one project and through COPY into another, and Phoenix's API must return
the same spans for both. Then both analyses must report the same findings, or the script fails.

Needs PostgreSQL (``apt-get install postgresql``) and the Phoenix virtualenv the tests use
(tests/helpers/phoenix.py builds it on first use).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tracemend.export.otel import SpanConverter, export_traces, make_exporter  # noqa: E402
from tracemend.records import CodeVersion, ErrorInfo, Frame, Span, Trace  # noqa: E402
from tracemend.store import Store  # noqa: E402

from helpers.phoenix import PhoenixServer, start_phoenix  # noqa: E402
from helpers.postgres import Postgres, start_postgres  # noqa: E402

OLD, NEW = "a1" * 20, "b2" * 20
WORDS = ["search", "refund", "weather", "order", "invoice", "profile", "ticket", "billing"]


# --- the traffic --------------------------------------------------------------------------------------


def _failure(rng: random.Random, kind: int) -> ErrorInfo:
    etype, message = [
        ("httpx.ReadTimeout", f"timed out after {rng.randrange(5, 60)}s calling https://api.example.com/v1/{rng.choice(WORDS)}"),
        ("openai.RateLimitError", f"Rate limit reached for gpt-4o on tokens per min: Used {rng.randrange(9000)}"),
        ("json.decoder.JSONDecodeError", f"Expecting ',' delimiter: line {rng.randrange(9)} column {rng.randrange(80)}"),
    ][kind % 3]
    module = f"agent.step{kind}"
    return ErrorInfo(type=etype, message=message, frames=[
        Frame(file="agent/main.py", line=12, function="run", module="agent.main", in_app=True),
        Frame(file=f"agent/step{kind}.py", line=30 + kind, function=f"call_{kind}", module=module, in_app=True),
    ])


def traffic(n: int, now: datetime, seed: int = 3) -> Iterator[Trace]:
    rng = random.Random(seed)
    deploy = now - timedelta(hours=1)
    start = deploy - timedelta(days=7)
    span = (now - start) / n
    for i in range(n):
        t = start + span * i + timedelta(microseconds=rng.randrange(1000))
        commit = OLD if t < deploy else NEW
        error = None
        u = rng.random()
        if t >= deploy and u < 0.10:
            error = ErrorInfo(type="KeyError", message=f"'{rng.choice(['uk', 'gb'])}'", frames=[
                Frame(file="agent/main.py", line=12, function="run", module="agent.main", in_app=True),
                Frame(file="agent/tools.py", line=41, function="refund_policy", module="agent.tools", in_app=True)])
        elif u < 0.14:
            error = _failure(rng, rng.randrange(30))
        tid = f"{rng.getrandbits(128):032x}"
        root, child = f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016x}"
        end = t + timedelta(milliseconds=40)
        yield Trace(
            trace_id=tid, entry_point="agent.main:run", name="run", project="bench",
            input={"message": f"where is my {rng.choice(WORDS)}?"}, output=None if error else "on its way",
            status="error" if error else "ok", error=error, start_time=t, end_time=end,
            code_version=CodeVersion(commit=commit),
            spans=[
                Span(span_id=root, trace_id=tid, name="run", kind="agent", start_time=t, end_time=end,
                     input={"message": "where is my order?"}, error=error),
                Span(span_id=child, trace_id=tid, parent_id=root, name="lookup", kind="tool",
                     start_time=t + timedelta(milliseconds=5), end_time=t + timedelta(milliseconds=30),
                     input={"order": "A1001"}, output={"status": "shipped"}),
            ],
        )


# --- Phoenix's rows ------------------------------------------------------------------------------------


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted attribute keys nested, ``metadata`` parsed: how Phoenix stores what OTLP sends."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.endswith("metadata") and isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, tuple):
            value = list(value)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat()


def copy_rows(pg: Postgres, database: str, project: str, traces: Iterator[Trace]) -> int:
    """Write traces into Phoenix's tables with COPY; returns how many."""
    psql = [str(pg.bin / "psql"), database, "-v", "ON_ERROR_STOP=1", "-q", "-tA"]

    def sql(query: str) -> str:
        return subprocess.run([*psql, "-c", query], capture_output=True, text=True, check=True).stdout.strip()

    project_id = int(sql(f"insert into projects (name) values ('{project}') returning id").splitlines()[0])
    trace_id = int(sql("select coalesce(max(id), 0) from traces"))
    span_id = int(sql("select coalesce(max(id), 0) from spans"))
    converter = SpanConverter()
    t_buf, s_buf = io.StringIO(), io.StringIO()
    tw, sw = csv.writer(t_buf), csv.writer(s_buf)
    count = 0
    for trace in traces:
        trace_id += 1
        count += 1
        spans = converter.convert(trace)
        errors = {s.context.span_id: int(s.status.status_code.name == "ERROR") for s in spans}
        starts = [s.start_time for s in spans]
        tw.writerow([trace_id, project_id, trace.trace_id, _iso(min(starts)), _iso(max(s.end_time for s in spans))])
        for s in spans:
            span_id += 1
            children = sum(v for k, v in errors.items() if k != s.context.span_id) if s.parent is None else 0
            attributes = _nest(dict(s.attributes))
            events = [{"name": e.name, "timestamp": _iso(e.timestamp), "attributes": dict(e.attributes)} for e in s.events]
            sw.writerow([
                span_id, trace_id, f"{s.context.span_id:016x}", f"{s.parent.span_id:016x}" if s.parent else None,
                s.name, attributes.get("openinference", {}).get("span", {}).get("kind", "UNKNOWN"),
                _iso(s.start_time), _iso(s.end_time), json.dumps(attributes), json.dumps(events),
                s.status.status_code.name, s.status.description or "", errors[s.context.span_id] + children, 0, 0,
            ])
    columns = ("id, trace_rowid, span_id, parent_id, name, span_kind, start_time, end_time, attributes, events, "
               "status_code, status_message, cumulative_error_count, cumulative_llm_token_count_prompt, "
               "cumulative_llm_token_count_completion")
    for table, cols, buf, extra in (
        ("traces", "id, project_rowid, trace_id, start_time, end_time", t_buf, ""),
        ("spans", columns, s_buf, ", force_not_null (status_message)"),  # "" is a message, not NULL
    ):
        subprocess.run([*psql, "-c", f"\\copy {table} ({cols}) from stdin with (format csv{extra})"],
                       input=buf.getvalue(), text=True, check=True)
    sql(f"select setval('traces_id_seq', {trace_id}), setval('spans_id_seq', {span_id})")
    return count


def _spans_as_served(server: PhoenixServer, project: str) -> list[dict[str, Any]]:
    pid = server.get(f"/v1/projects/{project}")["data"]["id"]
    query = """query($id: ID!) { node(id: $id) { ... on Project { spans(first: 1000, sort: {col: startTime, dir: asc}) {
      edges { node { name spanKind statusCode statusMessage startTime endTime parentId attributes
                     events { name timestamp attributes } } } } } } }"""
    out = []
    for edge in server.graphql(query, {"id": pid})["node"]["spans"]["edges"]:
        node = edge["node"]
        node["parentId"] = node["parentId"] is not None
        attributes = json.loads(node["attributes"])
        attributes.get("tracemend", {}).pop("trace_id", None)
        node["attributes"] = attributes
        out.append(node)
    return out


def check_rows(pg: Postgres, database: str, server: PhoenixServer, now: datetime) -> float:
    """The same traces through OTLP and through COPY must be served alike; returns OTLP spans/s stored."""
    sample = list(traffic(400, now, seed=11))[-40:]  # the window's end: errors and oks

    def copied(ids_from: int) -> list[Trace]:
        rng = random.Random(ids_from)
        out = []
        for t in sample:
            t = t.model_copy(deep=True)
            t.trace_id = f"{rng.getrandbits(128):032x}"
            ids = {s.span_id: f"{rng.getrandbits(64):016x}" for s in t.spans}
            for s in t.spans:
                s.trace_id, s.span_id = t.trace_id, ids[s.span_id]
                s.parent_id = ids.get(s.parent_id) if s.parent_id else None
            out.append(t)
        return out

    tag = uuid.uuid4().hex[:6]
    via_otlp = copied(1)
    for t in via_otlp:
        t.project = f"check-otlp-{tag}"
    exporter = make_exporter(server.url)
    started = time.perf_counter()
    assert export_traces(via_otlp, exporter).ok
    exporter.shutdown()
    server.wait_for_traces(f"check-otlp-{tag}", len(via_otlp))
    rate = sum(len(t.spans) for t in via_otlp) / (time.perf_counter() - started)
    copy_rows(pg, database, f"check-copy-{tag}", iter(copied(2)))
    a, b = _spans_as_served(server, f"check-otlp-{tag}"), _spans_as_served(server, f"check-copy-{tag}")
    assert a == b, "COPY rows are not served like OTLP-ingested spans:\n" + json.dumps([a[0], b[0]], indent=1)[:3000]
    return rate


# --- measuring ----------------------------------------------------------------------------------------


# Runs the command as its own child and prints that child's peak RSS (KiB). A process forked from this
# script and exec'd reports this script's memory as its own peak (Linux keeps the high-water mark across
# exec), so the measured process must be a grandchild, forked from this small launcher.
_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def measure(args: list[str], cwd: Path) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, peak RSS in MiB and the JSON of one ``tracemend`` run in a process of its own."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        command = [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "tracemend.cli", *args]
        returncode = subprocess.call(command, cwd=cwd, stdout=out, stderr=err)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        errors = err.read()
        if returncode not in (0, 1):
            raise SystemExit(f"tracemend {' '.join(args)} failed ({returncode}):\n{errors}")
        peak_kib = int(errors.strip().splitlines()[-1])
        return wall, peak_kib / 1024, json.loads(out.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000", help="trace counts, comma-separated")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tracemend-phoenix-bench-"))
    now = datetime.now(UTC).replace(microsecond=0)
    pg = start_postgres()
    server = None
    try:
        database = pg.create_database("bench")
        started = time.perf_counter()
        server = start_phoenix(work, database_url=database)
        print(f"Phoenix on PostgreSQL started in {time.perf_counter() - started:.0f} s ({server.url})", flush=True)
        rate = check_rows(pg, database, server, now)
        print(f"check: 40 traces through OTLP and through COPY are served alike; OTLP stored {rate:.0f} spans/s here",
              flush=True)
        rows = []
        for n in sizes:
            db = work / f"local-{n}.db"
            started = time.perf_counter()
            with Store(db) as store:
                store.add_traces(traffic(n, now, seed=n))
            local_load = time.perf_counter() - started
            project = f"bench-{n}-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            copy_rows(pg, database, project, traffic(n, now, seed=n))  # trace ids are unique per Phoenix
            phoenix_load = time.perf_counter() - started
            source = f"phoenix://{server.url.split('://', 1)[1]}/{project}"
            lw, lm, local = measure(["analyze", "--db", str(db), "--json"], work)
            pw, pm, remote = measure(["analyze", "--source", source, "--json"], work)
            if remote["findings"] != local["findings"] or remote["window_traces"] != local["window_traces"]:
                raise SystemExit(f"{n} traces: Phoenix and the local store disagree")
            flagged = [f["signature"]["exception_types"][0] for f in remote["findings"] if f["verdict"] != "noise"]
            rows.append((n, lw, lm, pw, pm, flagged, local_load, phoenix_load))
            print(f"{n:,} traces: loaded locally in {local_load:.0f} s, into Phoenix (COPY) in {phoenix_load:.0f} s; "
                  f"same findings, flagged {flagged}; analyze: local {lw:.1f} s / {lm:.0f} MiB, "
                  f"Phoenix {pw:.1f} s / {pm:.0f} MiB", flush=True)
        print()
        print("| traces | local store: wall | peak RSS | Phoenix (PostgreSQL): wall | peak RSS | wall ratio |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n, lw, lm, pw, pm, _flagged, _a, _b in rows:
            print(f"| {n:,} | {lw:.1f} s | {lm:.0f} MiB | {pw:.1f} s | {pm:.0f} MiB | {pw / lw:.1f}× |")
    finally:
        if server is not None:
            server.stop()
        pg.stop()


if __name__ == "__main__":
    main()
