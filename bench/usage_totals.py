"""Time the trace view's store reads on a large store: token and cost totals (``status``, ``traces``) and the
JSON-body filters (``traces --session/--tag/--meta``), against baselines measured in the same run.

Baselines: reading every span body once (``sum(length(body))``) and one ``json_extract`` per span, the least
any total over spans stored as JSON can cost; an indexed count of traces for the filters.

    python bench/usage_totals.py                   # 100,000 traces, 400,000 spans
    python bench/usage_totals.py --traces 20000    # a quick run
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracemend.store import Store

MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b"]
ENTRIES = [f"app.agents:{name}" for name in ("support", "triage", "summarize", "search", "billing")]
PROMPT = "You are a helpful assistant. " * 40  # ~1.2 kB of input per model span, as real prompts are


def build(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start_us = 1_770_000_000_000_000
    with Store(path) as store:
        traces, spans = [], []
        for i in range(n):
            tid = f"{rng.getrandbits(128):032x}"
            t_us = start_us + i * 1_000_000
            entry = rng.choice(ENTRIES)
            body = {
                "trace_id": tid, "entry_point": entry, "name": entry.rsplit(":", 1)[1], "input": {"q": PROMPT[:200]},
                "status": "ok", "start_time": "2026-02-02T00:00:00Z", "tags": [rng.choice(["web", "mobile", "api"])],
                "metadata": {"tier": rng.choice(["free", "pro", "gold"]), "seats": rng.randrange(1, 50)},
                "session_id": f"s-{rng.randrange(n // 5 + 1)}", "user_id": f"u-{rng.randrange(n // 10 + 1)}",
            }
            traces.append((tid, t_us, t_us + 900, "ok", entry, body["name"], "p", "production", "c" * 40, 0, None, None,
                           json.dumps(body)))
            for j in range(4):
                attrs: dict[str, Any] = {}
                if j in (1, 2):
                    attrs = {"model": rng.choice(MODELS), "cost": rng.random() / 1000,
                             "usage": {"prompt_tokens": rng.randrange(50, 2000), "completion_tokens": rng.randrange(5, 400)}}
                span = {"span_id": f"{i:08x}{j:08x}", "trace_id": tid, "name": f"s{j}", "kind": "llm" if attrs else "tool",
                        "start_time": "2026-02-02T00:00:00Z", "input": {"prompt": PROMPT} if attrs else {"x": j},
                        "output": "an answer of some length " * 8, "attributes": attrs}
                spans.append((tid, span["span_id"], None, span["name"], span["kind"], t_us, t_us + 100, 0, json.dumps(span)))
            if len(traces) >= 5000:
                store.write_rows(traces, spans)
                traces, spans = [], []
        if traces:
            store.write_rows(traces, spans)


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.db"
        t0 = time.perf_counter()
        build(path, args.traces)
        print(f"built {args.traces:,} traces, {4 * args.traces:,} spans in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 1_048_576:.0f} MiB)")
        with Store(path, create=False) as store:
            conn = store._conn  # noqa: SLF001 - the baselines are raw SQL over the same file
            read_bodies = timed(lambda: conn.execute("SELECT sum(length(body)) FROM spans").fetchone())
            one_extract = timed(
                lambda: conn.execute("SELECT count(json_extract(body, '$.attributes.model')) FROM spans").fetchone()
            )
            rows = [
                ("usage_totals by model (status)", timed(lambda: store.usage_totals("model"))),
                ("usage_totals by entry point (status)", timed(lambda: store.usage_totals("entry_point"))),
            ]
            counted = timed(lambda: store.count(since=None))
            filters = [
                ("count --session", timed(lambda: store.count(session="s-7"))),
                ("count --tag", timed(lambda: store.count(tags=["web"]))),
                ("count --meta tier=gold", timed(lambda: store.count(meta={"tier": "gold"}))),
            ]
        print(f"baseline: read every span body {read_bodies:.3f} s; one json_extract per span {one_extract:.3f} s")
        for name, seconds in rows:
            print(f"{name:40s} {seconds:7.3f} s  = {seconds / read_bodies:5.2f}x reading the bodies, "
                  f"{seconds / one_extract:5.2f}x one json_extract per span")
        print(f"baseline: indexed count of all traces {counted * 1000:.2f} ms")
        for name, seconds in filters:
            print(f"{name:40s} {seconds:7.3f} s  ({seconds / args.traces * 1e6:.2f} µs per trace scanned)")


if __name__ == "__main__":
    main()
