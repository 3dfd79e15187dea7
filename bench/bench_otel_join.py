"""What joining an active OpenTelemetry span costs the decorator.

The check runs on root spans only and only when ``opentelemetry.trace`` is already imported. Printed:
the added time per root call (the join step alone: no OTel span active / one active), next to the time
of a whole traced root call with opentelemetry never imported (measured in a fresh process), and ratios.
Best of several rounds; no asserts (timings on a shared machine are noisy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit

ROOT_CALL = r"""
import time, tracemend, sys
@tracemend.track
def root(x):
    return x
best = float("inf")
for _ in range(7):
    t = time.perf_counter_ns()
    for i in range(10000):
        root(i)
    best = min(best, (time.perf_counter_ns() - t) / 10000)
    tracemend.flush()
assert "opentelemetry.trace" not in sys.modules
print(best)
"""


def _best(fn, number: int = 100_000, rounds: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e9


def main() -> None:
    env = {
        **os.environ,
        "TRACEMEND_DB": os.path.join(tempfile.mkdtemp(), "bench.db"),
        "TRACEMEND_QUEUE_SIZE": "100000",
    }
    out = subprocess.run(
        [sys.executable, "-c", ROOT_CALL], capture_output=True, text=True, env=env, check=True
    )
    root_ns = float(out.stdout.strip())

    from opentelemetry.sdk.trace import TracerProvider

    from tracemend.capture.decorator import join_otel

    class Rec:
        __slots__ = ("trace_attrs",)

    rec = Rec()
    baseline = _best(lambda: None)
    idle = _best(lambda: join_otel(rec)) - baseline
    with TracerProvider().get_tracer("bench").start_as_current_span("request"):
        active = _best(lambda: join_otel(rec)) - baseline
    assert isinstance(rec.trace_attrs["metadata"]["otel.trace_id"], int)
    print(f"traced root call, opentelemetry not imported: {root_ns:7.0f} ns")
    print(
        f"join step, opentelemetry imported, no span:  +{idle:6.0f} ns ({idle / root_ns:.2f}x of a root call)"
    )
    print(
        f"join step, inside an active OTel span:       +{active:6.0f} ns ({active / root_ns:.2f}x of a root call)"
    )
    print("child spans: +0 ns (the check runs on root spans only)")


if __name__ == "__main__":
    main()
