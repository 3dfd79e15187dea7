"""The offline demo's building blocks: a scratch git repository holding the example support agent, and
realistic traffic recorded through ``@track`` and backdated into the demo's store.

Traffic is real: the agent runs in a subprocess inside the scratch repository (so the entry point is
``support_agent.agent:handle_ticket`` and the code version is the repository's commit), its traces go to
a scratch store, and are then moved in time onto an hourly, diurnal schedule and added to the demo store.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracemend.records import Trace
from tracemend.store import Store

AGENT_PACKAGE = "support_agent"
ENTRY_POINT = f"{AGENT_PACKAGE}.agent:handle_ticket"

_TRAFFIC_SCRIPT = r"""
import json, random, sys
from support_agent import SupportConfig, handle_ticket
from support_agent.tickets import TICKETS
import tracemend

n, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
config = SupportConfig()
for i in range(n):
    if rng.random() < 0.04:  # customers mistype order ids: the background error rate
        message, customer = f"Where is my order A{rng.randint(2000, 9999)}?", f"c-{rng.randint(100, 999)}"
    else:
        message, customer = rng.choice(TICKETS)
    try:
        handle_ticket(message, customer, config)
    except Exception:
        pass
print(json.dumps({"flushed": tracemend.flush(), **tracemend.stats()}))
"""


def example_source() -> Path:
    """The bundled example agent's folder (``examples/support_agent`` in the source tree)."""
    from tracemend.examples import support_agent

    return Path(support_agent.__file__).parent


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity (the scratch repository is ours, not the user's)."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "tracemend demo",
        "GIT_AUTHOR_EMAIL": "demo@tracemend.invalid",
        "GIT_COMMITTER_NAME": "tracemend demo",
        "GIT_COMMITTER_EMAIL": "demo@tracemend.invalid",
    }
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def make_repo(root: Path, model: str = "offline", tool_extra: str = "") -> str:
    """A git repository at ``root`` holding the example agent; returns the first commit's sha.

    ``model`` goes to ``[tool.tracemend]`` in the repository's pyproject (the model tracemend's own
    stages use there: triage, diagnosis, the judge); ``tool_extra`` is TOML appended after it (rules)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(example_source(), root / AGENT_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "support-agent"\nversion = "1.0.0"\n\n[tool.tracemend]\nmodel = "{model}"\n'
        + tool_extra,
        encoding="utf-8",
    )
    (root / ".gitignore").write_text(".tracemend/\n__pycache__/\n", encoding="utf-8")
    (root / "README.md").write_text(
        "# Northwind support agent\n\nAnswers support tickets.\n", encoding="utf-8"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Support agent: order lookup, refund policy, FAQ")
    return git(root, "rev-parse", "HEAD")


def run_traffic(repo: Path, raw_db: Path, n: int, seed: int) -> dict[str, object]:
    """Run ``n`` tickets through the agent in a subprocess in ``repo``; traces go to ``raw_db``."""
    env = {
        **os.environ,
        "TRACEMEND_DB": str(raw_db),
        "TRACEMEND_PROJECT_ROOT": str(repo),
        "TRACEMEND_ENV": "production",
        "PYTHONPATH": str(repo),
    }
    env.pop("TRACEMEND_CODE_VERSION", None)
    env.pop("TRACEMEND_DISABLED", None)
    out = subprocess.run(
        [sys.executable, "-c", _TRAFFIC_SCRIPT, str(n), str(seed)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the example agent failed to run:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def retime(trace: Trace, start: datetime) -> Trace:
    """The same trace moved so that it starts at ``start`` (spans keep their offsets)."""
    delta = start - trace.start_time
    trace = trace.model_copy(deep=True)
    trace.start_time += delta
    if trace.end_time:
        trace.end_time += delta
    for span in trace.spans:
        span.start_time += delta
        if span.end_time:
            span.end_time += delta
    return trace


def diurnal_times(
    start: datetime, end: datetime, per_hour: float, seed: int, *, diurnal: bool = True
) -> Iterator[datetime]:
    """Request times between start and end, Poisson within each hour; with ``diurnal``, busier by day
    (UTC) than by night, averaging ``per_hour``."""
    rng = random.Random(seed)
    hour = start
    while hour < end:
        shape = 0.55 + 0.45 * math.sin((hour.hour - 6) / 24 * 2 * math.pi) if diurnal else 1.0
        level = per_hour * shape
        count = _poisson(rng, max(level, 0.5))
        span_s = min(3600.0, (end - hour).total_seconds())
        for offset in sorted(rng.uniform(0, span_s) for _ in range(count)):
            yield hour + timedelta(seconds=offset)
        hour += timedelta(hours=1)


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method is fine for the small rates used here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def backdate(
    raw_db: Path, store: Store, times: list[datetime], progress: Callable[[int], None] | None = None
) -> int:
    """Add the raw traces to ``store``, the i-th moved to ``times[i]`` (cycling if there are fewer traces)."""
    raw = Store(raw_db, create=False)
    try:
        recorded = list(raw.iter_traces(with_spans=True))
    finally:
        raw.close()
    if not recorded:
        raise RuntimeError(f"no traces were recorded in {raw_db}")

    def moved() -> Iterator[Trace]:
        for i, when in enumerate(times):
            trace = retime(recorded[i % len(recorded)], when)
            if i >= len(recorded):  # a reused trace gets fresh ids, as a new request would
                trace = _fresh_ids(trace, i)
            if progress is not None and i % 500 == 0:
                progress(i)
            yield trace

    return store.add_traces(moved())


def _fresh_ids(trace: Trace, salt: int) -> Trace:
    rng = random.Random(f"{trace.trace_id}:{salt}")
    trace.trace_id = f"{rng.getrandbits(128):032x}"
    mapping = {s.span_id: f"{rng.getrandbits(64):016x}" for s in trace.spans}
    for span in trace.spans:
        span.trace_id = trace.trace_id
        span.span_id = mapping[span.span_id]
        span.parent_id = mapping.get(span.parent_id) if span.parent_id else None
    return trace


# The seeded regression: a well-meant cleanup renames the refund-policy regions to ISO 3166 codes, but the
# order records still carry "uk". Refund tickets for UK orders now fail with KeyError: 'uk'.
REGRESSION_MESSAGE = "Use ISO 3166 codes for refund-policy regions"
_DATA_BEFORE = 'REFUND_WINDOWS: dict[str, int] = {"us": 30, "eu": 30, "uk": 30, "ca": 30}'
_DATA_AFTER = (
    "# ISO 3166-1 alpha-2 codes (EU as a whole keeps its union code).\n"
    'REFUND_WINDOWS: dict[str, int] = {"us": 30, "eu": 30, "gb": 30, "ca": 30}'
)


def seed_regression(repo: Path) -> str:
    """Commit the seeded regression in the demo repository; returns the new commit's sha."""
    data = repo / AGENT_PACKAGE / "data.py"
    text = data.read_text(encoding="utf-8")
    if _DATA_BEFORE not in text:
        raise RuntimeError(f"{data} does not hold the expected refund table; was the example changed?")
    data.write_text(text.replace(_DATA_BEFORE, _DATA_AFTER), encoding="utf-8")
    readme = repo / "README.md"
    readme.write_text(
        readme.read_text(encoding="utf-8") + "\nRefund regions use ISO 3166 country codes.\n", encoding="utf-8"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", REGRESSION_MESSAGE)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Scenario:
    """A demo world: the repository, its store, the scripted model, and what was recorded."""

    root: Path
    repo: Path
    db: Path
    model: str
    good_commit: str
    bad_commit: str
    deploy_time: datetime
    baseline_traces: int
    baseline_runs: int
    window_traces: int


def prepare(
    root: Path,
    *,
    per_hour: float = 40.0,
    seed: int = 7,
    now: datetime | None = None,
    regression: bool = True,
    say: Callable[[str], None] = lambda _: None,
    answers: str | None = None,
    tool_extra: str = "",
    seed_change: Callable[[Path], tuple[str, str]] | None = None,
) -> Scenario:
    """Build the demo world in ``root``: the example agent at a good revision with a week of baseline
    traffic, then the seeded regression (``regression=False``: a harmless change) and the 60 minutes of
    traffic after that deploy. Everything that is recorded ran for real through ``@track``.

    Another scenario gives its scripted model's file (``answers``, ``scripted:<path>``), TOML for the
    repository's ``[tool.tracemend]`` table (``tool_extra``) and its own regression (``seed_change``:
    commits it in the repository, returns the commit's sha and a line saying what was deployed)."""
    from tracemend.diagnose import example_script

    root.mkdir(parents=True, exist_ok=True)
    repo = root / "repo"
    db = root / "traces.db"
    script = root / "scripted-model.yaml"
    shutil.copyfile((answers or example_script()).removeprefix("scripted:"), script)
    model = f"scripted:{script}"
    good = make_repo(repo, model=model, tool_extra=tool_extra)
    say(f"support agent committed at {good[:10]} in {repo}")

    now = now or datetime.now(UTC).replace(microsecond=0)
    deploy = now - timedelta(minutes=60)
    base_times = list(diurnal_times(deploy - timedelta(days=7), deploy, per_hour, seed))
    runs = min(len(base_times), 800)
    run_traffic(repo, root / "raw-baseline.db", runs, seed)
    with Store(db) as store:
        baseline = backdate(root / "raw-baseline.db", store, base_times)
    say(
        f"baseline: {baseline} traces over the 7 days before the deploy (~{per_hour:g}/hour, diurnal; "
        f"{runs} real runs through @track, backdated; ~4% mistyped order ids fail)"
    )
    if regression and seed_change is not None:
        bad, deployed = seed_change(repo)
        say(deployed)
    elif regression:
        bad = seed_regression(repo)
        say(f"deployed {bad[:10]} “{REGRESSION_MESSAGE}”: the seeded regression")
    else:
        readme = repo / "README.md"
        readme.write_text(readme.read_text(encoding="utf-8") + "\nSee the wiki for escalations.\n", encoding="utf-8")
        git(repo, "commit", "-q", "-am", "Docs: escalation pointer")
        bad = git(repo, "rev-parse", "HEAD")
        say(f"deployed {bad[:10]}: a documentation-only change")
    # The deploy is taken as happening at a busy hour: the window runs at the average rate.
    window_times = list(diurnal_times(deploy, now, per_hour, seed + 1, diurnal=False))
    run_traffic(repo, root / "raw-window.db", max(len(window_times), 1), seed + 1)
    with Store(db) as store:
        window = backdate(root / "raw-window.db", store, window_times)
        failing = store.count(since=deploy, status="error")
    say(f"window: {window} traces in the 60 minutes since the deploy, {failing} failing")
    return Scenario(root, repo, db, model, good, bad, deploy, baseline, runs, window)
