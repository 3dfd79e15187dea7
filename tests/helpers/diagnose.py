"""Fixtures for triage and diagnosis: a loopback OpenAI-compatible server with scripted answers, and a real
git repository holding a small agent whose bug is real, with traces recorded by running it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracemend.testing import LoopbackServer, chat_body, turn

# --- the loopback model ------------------------------------------------------------------------------


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def text(content: str) -> dict[str, Any]:
    return {"content": content}


Answer = dict[str, Any]
Script = Callable[[dict[str, Any], int], Answer]


def by_turn(answers: list[Answer]) -> Script:
    """Answer by turn (assistant messages already in the request); the last answer repeats."""

    def script(request: dict[str, Any], turn: int) -> Answer:
        return answers[min(turn, len(answers) - 1)]

    return script


@dataclass
class LoopbackModel:
    """A :class:`tracemend.testing.LoopbackServer` answering from ``script(request, turn)``, every call
    costing ``tokens_per_call`` tokens."""

    server: LoopbackServer
    model: str
    script: Script = field(default=lambda req, turn: {"content": "{}"})
    tokens_per_call: int = 120

    @property
    def base_url(self) -> str:
        return self.server.api_base

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    def respond(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.script(request, turn(request))
        return chat_body(
            answer.get("content"),
            tool_calls=answer.get("tool_calls"),
            model=request.get("model", "fake"),
            prompt_tokens=self.tokens_per_call - 20,
            completion_tokens=20,
        )

    def env(self) -> dict[str, str]:
        return {
            "OPENAI_API_KEY": "sk-loopback",
            "TRACEMEND_API_BASE": self.base_url,
            "TRACEMEND_ALLOW_MODEL_REQUESTS": "loopback",
            "TRACEMEND_MAX_RETRIES": "0",
        }

    def tool_messages(self) -> list[str]:
        """Every tool result the model was sent (in the last request, which holds the whole history)."""
        if not self.requests:
            return []
        return [m.get("content") or "" for m in self.requests[-1]["messages"] if m.get("role") == "tool"]

    def all_text(self) -> str:
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in self.requests)


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackModel]:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (free port) answering from ``.script``."""
    from tracemend import llm

    with LoopbackServer() as server:
        lb = LoopbackModel(server=server, model="openai/loopback-diagnoser")
        server.responder = lb.respond
        for key, value in lb.env().items():
            monkeypatch.setenv(key, value)
        with llm.allow_model_requests(loopback_only=True):  # the suite forbids model requests otherwise
            yield lb


# --- a real agent repository with a real bug ---------------------------------------------------------

AGENT_V1 = {
    "shopbot/__init__.py": "",
    "shopbot/agent.py": '''"""A tiny checkout agent."""

from pathlib import Path

import tracemend

from .pricing import total_price

GREETING = (Path(__file__).parent / "prompts" / "greeting.txt").read_text().strip()


@tracemend.track(kind="agent")
def answer(customer: str, items: list, coupon: str | None = None) -> str:
    total = total_price(items, coupon)
    return f"{GREETING} {customer}, your total is ${total:.2f}."
''',
    "shopbot/prompts/greeting.txt": "Hello\n",
    "shopbot/pricing.py": '''"""Prices and discounts."""

COUPONS = {"SAVE10": 0.10, "HALF": 0.50}


def discount_rate(coupon: str | None) -> float:
    if not coupon:
        return 0.0
    return COUPONS.get(coupon.upper(), 0.0)


def total_price(items: list, coupon: str | None = None) -> float:
    subtotal = sum(item["price"] * item["qty"] for item in items)
    return round(subtotal * (1 - discount_rate(coupon)), 2)
''',
    "scripts/seed_data.py": "print('load test')\n",
    "README.md": "# shopbot\n",
    "tests/test_pricing.py": "def test_nothing():\n    assert True\n",
    ".gitignore": ".tracemend/\n__pycache__/\n*.db\n",
}
BUGGY_LINE = "    return COUPONS[coupon.upper()]\n"
FIXED_LINE = "    return COUPONS.get(coupon.upper(), 0.0)\n"

TRAFFIC = r"""
import json, sys
import tracemend
from shopbot.agent import answer

for customer, items, coupon in json.loads(sys.argv[1]):
    try:
        answer(customer, items, coupon)
    except Exception:
        pass
tracemend.flush()
"""

INPUTS = [
    ["ann", [{"price": 10.0, "qty": 2}], "SAVE10"],
    ["bob", [{"price": 4.5, "qty": 1}], None],
    ["cat", [{"price": 20.0, "qty": 1}], "BOGUS"],
    ["dan", [{"price": 8.0, "qty": 3}], "half"],
    ["eve", [{"price": 5.0, "qty": 2}], "EXPIRED"],
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def write(repo: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def record(repo: Path, db: Path, inputs: list[Any] = INPUTS) -> None:
    """Run the agent for real in a subprocess: its traces (with the repo's commit) go to ``db``."""
    env = {
        **os.environ,
        "TRACEMEND_DB": str(db),
        "TRACEMEND_PROJECT_ROOT": str(repo),
        "PYTHONPATH": str(repo),
    }
    subprocess.run(
        [sys.executable, "-c", TRAFFIC, json.dumps(inputs)], cwd=repo, env=env, check=True, timeout=60
    )


@dataclass
class AgentRepo:
    root: Path
    db: Path
    good: str  # the first deployed commit
    bad: str  # the commit that introduced the bug
    failing: list[str]  # trace ids failing at ``bad``
    passing: list[str]  # trace ids passing at ``bad``

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the working tree (not .git), to prove nothing changed."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root)
            if p.is_file() and rel.parts[0] != ".git" and "__pycache__" not in rel.parts:
                out[rel.as_posix()] = p.read_bytes()
        return out


def make_agent_repo(root: Path, *, docs_only_followup: bool = False) -> AgentRepo:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, AGENT_V1)
    good = commit(root, "shopbot v1")
    db = root.parent / f"{root.name}-traces.db"
    record(root, db)
    pricing = (
        (root / "shopbot/pricing.py")
        .read_text()
        .replace("    return COUPONS.get(coupon.upper(), 0.0)\n", BUGGY_LINE)
    )
    write(root, {"shopbot/pricing.py": pricing, "README.md": "# shopbot\n\nCoupons are case-insensitive.\n"})
    bad = commit(root, "pricing: look coupons up directly")
    record(root, db)
    if docs_only_followup:
        write(
            root,
            {
                "README.md": "# shopbot\n\nMore docs.\n",
                "tests/test_pricing.py": "def test_more():\n    assert 1\n",
            },
        )
        later = commit(root, "docs and tests only")
        record(root, db)
        bad = later
    from tracemend.store import Store

    with Store(db, create=False) as store:
        at_bad = list(store.iter_traces(revision=bad))
    return AgentRepo(
        root=root,
        db=db,
        good=good,
        bad=bad,
        failing=[t.trace_id for t in at_bad if t.status != "ok"],
        passing=[t.trace_id for t in at_bad if t.status == "ok"],
    )


@pytest.fixture(scope="session")
def _agent_repo_template(tmp_path_factory: pytest.TempPathFactory) -> AgentRepo:
    return make_agent_repo(tmp_path_factory.mktemp("template") / "shop")


@pytest.fixture
def agent_repo(_agent_repo_template: AgentRepo, tmp_path: Path) -> AgentRepo:
    """A private copy (repository + store) of a recorded agent repository, so tests can change it."""
    import shutil

    tpl = _agent_repo_template
    root = tmp_path / "shop"
    shutil.copytree(tpl.root, root, symlinks=True)
    db = tmp_path / "traces.db"
    shutil.copy2(tpl.db, db)
    return AgentRepo(root=root, db=db, good=tpl.good, bad=tpl.bad, failing=tpl.failing, passing=tpl.passing)


def fix_script(trace_id: str, *, edits: str | None = None) -> Script:
    """A model that reads the trace, the source, then proposes ``edits`` (the right fix by default)."""
    edits = edits or f"shopbot/pricing.py\n<<<<<<< SEARCH\n{BUGGY_LINE}=======\n{FIXED_LINE}>>>>>>> REPLACE\n"
    return by_turn(
        [
            tool_call("show_trace", trace_id=trace_id[:12]),
            tool_call("read_file", path="shopbot/pricing.py"),
            tool_call(
                "propose_fix",
                root_cause="shopbot/pricing.py:9 looks coupons up with COUPONS[...], so an unknown coupon raises KeyError.",
                locations=["shopbot/pricing.py:9"],
                edits=edits,
                explanation="Unknown coupons should give no discount, as before the last change.",
                assertions=[
                    "The reply states the total price",
                    "An unknown coupon gives no discount and no error",
                ],
            ),
        ]
    )
