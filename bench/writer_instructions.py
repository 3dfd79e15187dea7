"""What recording a span costs in CPU instructions, counted by valgrind's callgrind: the same number on a
busy machine as on a quiet one, so a change to the writer can be judged where wall and CPU times are noise.

Run: ``python bench/writer_instructions.py [--baseline DIR] [--spans N]`` (about three minutes with a
baseline; valgrind must be installed). ``DIR`` is a checkout of another version (for example
``git archive <commit> plugin | tar -x -C DIR``), measured in the same run.

Each measurement is one process that records spans with no writer thread (the queue fills up), then
writes them all with one flush: the caller's decorator, serialising, redaction and SQLite together, as in
``bench/overhead.py --writer-only``'s capacity table (the same function runs). A process that records 5
spans is measured too and taken away, so that the interpreter's start-up and imports do not count. Hash randomisation is off
(``PYTHONHASHSEED=0``), which makes a rerun agree to within a fraction of a percent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SHAPES = ("1-span", "5-span")
SMALL = 5  # spans in the run taken away: start-up, imports and the store's creation
COLLECTED = re.compile(r"Collected : (\d+)")


def record(shape: str, spans: int) -> None:
    """The measured process: bench/overhead.py's capacity run (``spans`` queued, then one flush)."""
    from overhead import measure_drain  # this script's folder is on sys.path

    written = measure_drain(shape, spans)["written"]
    if written != spans:
        raise SystemExit(f"wrote {written} spans of {spans}")


def instructions(shape: str, spans: int, source: str | None, tmp: str) -> int:
    db = os.path.join(tmp, f"{shape}-{spans}-{abs(hash(source))}.db")
    env = {
        **os.environ,
        "TRACEMEND_DB": db,
        "TRACEMEND_CODE_VERSION": "bench",
        "PYTHONHASHSEED": "0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("TRACEMEND_DISABLED", None)
    if source:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--record", shape, str(spans),
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    found = COLLECTED.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({shape}, {spans} spans):\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    from overhead import baseline_path  # this script's folder is on sys.path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="DIR", help="a checkout of another version to compare with")
    parser.add_argument("--spans", type=int, default=2000, help="spans per measured run (default 2000)")
    parser.add_argument("--record", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        record(args.record[0], int(args.record[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        sources = [("this", None)]
        if args.baseline:
            sources.append(("baseline", baseline_path(args.baseline, tmp)))
        print(
            f"instructions per span, callgrind: a run of {args.spans + SMALL} spans less a run of {SMALL}"
        )
        print(f"{'code':<10}{'traces':<8}{'per span':>12}")
        per_span: dict[tuple[str, str], float] = {}
        for label, source in sources:
            for shape in SHAPES:
                small = instructions(shape, SMALL, source, tmp)
                total = instructions(shape, args.spans + SMALL, source, tmp)
                per_span[(label, shape)] = (total - small) / args.spans
                print(f"{label:<10}{shape:<8}{per_span[(label, shape)]:>12,.0f}", flush=True)
        for shape in SHAPES:
            if ("baseline", shape) in per_span:
                ratio = per_span[("baseline", shape)] / per_span[("this", shape)]
                print(f"[{shape}] instructions per span: baseline/this {ratio:.2f}x")


if __name__ == "__main__":
    main()
