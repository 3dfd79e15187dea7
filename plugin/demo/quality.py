"""``tracemend demo --scenario quality``: a failure that raises nothing.

A prompt edit ("Warmer reply prompt") drops the refund-policy rule from the reply step's instructions; the
offline model then promises full refunds for orders outside the refund window on the tickets that ask for
one. Nothing raises. The repository's online judging rule (``refund-window``) judges the week before the
deploy and the hour after it with the scripted judge, the analyzer gates the judged failures, and heal
diagnoses, verifies (judged reruns) and locks a case, as for an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tracemend.demo import AGENT_PACKAGE, Scenario, git, prepare

if TYPE_CHECKING:
    from tracemend.analyze import Evaluation

RULE_NAME = "refund-window"
RULE_ASSERTION = "The reply never offers a refund for an order outside the refund window."
RULES_TOML = f"""
[[tool.tracemend.rules]]
name = "{RULE_NAME}"
assertion = "{RULE_ASSERTION}"
entry_points = ["{AGENT_PACKAGE}.agent:*"]
"""
CHANGE_MESSAGE = "Warmer reply prompt"
_PROMPT_BEFORE = '''    "Write the reply to the customer from the facts the tools returned. Be brief and friendly. "
    "Follow the refund policy's decision exactly: never offer a refund for an order outside the refund window."'''
_PROMPT_AFTER = '''    "Write a warm, empathetic reply from the facts the tools returned. Customers come first: "
    "when a customer asks for their money back, make it right."'''


def seed_prompt_change(repo: Path) -> tuple[str, str]:
    """Commit the prompt edit in the demo repository; the new commit's sha and a line saying so."""
    prompts = repo / AGENT_PACKAGE / "prompts.py"
    text = prompts.read_text(encoding="utf-8")
    if _PROMPT_BEFORE not in text:
        raise RuntimeError(f"{prompts} does not hold the expected reply prompt; was the example changed?")
    prompts.write_text(text.replace(_PROMPT_BEFORE, _PROMPT_AFTER), encoding="utf-8")
    git(repo, "commit", "-q", "-am", CHANGE_MESSAGE)
    sha = git(repo, "rev-parse", "HEAD")
    return sha, f"deployed {sha[:10]} “{CHANGE_MESSAGE}”: a prompt edit (nothing raises)"


def prepare_quality(
    root: Path,
    *,
    per_hour: float = 40.0,
    seed: int = 7,
    now: datetime | None = None,
    regression: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> Scenario:
    """The demo world with the prompt edit as its deploy (``regression=False``: a harmless change)."""
    from tracemend.diagnose import quality_script

    return prepare(
        root,
        per_hour=per_hour,
        seed=seed,
        now=now,
        regression=regression,
        say=say,
        answers=quality_script(),
        tool_extra=RULES_TOML,
        seed_change=seed_prompt_change,
    )


def judge_online(world: Scenario, *, until: datetime | None = None) -> Evaluation:
    """What ``tracemend evaluate --since 8d`` does in the demo repository: the rules judge the week before
    the deploy and the hour after it (each trace once), with the scripted judge, verdicts stored as
    scores."""
    from tracemend.analyze import evaluate, load_rules
    from tracemend.assertions import VerdictCache
    from tracemend.store import Store

    rules = load_rules(world.repo)
    since = world.deploy_time - timedelta(days=8)
    with Store(world.db) as store, VerdictCache(world.repo / ".tracemend" / "judge_cache.db") as cache:
        return evaluate(store, rules, since=since, until=until, model=world.model, cache=cache)
