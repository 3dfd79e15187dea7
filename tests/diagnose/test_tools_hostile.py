"""The diagnosing agent's tools against a hostile repository and a hostile model: secret files stay closed,
every output is redacted, a catastrophic pattern cannot hang a search, and a FIFO is never opened."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tracemend.capture.redact import Redactor
from tracemend.diagnose import RepoTools

from helpers.diagnose import AgentRepo, git
from helpers.secrets import CORPUS, USER_KEYS, USER_PATTERNS

OPENAI_KEY = "sk-proj-" + "Hq81xKpLmN4vB2cD9eF0gH1iJ3kL"
BOUND_SECONDS = 60  # a bound for a hang, not a timing: a hanging call never returns at all


def bounded(call: Callable[[], Any]) -> Any:
    """``call()`` in a thread; fails the test if it has not returned within the bound (a hang)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(BOUND_SECONDS)
    assert not thread.is_alive(), "the tool call hung"
    return result[0]


@pytest.fixture
def secrets_repo(agent_repo: AgentRepo) -> AgentRepo:
    root = agent_repo.root
    (root / ".env").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nDEBUG=1\n")
    (root / ".env.production").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\n")
    (root / "deploy").mkdir(exist_ok=True)
    (root / "deploy" / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIEvQ" + "A" * 60 + "\n")
    (root / "deploy" / "id_rsa").write_text("ssh key material " + OPENAI_KEY + "\n")
    (root / ".gitignore").write_text("local_settings.py\n")
    (root / "local_settings.py").write_text(f"KEY = '{OPENAI_KEY}'\n")
    (root / "shopbot" / "settings.py").write_text(
        "\n".join(f"EXAMPLE_{i} = {secret.text!r}" for i, secret in enumerate(CORPUS)) + "\n"
    )
    git(root, "add", ".gitignore", "shopbot/settings.py")
    return agent_repo


def test_secret_files_and_ignored_files_are_not_readable(secrets_repo: AgentRepo) -> None:
    tools = RepoTools(root=secrets_repo.root)
    for path in (".env", ".env.production", "deploy/server.pem", "deploy/id_rsa", "local_settings.py"):
        out = tools.call("read_file", {"path": path})
        assert out.startswith("error:") and "not readable" in out, (path, out)
    hits = tools.call("search_repo", {"pattern": "OPENAI_API_KEY|KEY ="})
    assert ".env" not in hits and "local_settings" not in hits and "id_rsa" not in hits
    listing = tools.call("list_files", {"path": "."})
    assert ".env  (not readable)" in listing and "local_settings.py" not in listing
    everything = "".join(
        tools.call(name, args)
        for name, args in [
            ("read_file", {"path": ".env"}),
            ("search_repo", {"pattern": "sk-proj"}),
            ("search_repo", {"pattern": "Hq81x"}),
            ("list_files", {"path": "deploy"}),
        ]
    )
    assert OPENAI_KEY not in everything and "Hq81xKpLmN4v" not in everything


def test_allowed_files_are_readable_but_still_redacted(secrets_repo: AgentRepo) -> None:
    tools = RepoTools(root=secrets_repo.root, allow_files=(".env",))
    out = tools.call("read_file", {"path": ".env"})
    assert "OPENAI_API_KEY=[REDACTED]" in out and "DEBUG=1" in out and OPENAI_KEY not in out


def test_every_tool_output_is_redacted(secrets_repo: AgentRepo) -> None:
    tools = RepoTools(
        root=secrets_repo.root,
        suspect_diff="+API_KEY = '" + OPENAI_KEY + "'\n",
        redactor=Redactor(
            USER_KEYS, USER_PATTERNS
        ),  # as [tool.tracemend] redact_keys / redact_patterns set it
    )
    outputs = [
        tools.call("read_file", {"path": "shopbot/settings.py"}),
        tools.call("search_repo", {"pattern": "EXAMPLE_"}),
        tools.call("show_suspect_diff", {}),
        tools.call("read_file", {"path": OPENAI_KEY}),  # even an error echoing the model's argument
    ]
    text = "\n".join(outputs)
    assert "EXAMPLE_0 = " in text  # the file was read
    leaks = [f"{s.kind}: {n}" for s in CORPUS for n in s.needles if n in text]
    assert leaks == [] and OPENAI_KEY not in text


def test_a_catastrophic_pattern_cannot_hang_the_search(secrets_repo: AgentRepo) -> None:
    (secrets_repo.root / "shopbot" / "long.txt").write_text("a" * 50_000 + "b\n")
    tools = RepoTools(root=secrets_repo.root)
    out = bounded(lambda: tools.call("search_repo", {"pattern": "(a+)+$"}))
    assert not out.startswith("error")
    out = bounded(lambda: tools.call("search_repo", {"pattern": r"(\w+)\1"}))  # backreference: not RE2
    assert "searched literally" in out


def test_a_fifo_in_the_repository_is_never_opened(secrets_repo: AgentRepo) -> None:
    os.mkfifo(secrets_repo.root / "shopbot" / "pipe.py")
    tools = RepoTools(root=secrets_repo.root)
    out = bounded(lambda: tools.call("read_file", {"path": "shopbot/pipe.py"}))
    assert "not a regular file" in out
    out = bounded(lambda: tools.call("search_repo", {"pattern": "def "}))
    assert "shopbot/pricing.py" in out
    assert "shopbot/pipe.py" in bounded(lambda: tools.call("list_files", {"path": "shopbot"}))
