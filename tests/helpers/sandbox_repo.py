"""A real git repository with a small traced agent, and real traces recorded by running it (shared by the
sandbox tests)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tracemend.records import Trace
from tracemend.store import Store

AGENT = """\
import os
import time

import tracemend


class AgentConfig(tracemend.Config):
    model: str = "small"
    temperature: float = 0.0


@tracemend.track(kind="tool")
def lookup(city):
    table = {"paris": "FR", "berlin": "DE"}
    return table[city.lower()]


@tracemend.track
def answer(question: str, config: AgentConfig) -> dict:
    if question == "hang":
        time.sleep(120)
    if question == "exit":
        os._exit(3)
    if question == "segv":
        import ctypes

        ctypes.string_at(0)
    if question == "env":
        return {"key": os.environ.get("FAKE_API_KEY"), "cwd": os.getcwd()}
    if config.temperature > 1:
        raise ValueError("temperature too high for a lookup")
    city = question.split()[-1]
    return {"country": lookup(city), "model": config.model}
"""

RECORD = """\
import json, sys
import tracemend
from agentpkg.agent import AgentConfig, answer

for question, temperature in json.loads(sys.argv[1]):
    try:
        answer(question, AgentConfig(temperature=temperature))
    except Exception:
        pass
tracemend.flush()
"""

QUESTIONS = [
    ["where is Paris", 0.0],
    ["where is Berlin", 0.0],
    ["where is Rome", 0.0],
    ["where is Paris", 1.5],
]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@dataclass
class AgentRepo:
    root: Path
    db: Path
    traces: dict[str, Trace]  # by "question|temperature"

    def trace(self, question: str, temperature: float = 0.0) -> Trace:
        return self.traces[f"{question}|{temperature}"]

    def variant(self, question: str) -> Trace:
        """A copy of a recorded trace with another question (for agents that hang or exit)."""
        base = self.trace("where is Paris")
        tid = hashlib.md5(question.encode()).hexdigest()
        return base.model_copy(update={"trace_id": tid, "input": {**base.input, "question": question}})


def make_agent_repo(root: Path, *, src_layout: bool = False) -> AgentRepo:
    """``src_layout``: the package lives in ``src/`` and is importable through PYTHONPATH (as with an
    editable install), not from the repository root."""
    root.mkdir(parents=True, exist_ok=True)
    pkg = root / "src" / "agentpkg" if src_layout else root / "agentpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "agent.py").write_text(AGENT)
    (root / "README.md").write_text("agent\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "add", ".")
    git(root, "commit", "-qm", "agent")
    db = root.parent / f"{root.name}-traces.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMEND_")}
    env.update(TRACEMEND_DB=str(db), TRACEMEND_PROJECT_ROOT=str(root), PYTHONDONTWRITEBYTECODE="1")
    if src_layout:
        env["PYTHONPATH"] = str(root / "src")
    subprocess.run(
        [sys.executable, "-c", RECORD, json.dumps(QUESTIONS)], cwd=root, env=env, check=True, timeout=60
    )
    traces: dict[str, Trace] = {}
    with Store(db, create=False) as store:
        for trace in store.iter_traces(entry_point="agentpkg.agent:answer", with_spans=True):
            traces[f"{trace.input['question']}|{trace.config['temperature']}"] = trace
    assert len(traces) == len(QUESTIONS), traces.keys()
    # The user's tree is dirty on purpose: uncommitted and untracked changes must survive untouched.
    (root / "README.md").write_text("agent\nlocal edit\n")
    (root / "notes.txt").write_text("untracked\n")
    git(root, "add", "README.md")
    (root / "README.md").write_text("agent\nlocal edit\nand an unstaged one\n")
    return AgentRepo(root=root, db=db, traces=traces)


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the working tree (hash), the index file's hash, HEAD, refs and ``git status``."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    out[".git/index"] = hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest()
    out["HEAD"] = git(root, "rev-parse", "HEAD")
    out["refs"] = git(root, "for-each-ref")
    out["status"] = git(root, "status", "--porcelain", "--untracked-files=all")
    out["worktrees"] = git(root, "worktree", "list", "--porcelain")
    return out


def diff_for(root: Path, path: str, old: str, new: str, *, ref: str = "HEAD") -> str:
    """A unified diff of one textual change to the committed ``path`` (computed in memory)."""
    import difflib

    text = git(root, "show", f"{ref}:{path}")
    assert old in text, old
    changed = text.replace(old, new)
    return "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), changed.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )


def textblock(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
