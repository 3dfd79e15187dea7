"""`tracemend heal` on a project unlike the demo (examples/shopbot: a `src/` layout that is not installed, a
pydantic config, sync and async entry points, a class-method tool, ~5 % background failures sharing the
regression's signature), against an OpenAI-compatible server on loopback — litellm's real HTTP path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracemend.heal import load_state
from tracemend.store import Store
from tracemend.testing import LoopbackServer, Reply

from helpers import shopbot
from helpers.shopbot import ShopWorld

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> ShopWorld:
    return shopbot.prepare(tmp_path_factory.mktemp("shopbot-world"))


@pytest.fixture
def world(prepared: ShopWorld, tmp_path: Path) -> ShopWorld:
    return shopbot.copy_world(prepared, tmp_path)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_the_example_is_unlike_the_demo(prepared: ShopWorld) -> None:
    assert 0.03 <= shopbot.background_share(prepared) <= 0.08  # ~5 % background failures
    with Store(prepared.db, create=False) as store:
        entry_points = {t.entry_point for t in store.iter_traces(limit=400)}
    assert entry_points == {"shopbot.agent:answer", "shopbot.agent:aanswer"}
    assert (prepared.repo / "src" / "shopbot" / "__init__.py").is_file()
    assert not (prepared.repo / "shopbot").exists()  # importable only from src/ (or once installed)


def test_heal_yes_proves_the_fix_and_sets_pre_existing_failures_apart(world: ShopWorld) -> None:
    production = shopbot.trace_count(world.db)
    with LoopbackServer(shopbot.responder) as server:
        env = shopbot.heal_env(server.env())
        out = shopbot.heal(world, env, "--yes")
        requests = server.request_count
        _check_healed(world, out, requests, production)
        _plain_pytest_runs_the_case(world, env, production)


def _check_healed(world: ShopWorld, out: subprocess.CompletedProcess[str], requests: int, production: int) -> None:
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "Traceback" not in text
    # The three-way table, with the failures that predate the change in their own rows.
    for header in ("before change", "at head", "with fix"):
        assert header in out.stdout
    assert "pre_existing" in out.stdout and "pre-existing failure(s)" in out.stdout
    assert "the case fails before the fix and passes with it" in out.stdout
    state = load_state(world.repo)
    assert state is not None and state.outcome == "healed"
    assert state.check_before is not None and not state.check_before.passed
    assert state.check_after is not None and state.check_after.passed
    comparison = state.proposal.comparison if state.proposal else None
    assert comparison is not None and comparison.verdict == "fixed" and comparison.three_way
    assert comparison.prior_revision == world.good and comparison.head_revision == world.bad
    old = comparison.pre_existing
    assert old and all(item.prior_runs is not None and not item.prior_runs.passes for item in old)
    assert all(item.change == "fixed" for item in comparison.regression)
    # The summary's count is every request the server saw (triage, diagnosis, the check stage's judge).
    assert state.model_calls == requests and state.model_calls >= 5
    assert f"{requests} model requests" in out.stdout
    # Reruns and the check stage's pytest runs recorded into stores of their own.
    assert shopbot.trace_count(world.db) == production
    assert "math.ceil" in git(world.repo, "diff")


def _plain_pytest_runs_the_case(world: ShopWorld, env: dict[str, str], production: int) -> None:
    # Plain pytest runs the locked case from the user's checkout: the package is not installed, and the
    # app's own configure(db_path=...) points at the production store — which stays untouched.
    state = load_state(world.repo)
    assert state is not None and state.case_path is not None
    run = subprocess.run(
        [sys.executable, "-m", "pytest", state.case_path, "-q", "-p", "no:cacheprovider"],
        cwd=world.repo,
        env={**env, "SHOPBOT_TRACES": str(world.db)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert shopbot.trace_count(world.db) == production
    assert shopbot.trace_count(world.repo / ".tracemend" / "regression-runs" / "traces.db") >= 1


def test_heal_no_input_with_a_failing_server_exits_3_in_one_line_and_the_next_run_starts_fresh(
    world: ShopWorld,
) -> None:
    def broken(request: dict) -> Reply:
        return Reply(body={"error": {"message": "upstream exploded", "type": "server_error"}}, status=500)

    with LoopbackServer(broken) as server:
        env = shopbot.heal_env(server.env())
        out = shopbot.heal(world, env, "--no-input")
        assert out.returncode == 3, out.stdout + out.stderr
        assert "Traceback" not in out.stdout + out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, out.stderr
        line = lines[0]
        assert line.startswith("error: heal could not finish: triage: openai/shopbot-triage")
        assert "HTTP 500" in line and "try again" in line
        saved = load_state(world.repo)
        assert saved is not None and saved.outcome is None and saved.completed == ["analyze"]
        assert saved.model_calls == server.request_count == 4  # the first try and three retries

        server.responder = shopbot.responder
        server.clear()
        again = shopbot.heal(world, env, "--no-input")
        assert again.returncode == 1, again.stdout + again.stderr  # --no-input: proposed, not applied
        assert "set aside" in again.stderr
        state = load_state(world.repo)
        assert state is not None and state.outcome == "not_approved" and state.started_at > saved.started_at
        assert state.model_calls == server.request_count


def test_missing_or_refused_credentials_fail_at_once_naming_the_variable(world: ShopWorld) -> None:
    env = shopbot.heal_env({"TRACEMEND_ALLOW_MODEL_REQUESTS": "true"})
    env.pop("OPENAI_API_KEY", None)
    missing = shopbot.heal(world, env, "--no-input", "--fresh")
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert "OPENAI_API_KEY" in missing.stderr and "Traceback" not in missing.stderr
    state = load_state(world.repo)
    assert state is not None and state.model_calls == 0  # failed before the first request

    with LoopbackServer(lambda r: Reply(body={"error": {"message": "bad key"}}, status=401)) as server:
        refused = shopbot.heal(world, shopbot.heal_env(server.env()), "--no-input")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert server.request_count == 1  # a 401 is never retried
        assert "TRACEMEND_API_KEY" in refused.stderr


def test_heal_yes_on_a_branch_checks_the_committed_tree_and_says_who_approved(world: ShopWorld) -> None:
    with LoopbackServer(shopbot.responder) as server:
        out = shopbot.heal(world, shopbot.heal_env(server.env()), "--yes", "--branch", "fix/pages", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert git(world.repo, "status", "--porcelain") == ""  # the checkout is untouched
    message = git(world.repo, "log", "-1", "--format=%B", "fix/pages")
    assert "approved with --yes (sandbox verdict: fixed)" in message and "approved by a person" not in message
    state = load_state(world.repo)
    assert state is not None and state.outcome == "healed"
    assert state.case is not None and state.case.provenance.fixed_in_commit == git(
        world.repo, "rev-parse", "fix/pages"
    ).strip()
