"""What SQLite alone costs the writer per span, with the store's own schema: random trace ids (as recorded
today) against time-ordered ones, in transactions of 2 000 and 10 000 spans, on a store that already holds
traces. Ratios against the first row, measured in this same run.

Run: ``python bench/store_inserts.py [--prefill 100000]`` (about a minute; CPU time of the process).
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
BODY = json.dumps(
    {
        "span_id": "0" * 16, "trace_id": "0" * 32, "parent_id": None, "name": "work", "kind": "general",
        "start_time": "2026-01-05T10:00:00.000000+00:00", "end_time": "2026-01-05T10:00:00.000100+00:00",
        "input": {"x": 1, "label": "question"}, "output": 9, "error": None, "attributes": {},
    }
)  # fmt: skip
TRACE_BODY = BODY + " " * 300  # a trace body repeats the root span's input and output, and more


def rows(n: int, ordered: bool, t0: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    traces, spans = [], []
    for i in range(n):
        # Time-ordered: 48 bits of the start time, then 80 random bits (W3C trace context keeps its
        # randomness in the rightmost bytes).
        tid = (
            f"{(t0 + i) // 1000:012x}{random.getrandbits(80):020x}"
            if ordered
            else f"{random.getrandbits(128):032x}"
        )
        spans.append(
            (tid, f"{random.getrandbits(64):016x}", None, "work", "general", t0 + i, t0 + i, 0, BODY)
        )
        traces.append(
            (tid, t0 + i, t0 + i, "ok", "m:work", "work", "p", "development", "c", 0, None, None, TRACE_BODY)
        )
    return traces, spans  # fmt: skip


def measure(ordered: bool, batch: int, prefill: int) -> float:
    path = tempfile.mktemp(suffix=".db")
    try:
        with Store(path) as store:
            t0 = 1_767_600_000_000_000
            for _ in range(0, prefill, 5000):
                store.write_rows(*rows(5000, ordered, t0))
                t0 += 5000
            traces, spans = rows(SPANS, ordered, t0)
            cpu = time.process_time()
            for k in range(0, SPANS, batch):
                store.write_rows(traces[k : k + batch], spans[k : k + batch])
            return (time.process_time() - cpu) / SPANS * 1e6
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefill", type=int, default=100_000, help="traces in the store before timing")
    args = parser.parse_args()
    print(f"SQLite per one-span trace (2 rows), store prefilled with {args.prefill} traces; CPU µs per span")
    base = None
    for ordered in (False, True):
        for batch in (2000, 10_000):
            us = measure(ordered, batch, args.prefill)
            base = base or us
            label = f"{'time-ordered' if ordered else 'random'} ids, {batch} spans per transaction"
            print(f"{label:<48}{us:8.1f}   {base / us:5.2f}x")


if __name__ == "__main__":
    main()
