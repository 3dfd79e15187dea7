"""Time `tracemend analyze` on a large store: a week of baseline and a window, ~500 signatures.

Generates the store with fast bulk row inserts (Store.write_rows), then runs the real CLI in a
subprocess and reports its wall time and peak memory. With --compare it also runs a store a fifth
of the size, so memory can be seen not to grow with the number of traces.

    python bench/analyze_scale.py                  # 1,000,000 traces
    python bench/analyze_scale.py --traces 50000   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracemend.store import Store, to_us

OLD = "a1" * 20
NEW = "b2" * 20
KINDS = [
    (
        "openai.RateLimitError",
        "Rate limit reached for {m} in organization org-{h} on tokens per min: Limit {n}, Used {n}",
    ),
    (
        "httpx.ReadTimeout",
        "timed out after {n}s calling https://api.{w}.example.com/v1/items/{n}?req=req_{h}",
    ),
    ("json.decoder.JSONDecodeError", "Expecting ',' delimiter: line {n} column {n} (char {n})"),
    ("KeyError", "'{w}_{k}'"),
    ("ValueError", 'tool call call_{h} returned invalid {w} payload {{"id": {n}, "status": "{w}"}}'),
    (
        "pydantic_core.ValidationError",
        "1 validation error for {W}\n{w}\n  Input should be a valid integer [input_value='{w}']",
    ),
    ("tracemend.ToolError", "tool {w}_{k} failed for user {e}: status {n}"),
]
WORDS = ["search", "refund", "weather", "order", "invoice", "profile", "ticket", "billing"]


def signature_specs(n: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """n distinct failure kinds: (type, message pattern, module, function)."""
    out = []
    for i in range(n):
        etype, pattern = KINDS[i % len(KINDS)]
        module = f"agent.step{i // len(KINDS)}"
        # A given bug fails on the same model and field every time: those words are fixed per signature.
        word = WORDS[rng.randrange(len(WORDS))]
        pattern = pattern.replace("{k}", f"k{i}").replace("{W}", word.title()).replace("{w}", word)
        out.append((etype, pattern, module, f"fn{i % 13}"))
    return out


def fill(message: str, rng: random.Random) -> str:
    return (
        message.replace("{m}", rng.choice(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"]))
        .replace("{h}", f"{rng.getrandbits(40):010x}")
        .replace("{W}", rng.choice(WORDS).title())
        .replace("{w}", rng.choice(WORDS))
        .replace("{e}", f"user{rng.randrange(999)}@example.com")
        .replace("{n}", str(rng.randrange(1, 100000)))
    )


def generate(path: Path, traces: int, signatures: int, seed: int = 7) -> tuple[int, datetime]:
    rng = random.Random(seed)
    specs = signature_specs(signatures, rng)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(signatures)]  # Zipf-like: a few common, a long tail
    regressed = set(rng.sample(range(signatures), 3))
    deploy = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    start = deploy - timedelta(days=7)
    window = timedelta(minutes=60)
    span_us = to_us(deploy + window) - to_us(start)
    deploy_us = to_us(deploy)
    store = Store(path)
    failing = 0
    rows: list[tuple] = []
    base_rate = 0.05
    t0 = to_us(start)
    for i in range(traces):
        t_us = t0 + (span_us * i) // traces + rng.randrange(max(1, span_us // traces))
        commit = NEW if t_us >= deploy_us else OLD
        status, error_type, body = "ok", None, '{"status":"ok"}'
        if rng.random() < base_rate:
            k = rng.choices(range(signatures), weights)[0]
            status = "error"
        elif t_us >= deploy_us and rng.random() < 0.004:  # the deploy breaks three signatures
            k = rng.choice(sorted(regressed))
            status = "error"
        if status == "error":
            etype, pattern, module, function = specs[k]
            error = {
                "type": etype,
                "message": fill(pattern, rng),
                "frames": [
                    {
                        "file": "agent/main.py",
                        "line": rng.randrange(1, 300),
                        "function": "run",
                        "module": "agent.main",
                        "in_app": True,
                    },
                    {
                        "file": module.replace(".", "/") + ".py",
                        "line": rng.randrange(1, 300),
                        "function": function,
                        "module": module,
                        "in_app": True,
                    },
                ],
            }
            body = json.dumps({"status": "error", "error": error})
            error_type = etype
            failing += 1
        trace_id = f"{rng.getrandbits(128):032x}"
        rows.append(
            (
                trace_id,
                t_us,
                t_us + 1000,
                status,
                "agent.main:run",
                "run",
                "default",
                "production",
                commit,
                0,
                None,
                error_type,
                body,
            )
        )
        if len(rows) >= 20000:
            store.write_rows(rows, [])
            rows = []
            print(f"\r  generating: {i + 1:,}/{traces:,}", end="", file=sys.stderr, flush=True)
    if rows:
        store.write_rows(rows, [])
    print(file=sys.stderr)
    store.close()
    return failing, deploy


def run_analyze(path: Path) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB) and the JSON result of `tracemend analyze` in a subprocess."""
    code = (
        "import json,sys,resource,time;from datetime import datetime;"
        "from tracemend.cli import build_app;"
        "t=time.perf_counter();"
        "from typer.testing import CliRunner;"
        f"r=CliRunner().invoke(build_app(),['analyze','--db',{str(path)!r},'--json']);"
        "w=time.perf_counter()-t;"
        "print(json.dumps({'wall':w,'exit':r.exit_code,'out':r.stdout}))"
    )
    # The peak RSS is measured by a small launcher around the analyze process: a process forked from this
    # script (which holds the generated traffic) would report this script's memory as its own peak, since
    # Linux keeps the high-water mark across exec.
    launcher = (
        "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", launcher, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    outer = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"analyze failed:\n{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_kib = int(proc.stderr.strip().splitlines()[-1])
    result = json.loads(data["out"]) if data["out"].strip().startswith("{") else {}
    return outer, peak_kib / 1024, result | {"exit_code": data["exit"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--signatures", type=int, default=500)
    parser.add_argument("--compare", action="store_true", help="also run a store a fifth of the size")
    parser.add_argument("--keep", type=Path, help="folder to keep the generated stores in")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tracemend-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [args.traces // 5, args.traces] if args.compare else [args.traces]
    print(
        "| traces | failing traces | signatures seen | flagged | generate s | analyze wall s (process) | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        path = folder / f"scale-{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        t = time.perf_counter()
        failing, _deploy = generate(path, size, args.signatures)
        gen_s = time.perf_counter() - t
        wall, rss, result = run_analyze(path)
        flagged = sum(1 for f in result.get("findings", []) if f["verdict"] != "noise")
        print(
            f"| {size:,} | {failing:,} | {result.get('signatures_seen', '?')} | {flagged} | {gen_s:.1f} "
            f"| {wall:.2f} | {rss:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
