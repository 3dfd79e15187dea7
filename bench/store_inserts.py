"""What SQLite alone costs the writer per span, by the kind of trace id.

The store's own schema, with uniformly random trace ids (as recorded before) against the recorder's
(16 bits of the time, then 112 random bits) and fully time-ordered ones (48 bits of milliseconds).
The store first holds a history (by default a million one-span traces written at 200 a second, 1.5 GB:
more than SQLite's page cache), then takes a burst at 100 000 spans/s of simulated time in transactions
of 10 000 spans, as the writer does under backlog. Ratios against the first row, measured in this run.

Run: ``python bench/store_inserts.py [--prefill 1000000] [--history-rate 200]`` (about three minutes; CPU
time of the process; 1.5 GB of disk at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from typing import Any

from tracemend.store import Store

SPANS = 20_000
STEP_US = 10  # simulated time between traces in the burst: 100 000 per second
HISTORY_RATE = 200  # traces per second in the history before it
SCHEMES = ("random", "recorder's", "time-ordered")
BODY = json.dumps(
    {
        "span_id": "0" * 16, "trace_id": "0" * 32, "parent_id": None, "name": "work", "kind": "general",
        "start_time": "2026-01-05T10:00:00.000000+00:00", "end_time": "2026-01-05T10:00:00.000100+00:00",
        "input": {"x": 1, "label": "question"}, "output": 9, "error": None, "attributes": {},
    }
)  # fmt: skip
TRACE_BODY = BODY + " " * 300  # a trace body repeats the root span's input and output, and more


def trace_id(scheme: str, t_us: int) -> str:
    if scheme == "recorder's":  # as capture/decorator.py makes them: the time in 2**30 ns, 16 bits of it
        return f"{((t_us * 1000) >> 30) & 0xFFFF:04x}{random.getrandbits(112):028x}"
    if scheme == "time-ordered":  # 48 bits of milliseconds, then 80 random bits
        return f"{t_us // 1000:012x}{random.getrandbits(80):020x}"
    return f"{random.getrandbits(128):032x}"


def rows(n: int, scheme: str, t0: int, step: int = STEP_US) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    traces, spans = [], []
    for i in range(n):
        t = t0 + i * step
        tid = trace_id(scheme, t)
        spans.append(
            (tid, f"{random.getrandbits(64):016x}", None, "work", "general", t, t, 0, BODY)
        )
        traces.append(
            (tid, t, t, "ok", "m:work", "work", "p", "development", "c", 0, None, None, TRACE_BODY)
        )
    return traces, spans  # fmt: skip


def measure(scheme: str, prefill: int, history_rate: float = HISTORY_RATE, batch: int = 10_000) -> float:
    """CPU µs per span: the least of three rounds of SPANS spans (a busy machine only ever adds time)."""
    path = tempfile.mktemp(suffix=".db")
    try:
        with Store(path) as store:
            t0 = 1_767_600_000_000_000
            step = round(1e6 / history_rate)
            for _ in range(0, prefill, 10_000):
                store.write_rows(*rows(10_000, scheme, t0, step))
                t0 += 10_000 * step
            best = float("inf")
            for _ in range(3):
                traces, spans = rows(SPANS, scheme, t0)
                t0 += SPANS * STEP_US
                cpu = time.process_time()
                for k in range(0, SPANS, batch):
                    store.write_rows(traces[k : k + batch], spans[k : k + batch])
                best = min(best, (time.process_time() - cpu) / SPANS * 1e6)
            return best
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--prefill", type=int, default=1_000_000, help="traces in the store's history before timing"
    )
    parser.add_argument(
        "--history-rate",
        type=float,
        default=HISTORY_RATE,
        help="traces per second in that history (below 15 it spans more than the 19.5 h the ids' time "
        "bits wrap around in)",
    )
    args = parser.parse_args()
    hours = args.prefill / args.history_rate / 3600
    print("SQLite per one-span trace (2 rows): CPU µs per span, least of 3 rounds of 20 000")
    print(f"store: {args.prefill} traces written over {hours:.1f} h; 10 000 spans per transaction")
    base = None
    for scheme in SCHEMES:
        us = measure(scheme, args.prefill, args.history_rate)
        base = base or us
        print(f"{scheme + ' ids':<24}{us:8.1f}   {base / us:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
