"""The second example project (examples/shopbot) as a heal scenario: a git repository holding it, a week of
real traffic recorded through ``@track`` (backdated), a commit that breaks pagination, the hour after that
deploy, and a model on loopback that answers triage, diagnosis and the judge over real HTTP.

shopbot is unlike the support agent on purpose: a ``src/`` layout that is *not installed* (the traffic
runs with ``PYTHONPATH=src``), a pydantic config, sync and async entry points, a class-method tool, and
~5 % background failures (a page past the end) with the same signature as the regression.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tracemend.demo import backdate, diurnal_times, git
from tracemend.store import Store
from tracemend.testing import Reply, chat_body, turn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shopbot"
CATALOG = "src/shopbot/catalog.py"
GOOD_LINE = "    pages = max(1, math.ceil(len(items) / size))"
BAD_LINE = "    pages = max(1, len(items) // size)"
REGRESSION_MESSAGE = "Paginate with integer arithmetic"

# (message, weight): first pages, middle pages, last partial pages (what the bug breaks), and pages past
# the end (~5 %: the background failures, same exception, frame and message template as the bug's).
MESSAGES: list[tuple[str, float]] = [
    ("show me lamps", 0.17),
    ("any chairs?", 0.16),
    ("rugs please", 0.16),
    ("I need mugs", 0.16),
    ("lamps, page 2", 0.06),
    ("rugs page 2", 0.06),
    ("lamps page 3", 0.06),
    ("chairs, page 2", 0.06),
    ("show rugs page 3", 0.06),
    ("mugs page 2", 0.02),
    ("lamps page 4", 0.02),
    ("chairs page 5", 0.01),
]

_TRAFFIC = r"""
import asyncio, json, random, sys
import tracemend
from shopbot import ShopConfig, aanswer, answer

messages = json.loads(sys.argv[1])
n, seed = int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
config = ShopConfig()
texts = [m for m, _ in messages]
weights = [w for _, w in messages]
for i in range(n):
    message = rng.choices(texts, weights)[0]
    try:
        if rng.random() < 0.3:  # the web handler's async path
            asyncio.run(aanswer(message, config))
        else:
            answer(message, config)
    except Exception:
        pass
print(json.dumps(tracemend.stats()))
"""


@dataclass
class ShopWorld:
    root: Path
    repo: Path
    db: Path
    good: str
    bad: str
    deploy: datetime


def make_repo(repo: Path) -> str:
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".tracemend"))
    (repo / ".gitignore").write_text(".tracemend/\n__pycache__/\n", encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shopbot: catalog search, page by page")
    return git(repo, "rev-parse", "HEAD")


def run_traffic(repo: Path, raw: Path, n: int, seed: int) -> None:
    """``n`` requests through the real agent, from the repository, not installed (``src`` on the path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEMEND_", "SHOPBOT_"))}
    env.update(
        TRACEMEND_DB=str(raw),
        TRACEMEND_PROJECT_ROOT=str(repo),
        TRACEMEND_ENV="production",
        PYTHONPATH=str(repo / "src"),
    )
    out = subprocess.run(
        [sys.executable, "-c", _TRAFFIC, json.dumps(MESSAGES), str(n), str(seed)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"shopbot failed to run:\n{out.stderr[-2000:]}")


def break_pagination(repo: Path) -> str:
    path = repo / CATALOG
    text = path.read_text(encoding="utf-8")
    assert GOOD_LINE in text, "examples/shopbot changed: update tests/helpers/shopbot.py"
    path.write_text(text.replace(GOOD_LINE, BAD_LINE), encoding="utf-8")
    git(repo, "commit", "-q", "-am", REGRESSION_MESSAGE)
    return git(repo, "rev-parse", "HEAD")


def prepare(root: Path, *, per_hour: float = 30.0, seed: int = 1) -> ShopWorld:
    """Seed 1: among the first five failures after the deploy (the finding's examples) two are background
    failures, which fail before the change too."""
    root.mkdir(parents=True, exist_ok=True)
    repo, db = root / "shopbot", root / "traces.db"
    good = make_repo(repo)
    now = datetime.now(UTC).replace(microsecond=0)
    deploy = now - timedelta(minutes=60)
    base_times = list(diurnal_times(deploy - timedelta(days=7), deploy, per_hour, seed))
    run_traffic(repo, root / "raw-baseline.db", min(len(base_times), 500), seed)
    with Store(db) as store:
        backdate(root / "raw-baseline.db", store, base_times)
    bad = break_pagination(repo)
    window_times = list(diurnal_times(deploy, now, per_hour * 2, seed + 1, diurnal=False))
    run_traffic(repo, root / "raw-window.db", len(window_times), seed + 1)
    with Store(db) as store:
        backdate(root / "raw-window.db", store, window_times)
    return ShopWorld(root, repo, db, good, bad, deploy)


def copy_world(world: ShopWorld, root: Path) -> ShopWorld:
    """An independent copy (repository with its .git, and the store) for one test to change."""
    shutil.copytree(world.root / "shopbot", root / "shopbot", symlinks=True)
    shutil.copy2(world.db, root / "traces.db")
    return ShopWorld(root, root / "shopbot", root / "traces.db", world.good, world.bad, world.deploy)


def trace_count(db: Path) -> int:
    with Store(db, create=False) as store:
        return store.count()


# --- the model, on loopback ------------------------------------------------------------------------------

FIX_EDITS = f"""{CATALOG}
<<<<<<< SEARCH
{BAD_LINE}
=======
{GOOD_LINE}
>>>>>>> REPLACE
"""


def _text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.get("messages") or [])


def responder(request: dict[str, Any]) -> Reply | dict[str, Any] | str:
    """A model that knows this one bug: triage says investigate, diagnosis reads the diff and the catalog
    and proposes the ceiling division back, the judge passes replies that list a page of products."""
    text = _text(request)
    tools = {t.get("function", {}).get("name") for t in request.get("tools") or []}
    if "propose_fix" in tools:
        step = turn(request)
        if step == 0:
            return chat_body(tool_calls=[{"name": "show_suspect_diff", "arguments": {}}])
        if step == 1:
            return chat_body(tool_calls=[{"name": "read_file", "arguments": {"path": CATALOG}}])
        return chat_body(
            tool_calls=[
                {
                    "name": "propose_fix",
                    "arguments": {
                        "root_cause": f"{CATALOG}: page_of counts pages with floor division, so the last "
                        "partial page of every category is reported out of range.",
                        "locations": [f"{CATALOG}:17"],
                        "explanation": "Count a partial last page as a page again (ceiling division).",
                        "edits": FIX_EDITS,
                        "assertions": ["The reply lists products of the requested page with their prices."],
                    },
                }
            ]
        )
    if "Did this change cause the failure signature" in text:
        return json.dumps(
            {
                "decision": "investigate",
                "confidence": 0.86,
                "reasoning": "The commit replaced ceiling division with floor division in page_of, so the "
                "last partial page of a category is out of range; the failures raise exactly there.",
                "linked_lines": [f"{CATALOG}:17: {BAD_LINE.strip()}"],
                "attributed_signatures": [],
            }
        )
    if "AGENT OUTPUT" in text:
        output = text.split("<<<BEGIN AGENT OUTPUT", 1)[-1].split("<<<END AGENT OUTPUT", 1)[0]
        ok = "page" in output and "EUR" in output
        return json.dumps(
            {
                "reasoning": "The reply lists products with prices." if ok else "No products are listed.",
                "verdict": "PASS" if ok else "FAIL",
            }
        )
    if '"files"' in text:  # file classes the rules left open
        return json.dumps({"files": []})
    return Reply(body={"error": {"message": "unexpected request"}}, status=400)


def heal_env(server_env: dict[str, str]) -> dict[str, str]:
    """The environment of a ``tracemend heal`` subprocess: the loopback model, short retry delays, and none
    of the test process's own store settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMEND_")}
    env.update(server_env)
    env.update(
        COLUMNS="80",
        TRACEMEND_RETRY_BASE_DELAY="0.01",
        TRACEMEND_RETRY_MAX_DELAY="0.05",
        TRACEMEND_TIMEOUT="20",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    return env


def heal(world: ShopWorld, env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "heal", "--db", str(world.db), *args],
        cwd=world.repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def background_share(world: ShopWorld) -> float:
    """The baseline's failure rate (what "~5 % background failures" means here)."""
    with Store(world.db, create=False) as store:
        before = store.count(until=world.deploy)
        failing = store.count(until=world.deploy, status="error")
    return failing / before if before else 0.0


__all__ = [
    "ShopWorld",
    "background_share",
    "copy_world",
    "heal",
    "heal_env",
    "prepare",
    "responder",
    "trace_count",
]
