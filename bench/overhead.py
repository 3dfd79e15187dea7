"""Per-call overhead of @tracemend.track against a bare call, an OpenTelemetry span and @opik.track.

Run: ``python bench/overhead.py`` (about half a minute). Every scenario runs in a fresh interpreter so
that one tracer's background threads do not slow another down; the ratios compare numbers measured in
this same run. Two loops per scenario:

- tight: batches of calls back to back; the median batch time divided by the batch size (small
  batches, so that the median is not a batch the OS scheduler pre-empted on a busy machine);
- paced: one call every ``PACE_US`` µs (busy-waiting in between), each call timed; the median.

Two scenarios price the OpenTelemetry join (``capture/otel_join.py``): ``tm+otel`` is the decorator with
opentelemetry imported and no span active (the app uses OTel elsewhere), ``tm+otel-span`` the decorator
inside an active app span, where each tracked call becomes OTel's current parent while it runs.

Also the import cost of ``tracemend`` and ``opik``: the median over fresh interpreters of the time to
import the package (without ``-X importtime``, which slows imports down itself).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SCENARIOS = ("bare", "tracemend", "disabled", "otel", "opik", "tm+otel", "tm+otel-span")
TIGHT_BATCH = 100
TIGHT_BATCHES = 400
TIGHT_BUDGET_S = 10.0
PACED_CALLS = 5000
PACE_US = 100
IMPORT_RUNS = 7
OFFLINE_OPIK = {
    # A closed loopback port: opik cannot reach a server, and sends no telemetry.
    "OPIK_URL_OVERRIDE": "http://127.0.0.1:9/api",
    "OPIK_SENTRY_ENABLE": "false",
    "OPIK_ANALYTICS_ENABLE": "false",
    "OPIK_PYTEST_EXPERIMENT_ENABLED": "false",
    "OPIK_CHECK_TLS_CERTIFICATE": "false",
}


def _workload(x: int, label: str) -> int:
    return x + len(label)


def build(scenario: str) -> Any:
    """The function to time, set up the way each tracer is meant to be used."""
    if scenario == "bare":
        return _workload
    if scenario in ("tracemend", "disabled"):
        import tracemend

        if scenario == "disabled":
            tracemend.configure(enabled=False)
        return tracemend.track(_workload)
    if scenario in ("tm+otel", "tm+otel-span"):
        from opentelemetry.sdk.trace import TracerProvider

        import tracemend

        traced = tracemend.track(_workload)
        if scenario == "tm+otel":
            return traced
        # The app's request span stays open for the whole run: every traced call is a root joining it.
        span = TracerProvider().get_tracer("bench").start_span("request")
        from opentelemetry import context, trace

        context.attach(trace.set_span_in_context(span))
        return traced
    if scenario == "otel":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class NoOpExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
        tracer = provider.get_tracer("bench")

        def otel_workload(x: int, label: str) -> int:
            with tracer.start_as_current_span("workload"):
                return x + len(label)

        return otel_workload
    if scenario == "opik":
        import opik

        return opik.track(_workload)
    raise ValueError(scenario)


def measure(scenario: str) -> dict[str, Any]:
    fn = build(scenario)
    clock = time.perf_counter_ns
    for i in range(2000):  # warm up: first-call setup, writer thread start, caches
        fn(i, "warm")
    if scenario.startswith(("tracemend", "tm+")):
        import tracemend

        # Steady state: the writer has started (imported pydantic, opened the store) before timing;
        # its one-off start-up is not a per-call cost.
        tracemend.flush()
    batches = []
    began = clock()
    for n in range(TIGHT_BATCHES):
        if n >= 50 and clock() - began > TIGHT_BUDGET_S * 1e9:  # a slow tracer gets fewer batches
            break
        start = clock()
        for i in range(TIGHT_BATCH):
            fn(i, "question")
        batches.append((clock() - start) / TIGHT_BATCH / 1000)
    extra: dict[str, Any] = {"tight_batches": len(batches)}
    if scenario.startswith(("tracemend", "tm+")):
        import tracemend

        tracemend.flush()
        tight_stats = tracemend.stats()
        extra["tight_dropped"] = tight_stats["dropped"]
    paced = []
    next_at = clock()
    step = PACE_US * 1000
    for i in range(PACED_CALLS):
        next_at += step
        while clock() < next_at:
            pass
        start = clock()
        fn(i, "question")
        paced.append((clock() - start) / 1000)
    if scenario.startswith(("tracemend", "tm+")):
        tracemend.flush()
        stats = tracemend.stats()
        extra.update(written=stats["written"], paced_dropped=stats["dropped"] - extra["tight_dropped"])
    return {"tight": statistics.median(batches), "paced": statistics.median(paced), **extra}


def run_scenario(scenario: str, db: str) -> dict[str, Any]:
    env = {**os.environ, **OFFLINE_OPIK, "TRACEMEND_DB": db, "TRACEMEND_CODE_VERSION": "bench"}
    env.pop("TRACEMEND_DISABLED", None)
    out = subprocess.run(
        [sys.executable, __file__, "--scenario", scenario],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"scenario {scenario} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time(module: str) -> float:
    """Median milliseconds to import ``module`` in a fresh interpreter (interpreter start excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    env = {**os.environ, **OFFLINE_OPIK}
    runs = []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(measure(args.scenario)))
        return

    print(
        f"python {sys.version.split()[0]}; tight: {TIGHT_BATCHES}x{TIGHT_BATCH} calls; paced: {PACED_CALLS} calls, one per {PACE_US} µs"
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in SCENARIOS:
            results[scenario] = run_scenario(scenario, os.path.join(tmp, f"{scenario}.db"))
    print(f"{'scenario':<14}{'tight µs/call':>15}{'paced µs/call':>15}")
    for scenario, r in results.items():
        note = f"   ({r['tight_batches']} tight batches)" if r["tight_batches"] < TIGHT_BATCHES else ""
        if "written" in r:
            note = (
                f"   (spans written {r['written']}; dropped with a full queue: tight {r['tight_dropped']},"
                f" paced {r['paced_dropped']})"
            )
        print(f"{scenario:<14}{r['tight']:>15.3f}{r['paced']:>15.3f}{note}")

    bare, tm, off, otel, opik, tm_otel, tm_span = (results[s] for s in SCENARIOS)
    for loop in ("tight", "paced"):
        over_tm = tm[loop] - bare[loop]
        over_otel = otel[loop] - bare[loop]
        over_opik = opik[loop] - bare[loop]
        over_off = off[loop] - bare[loop]
        print(
            f"[{loop}] overhead over bare (µs): tracemend {over_tm:.3f}, disabled {over_off:.3f}, "
            f"otel span {over_otel:.3f}, opik {over_opik:.3f}"
        )
        print(
            f"[{loop}] ratios: otel/tracemend {over_otel / over_tm:.1f}x, opik/tracemend {over_opik / over_tm:.1f}x, "
            f"disabled/bare {off[loop] / bare[loop]:.2f}x (per-call time)"
        )
    for loop in ("tight", "paced"):
        idle = tm_otel[loop] - tm[loop]
        joined = tm_span[loop] - tm[loop]
        print(
            f"[{loop}] OTel join, added to tracemend (µs): opentelemetry imported, no span {idle:+.3f}; "
            f"inside an active span {joined:+.3f} ({tm_span[loop] - bare[loop]:.3f} over bare; "
            f"an otel span alone {otel[loop] - bare[loop]:.3f})"
        )
    tight_tm = tm["tight"] - bare["tight"]
    tight_otel = otel["tight"] - bare["tight"]
    tight_off = off["tight"] - bare["tight"]
    print(f"bar: tracemend <= 5 µs/span over bare (tight): {tight_tm:.3f} µs  {verdict(tight_tm <= 5)}")
    print(
        f"bar: tracemend >= 3x faster than an otel span (tight): {tight_otel / tight_tm:.1f}x  {verdict(tight_otel >= 3 * tight_tm)}"
    )
    print(f"bar: disabled path <= 0.5 µs over bare (tight): {tight_off:.3f} µs  {verdict(tight_off <= 0.5)}")

    tm_import = import_time("tracemend")
    opik_import = import_time("opik")
    print(
        f"import tracemend: {tm_import:.1f} ms; import opik: {opik_import:.1f} ms (median of {IMPORT_RUNS} fresh interpreters)"
    )
    print(
        f"bar: import tracemend <= 100 ms: {verdict(tm_import <= 100)}; <= 1/10 of opik ({opik_import / tm_import:.1f}x): {verdict(tm_import * 10 <= opik_import)}"
    )


if __name__ == "__main__":
    main()
