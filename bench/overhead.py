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

Then the writer: can it keep up? Paced at a target rate (bursts every millisecond, the producer sleeping in
between as an app waiting on I/O does), for a few seconds per rate, with one-span traces and with five-span
traces (an agent and four calls): spans/s produced, spans/s the writer had committed by the end of the
run, spans dropped, the caller's µs/call, and where the writer's time went (serialising, redaction scan,
SQLite) per span. The writer's sustained rate is the highest rate at which it keeps up: no drop, and at
most a sixth of what was produced still waiting at the end (in a 3 s run the 20 000-span queue could
otherwise hide a writer that falls behind). ``--baseline DIR`` runs the same rates with tracemend from another checkout (for
example ``git archive <commit> plugin | tar -x -C DIR``), in the same run. ``--writer-only`` skips the rest.
``--history N`` runs the paced rates on a copy of a store that already holds N traces, recorded beforehand by
the version being measured: a store that has outgrown SQLite's page cache, as a production one does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SCENARIOS = ("bare", "tracemend", "disabled", "otel", "opik", "tm+otel", "tm+otel-span")
WRITER_RATES = (15_000, 20_000, 25_000, 30_000, 50_000, 100_000, 150_000)  # spans per second
WRITER_SECONDS = 3.0
KEPT_UP = 5 / 6  # of the spans produced, the share written by the end of a run for the writer to keep up
WRITER_SHAPES = ("1-span", "5-span")
DRAIN_SPANS = 20_000
DRAIN_RUNS = 3
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


def measure_writer(shape: str, rate: int) -> dict[str, Any]:
    """Produce ``rate`` spans/s for WRITER_SECONDS in 1 ms bursts, then flush; what was written and dropped."""
    import tracemend

    @tracemend.track(kind="tool")
    def call(x: int, label: str) -> int:
        return x + len(label)

    @tracemend.track(kind="agent")
    def agent(x: int, label: str) -> int:
        return sum(call(x + k, label) for k in range(4))

    fn, spans_per_call = (_traced_workload(tracemend), 1) if shape == "1-span" else (agent, 5)
    for i in range(200):  # warm up: the writer thread starts, the store is created
        fn(i, "warm")
    tracemend.flush()
    base = tracemend.stats()
    per_burst = max(1, round(rate / spans_per_call / 1000))
    clock = time.perf_counter_ns
    call_ns: list[int] = []
    produced = 0
    started = clock()
    deadline = started + int(WRITER_SECONDS * 1e9)
    next_burst = started
    while next_burst < deadline:
        t0 = clock()
        for i in range(per_burst):
            fn(i, "question")
        call_ns.append((clock() - t0) // per_burst)
        produced += per_burst * spans_per_call
        next_burst += 1_000_000
        pause = next_burst - clock()
        if pause > 0:
            time.sleep(pause / 1e9)
    elapsed = (clock() - started) / 1e9
    # What the writer had committed while the app was producing: its own rate, whatever the queue hid.
    kept = tracemend.stats()["written"] - base["written"]
    tracemend.flush()
    drained = (clock() - started) / 1e9
    stats = tracemend.stats()
    out = {
        "produced": produced,
        "rate": produced / elapsed,
        "kept_rate": kept / elapsed,
        "written": stats["written"] - base["written"],
        "dropped": stats["dropped"] - base["dropped"],
        "lost": stats.get("lost", 0) + stats.get("failed", 0),
        "span_us": statistics.median(call_ns) / 1000 / spans_per_call,
        "drain_s": drained - elapsed,
        "source": tracemend.__file__,
    }
    from tracemend.capture import writer as writer_module

    timings = getattr(writer_module.active_writer(), "timings", None)
    if timings and timings.get("spans"):
        n = timings["spans"]
        out.update({k: timings[k] / n / 1000 for k in ("serialise_ns", "redact_ns", "store_ns")})
    return out


def measure_drain(shape: str, spans: int) -> dict[str, Any]:
    """The writer's capacity: ``spans`` queued while no writer runs, then one flush. CPU time of the whole
    process per span (both writer threads; the machine's load inflates it far less than wall time)."""
    import tracemend
    from tracemend.capture.state import STATE

    STATE.started = True  # no writer thread: the flush below does all the work
    tracemend.configure(queue_size=spans + 100)

    @tracemend.track(kind="tool")
    def call(x: int, label: str) -> int:
        return x + len(label)

    @tracemend.track(kind="agent")
    def agent(x: int, label: str) -> int:
        return sum(call(x + k, label) for k in range(4))

    fn, per_call = (_traced_workload(tracemend), 1) if shape == "1-span" else (agent, 5)
    fn(0, "warm")
    tracemend.flush()  # the store exists, the writer is built
    for i in range(spans // per_call):
        fn(i, "question")
    cpu, wall = time.process_time(), time.perf_counter()
    written = tracemend.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    out = {"written": written, "cpu_us": cpu / written * 1e6, "wall_rate": written / wall}
    from tracemend.capture import writer as writer_module

    timings = getattr(writer_module.active_writer(), "timings", None)
    if timings and "serialise_cpu_ns" in timings:
        out["serialise_cpu_us"] = timings["serialise_cpu_ns"] / written / 1000
        out["redact_us"] = timings["redact_ns"] / written / 1000
        out["store_cpu_us"] = timings["store_cpu_ns"] / written / 1000
    return out


def record_history(traces: int) -> dict[str, Any]:
    """A store's history, recorded by the tracemend under test: ``traces`` one-span traces, flushed as it goes
    (no drop), so that the rates are measured on a store larger than SQLite's page cache."""
    import tracemend

    fn = _traced_workload(tracemend)
    for start in range(0, traces, 5000):
        for i in range(start, min(traces, start + 5000)):
            fn(i, "history")
        tracemend.flush()
    return {"written": tracemend.stats()["written"]}


def _traced_workload(tracemend: Any) -> Any:
    return tracemend.track(_workload)


def run_writer(
    shape: str,
    rate: int,
    db: str,
    baseline: str | None,
    mode: str = "--writer-rate",
    history: str | None = None,
) -> dict[str, Any]:
    if history:
        shutil.copyfile(history, db)
    env = {**os.environ, "TRACEMEND_DB": db, "TRACEMEND_CODE_VERSION": "bench"}
    env.pop("TRACEMEND_DISABLED", None)
    if baseline:
        env["PYTHONPATH"] = baseline + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, __file__, "--writer-shape", shape, mode, str(rate)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"writer {shape} at {rate}/s failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if history:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
    return result


def baseline_path(checkout: str, tmp: str) -> str:
    """A folder on which ``import tracemend`` finds ``<checkout>/plugin`` (the package's folder there)."""
    link = os.path.join(tmp, "baseline", "tracemend")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.abspath(os.path.join(checkout, "plugin")), link)
    return os.path.dirname(link)


def writer_report(baseline_checkout: str | None, history: int = 0) -> None:
    print(
        f"writer, paced: {WRITER_SECONDS:g} s per rate in 1 ms bursts; default queue (20000 spans)\n"
        "made/s: spans the app made per second; kept/s: the writer had committed by the end\n"
        "µs/call: the caller's cost per span; serial., redact, sqlite: the writer's µs per span"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sources = [("this", None)]
        if baseline_checkout:
            sources.append(("baseline", baseline_path(baseline_checkout, tmp)))
        histories: dict[str, str] = {}
        if history:
            for label, path in sources:
                histories[label] = os.path.join(tmp, f"history-{label}.db")
                started = time.perf_counter()
                run_writer("1-span", history, histories[label], path, "--writer-history")
                size = os.path.getsize(histories[label]) / 2**20
                print(
                    f"history ({label}): {history} one-span traces recorded by that version, {size:.0f} MiB, "
                    f"in {time.perf_counter() - started:.0f} s; every paced run starts from a copy"
                )
        print(
            f"writer capacity: {DRAIN_SPANS} queued spans written by one flush (median of {DRAIN_RUNS} runs)"
        )
        print(f"{'code':<9}{'traces':<8}{'CPU µs/span':>12}{'spans per CPU-s':>16}{'wall spans/s':>13}")
        capacity: dict[tuple[str, str], float] = {}
        for label, path in sources:
            for shape in WRITER_SHAPES:
                runs = [
                    run_writer(shape, DRAIN_SPANS, os.path.join(tmp, f"drain-{label}-{shape}-{k}.db"), path,
                               "--writer-drain")
                    for k in range(DRAIN_RUNS)
                ]  # fmt: skip
                cpu = statistics.median(r["cpu_us"] for r in runs)
                wall = statistics.median(r["wall_rate"] for r in runs)
                capacity[(label, shape)] = cpu
                print(f"{label:<9}{shape:<8}{cpu:>12.1f}{1e6 / cpu:>16.0f}{wall:>13.0f}")
        for shape in WRITER_SHAPES:
            if ("baseline", shape) in capacity:
                ratio = capacity[("baseline", shape)] / capacity[("this", shape)]
                print(f"[{shape}] writer CPU per span: baseline/this {ratio:.2f}x")
        best: dict[tuple[str, str], int] = {}
        fastest: dict[tuple[str, str], int] = {}
        header = (
            f"{'code':<9}{'traces':<7}{'target':>7}{'made/s':>8}{'kept/s':>8}{'dropped':>8}"
            f"{'µs/call':>8}{'serial.':>8}{'redact':>7}{'sqlite':>7}"
        )
        print(header)
        for label, path in sources:
            for shape in WRITER_SHAPES:
                for n, rate in enumerate(WRITER_RATES):
                    db = os.path.join(tmp, f"{label}-{shape}-{n}.db")
                    r = run_writer(shape, rate, db, path, history=histories.get(label))
                    if path and not r["source"].startswith(path):
                        raise SystemExit(f"the baseline run imported {r['source']}")
                    timing = "".join(
                        f"{r[k]:>{w}.1f}" if k in r else f"{'-':>{w}}"
                        for k, w in (("serialise_ns", 8), ("redact_ns", 7), ("store_ns", 7))
                    )
                    print(
                        f"{label:<9}{shape:<7}{rate:>7}{r['rate']:>8.0f}{r['kept_rate']:>8.0f}"
                        f"{r['dropped'] + r['lost']:>8}{r['span_us']:>8.2f}{timing}"
                    )
                    key = (label, shape)
                    fastest[key] = max(fastest.get(key, 0), int(r["kept_rate"]))
                    # Kept up: nothing dropped, and by the end at most a sixth of what was produced still
                    # waited (the queue of 20000 spans can otherwise hide a writer that falls behind).
                    if (
                        r["dropped"] + r["lost"] == 0
                        and r["written"] == r["produced"]
                        and r["kept_rate"] >= KEPT_UP * r["rate"]
                    ):
                        best[key] = max(best.get(key, 0), int(r["rate"]))
        for (label, shape), rate in sorted(fastest.items()):
            print(f"most kept/s ({label}, {shape} traces): {rate}")
        for (label, shape), rate in sorted(best.items()):
            print(f"sustained, keeping up ({label}, {shape} traces): {rate} spans/s")
        for label, _ in sources:
            for shape in WRITER_SHAPES:
                if (label, shape) not in best:
                    print(
                        f"sustained, keeping up ({label}, {shape} traces): below {WRITER_RATES[0]} spans/s"
                    )


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
    parser.add_argument("--writer-shape", choices=WRITER_SHAPES, help=argparse.SUPPRESS)
    parser.add_argument("--writer-rate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--writer-drain", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--writer-history", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="run the writer's paced rates on a store that already holds N traces (300000: about 450 MiB)",
    )
    parser.add_argument(
        "--baseline", metavar="DIR", help="a checkout of another version to compare the writer with"
    )
    parser.add_argument("--writer-only", action="store_true", help="only the writer's paced rates")
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(measure(args.scenario)))
        return
    if args.writer_shape and args.writer_history:
        print(json.dumps(record_history(args.writer_history)))
        return
    if args.writer_shape and args.writer_drain:
        print(json.dumps(measure_drain(args.writer_shape, args.writer_drain)))
        return
    if args.writer_shape:
        print(json.dumps(measure_writer(args.writer_shape, args.writer_rate)))
        return
    if args.writer_only:
        writer_report(args.baseline, args.history)
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
    writer_report(args.baseline, args.history)


if __name__ == "__main__":
    main()
