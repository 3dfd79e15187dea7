"""Benchmark: a 100-case regression suite judged through the real litellm HTTP path.

A loopback OpenAI-compatible server answers every judge request after 200 ms. The suite runs under real
pytest (in this process) three ways:

- cold: empty verdict cache, judge requests concurrent at the configured concurrency (bar: <= 3 s wall time);
- serial: the same with concurrency 1 and no cache (what it would cost without concurrency);
- warm: unchanged outputs with ``--judge-cache-only`` (bar: 0 model calls).

    python bench/judge_suite.py [--cases 100] [--latency 0.2] [--concurrency N] [--skip-serial]

litellm's import and first request, and pytest's first start in the process, are timed separately (paid once
per process, not per case).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for _key, _value in {
    "OPIK_URL_OVERRIDE": "http://127.0.0.1:9/api",
    "OPIK_SENTRY_ENABLE": "false",
    "OPIK_ANALYTICS_ENABLE": "false",
    "OPIK_PYTEST_EXPERIMENT_ENABLED": "false",
}.items():
    os.environ.setdefault(_key, _value)

AGENT = """
def answer(question: str, order_age_days: int) -> str:
    if order_age_days > 30:
        return f"Order {question}: refunds are possible within 30 days; this order is {order_age_days} days old."
    return f"Order {question}: you can get a refund, the window is 30 days."
"""


def make_project(root: Path, cases: int) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
    (root / "bench_agent.py").write_text(AGENT)
    folder = root / "tests" / "regressions"
    folder.mkdir(parents=True)
    for index in range(cases):
        case = {
            "name": f"refund case {index:03d}",
            "entry_point": "bench_agent:answer",
            "input": {"question": f"A-{index:04d}", "order_age_days": 10 + index % 50},
            "assertions": ["The reply states the refund window in days"],
            "checks": [{"kind": "contains", "value": "30 days"}],
        }
        (folder / f"case_{index:03d}.yaml").write_text(json.dumps(case))  # JSON is YAML


def run_pytest(root: Path, *extra: str) -> tuple[int, float, str]:
    import pytest

    args = [str(root / "tests" / "regressions"), "-q", "-p", "no:opik", "-p", "no:cacheprovider", *extra]
    buffer = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buffer):
        code = pytest.main(args)
    elapsed = time.perf_counter() - start
    lines = buffer.getvalue().splitlines()
    summary = " | ".join(line for line in lines if line.startswith(("judge:", "judged up front")))
    return int(code), elapsed, summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request (s)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="TRACEMEND_CONCURRENCY for the cold run (default: tracemend's default)",
    )
    parser.add_argument("--skip-serial", action="store_true")
    opts = parser.parse_args()

    from tracemend import llm
    from tracemend.testing import LoopbackServer, chat_body

    verdict = json.dumps({"reasoning": "The reply says the window is 30 days.", "verdict": "PASS"})
    server = LoopbackServer(
        lambda request: chat_body(verdict, model="gpt-4o-mini"), latency=opts.latency
    ).start()
    tmp = Path(tempfile.mkdtemp(prefix="tracemend-bench-"))
    make_project(tmp, opts.cases)
    os.chdir(tmp)
    sys.path.insert(0, str(tmp))
    os.environ.update(
        {
            "TRACEMEND_PROJECT_ROOT": str(tmp),
            "TRACEMEND_API_BASE": server.api_base,
            "TRACEMEND_API_KEY": "bench",
            "TRACEMEND_JUDGE_MODEL": "openai/gpt-4o-mini",
        }
    )
    if opts.concurrency:
        os.environ["TRACEMEND_CONCURRENCY"] = str(opts.concurrency)
    concurrency = llm.load_settings().concurrency
    llm.set_request_policy(llm.RequestPolicy(real=False, loopback=True))  # only the loopback server

    start = time.perf_counter()
    llm.complete([{"role": "user", "content": "warm-up"}], model="openai/gpt-4o-mini", json_mode=True)
    warm_up = time.perf_counter() - start
    # pytest's own first start in a process (plugin imports, assertion rewriting) is not the suite's cost.
    _, collect, _ = run_pytest(tmp, "--collect-only")
    base = server.request_count
    print(f"judge_suite: {opts.cases} cases, 1 assertion each, server latency {opts.latency * 1000:.0f} ms")
    print(f"litellm import + first request (once per process): {warm_up:.2f} s")
    print(
        f"pytest first start + collection of {opts.cases} cases (--collect-only, once per process): {collect:.2f} s"
    )

    code, cold, cold_summary = run_pytest(tmp)
    cold_calls = server.request_count - base
    print(
        f"cold run   (concurrency {concurrency}, empty cache): {cold:6.2f} s  {cold_calls} model calls  exit {code}"
    )
    print(f"  {cold_summary}")

    base = server.request_count
    code_w, warm, warm_summary = run_pytest(tmp, "--judge-cache-only")
    warm_calls = server.request_count - base
    print(
        f"second run (cache-only, unchanged outputs): {warm:6.2f} s  {warm_calls} model calls  exit {code_w}"
    )
    print(f"  {warm_summary}")

    serial = None
    if not opts.skip_serial:
        os.environ["TRACEMEND_CONCURRENCY"] = "1"
        base = server.request_count
        code_s, serial, _ = run_pytest(tmp, "--judge-no-cache")
        serial_calls = server.request_count - base
        print(
            f"serial run (concurrency 1, no cache):       {serial:6.2f} s  {serial_calls} model calls  exit {code_s}"
        )
        print(f"  concurrency speed-up: {serial / cold:.1f}x")
    server.stop()

    ok_cold = cold <= 3.0 and code == 0
    ok_warm = warm_calls == 0 and code_w == 0
    print(f"bar cold <= 3 s: {'met' if ok_cold else 'MISSED'} ({cold:.2f} s)")
    print(f"bar second run 0 model calls: {'met' if ok_warm else 'MISSED'} ({warm_calls})")
    return 0 if ok_cold and ok_warm else 1


if __name__ == "__main__":
    sys.exit(main())
