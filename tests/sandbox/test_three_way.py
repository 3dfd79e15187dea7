"""Three-way verification: each failing input rerun before the suspect change, at head and with the fix;
pass rates where the agent varies; harness failures as usage errors; reruns in stores of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracemend.errors import ReplayError
from tracemend.records import ErrorInfo, RerunResult, Trace
from tracemend.sandbox import compare, verify_change
from tracemend.sandbox.compare import rerun_passed
from tracemend.store import Store

from helpers.sandbox_repo import git

pytestmark = pytest.mark.integration

# --- compare: the verdict is about the regression ------------------------------------------------------


def run(tid: str, ok: bool, output: object = "fine", error: str = "KeyError") -> RerunResult:
    if ok:
        return RerunResult(source_trace_id=tid, status="ok", output=output)
    return RerunResult(source_trace_id=tid, status="error", error=ErrorInfo(type=error, message="x"))


def test_a_failure_that_predates_the_change_neither_blocks_nor_counts_as_fixed() -> None:
    prior = [run("reg", True), run("old", False), run("ok", True)]
    head = [run("reg", False), run("old", False), run("ok", True)]
    fixed = [run("reg", True), run("old", False), run("ok", True)]
    result = compare(head, fixed, {"reg", "old"}, prior=prior, prior_revision="a" * 40, head_revision="b" * 40)
    changes = {i.source_trace_id: i.change for i in result.items}
    assert changes == {"reg": "fixed", "old": "pre_existing", "ok": "unchanged_ok"}
    assert result.verdict == "fixed" and result.three_way
    assert [i.source_trace_id for i in result.pre_existing] == ["old"]
    assert [i.source_trace_id for i in result.regression] == ["reg"]
    # Two-way, the same reruns would hold the old failure against the fix.
    assert compare(head, fixed, {"reg", "old"}).verdict == "partially_fixed"


def test_only_pre_existing_or_unreproduced_failures_mean_no_regression_to_fix() -> None:
    prior = [run("old", False), run("flaky", True)]
    head = [run("old", False), run("flaky", True)]
    fixed = [run("old", True), run("flaky", True)]
    result = compare(head, fixed, {"old", "flaky"}, prior=prior, prior_revision="p")
    assert {i.change for i in result.items} == {"pre_existing", "not_reproduced"}
    assert result.verdict == "not_reproduced"  # nothing proven: --yes will not apply it


def test_rates_not_single_runs() -> None:
    # Each tree ran the input three times: it passes where it passes in at least half of its runs.
    prior = [run("a", True)] * 3
    head = [run("a", False), run("a", False), run("a", True)]
    mostly = [run("a", True), run("a", True), run("a", False)]
    rarely = [run("a", True), run("a", False), run("a", False)]
    fixed = compare(head, mostly, {"a"}, prior=prior, prior_revision="p")
    (item,) = fixed.items
    assert item.change == "fixed" and str(item.after_runs) == "2/3" and str(item.before_runs) == "1/3"
    assert fixed.runs == 3
    assert compare(head, rarely, {"a"}, prior=prior, prior_revision="p").verdict == "not_fixed"
    # The run shown for a tree is one that failed, if any did.
    assert item.after.status == "error"


def test_another_pass_fail_predicate_plugs_in() -> None:
    # A judged failure: the call returns, but its output is wrong (as an online judge would say).
    def judged(result: RerunResult) -> bool:
        return rerun_passed(result) and result.output == "right"

    prior = [run("a", True, "right")]
    head = [run("a", True, "wrong")]
    fixed = [run("a", True, "right")]
    assert compare(head, fixed, {"a"}, prior=prior, prior_revision="p").verdict == "not_reproduced"
    result = compare(head, fixed, {"a"}, prior=prior, prior_revision="p", passed=judged)
    assert result.verdict == "fixed" and result.items[0].change == "fixed"


def test_a_passing_input_that_already_failed_at_head_did_not_break() -> None:
    result = compare([run("p", False)], [run("p", False)], set())
    assert result.items[0].change == "still_failing" and result.verdict == "unchanged"


# --- verify_change on a real repository with history -----------------------------------------------

AGENT = """\
import random

import tracemend

PAGES = {{"lamps": 3, "mugs": 1}}


class ShopConfig(tracemend.Config):
    page_size: int = 4


@tracemend.track
def answer(category: str, page: int, config: ShopConfig) -> str:
    pages = {pages}
    if page > pages:
        raise LookupError(f"page {{page}} is out of range ({{pages}} pages)")
    return f"{{category}} page {{page}}" + {noise}
"""
RECORD = """\
import json, sys
import tracemend
from shop.agent import ShopConfig, answer
for category, page in json.loads(sys.argv[1]):
    try:
        answer(category, page, ShopConfig())
    except Exception:
        pass
tracemend.flush()
"""
GOOD = "PAGES[category]"
BAD = "PAGES[category] - 1 if category == 'lamps' else PAGES[category]"


def make_shop(root: Path, *, noisy: bool = False) -> tuple[Path, str, str, dict[str, Trace]]:
    """A repository whose second commit breaks the last page of lamps; traces recorded at that commit."""
    repo = root / "repo"
    (repo / "shop").mkdir(parents=True)
    (repo / "shop" / "__init__.py").write_text("")
    noise = "f' #{random.random():.6f}'" if noisy else "''"
    (repo / "shop" / "agent.py").write_text(AGENT.format(pages=GOOD, noise=noise))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "shop")
    good = git(repo, "rev-parse", "HEAD").strip()
    (repo / "shop" / "agent.py").write_text(AGENT.format(pages=BAD, noise=noise))
    git(repo, "commit", "-qam", "paginate differently")
    bad = git(repo, "rev-parse", "HEAD").strip()
    db = root / "traces.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMEND_")}
    env.update(TRACEMEND_DB=str(db), TRACEMEND_PROJECT_ROOT=str(repo))
    calls = [["lamps", 3], ["mugs", 2], ["lamps", 1]]
    subprocess.run([sys.executable, "-c", RECORD, json.dumps(calls)], cwd=repo, env=env, check=True, timeout=120)
    with Store(db, create=False) as store:
        traces = {f"{t.input['category']}{t.input['page']}": t for t in store.iter_traces(with_spans=True)}
    return repo, good, bad, traces


FIX = "--- a/shop/agent.py\n+++ b/shop/agent.py\n@@ -14 +14 @@\n-    pages = {bad}\n+    pages = {good}\n"


def test_three_way_on_a_repository_sets_the_old_failure_apart(tmp_path: Path) -> None:
    repo, good, bad, traces = make_shop(tmp_path)
    assert traces["lamps3"].status == "error" and traces["mugs2"].status == "error"
    result = verify_change(
        repo,
        FIX.format(bad=BAD, good=GOOD),
        [traces["lamps3"], traces["mugs2"]],
        [traces["lamps1"]],
        prior_rev=good,
    )
    comparison = result.comparison
    assert comparison is not None and result.prior_commit == good and result.base_commit == bad
    changes = {i.source_trace_id: i.change for i in comparison.items}
    assert changes[traces["lamps3"].trace_id] == "fixed"
    assert changes[traces["mugs2"].trace_id] == "pre_existing"
    assert changes[traces["lamps1"].trace_id] == "unchanged_ok"
    assert comparison.verdict == "fixed" and comparison.runs == 1  # deterministic: one run per tree


def test_inputs_whose_outputs_vary_run_n_times_and_rates_decide(tmp_path: Path) -> None:
    repo, good, bad, traces = make_shop(tmp_path, noisy=True)
    result = verify_change(
        repo, FIX.format(bad=BAD, good=GOOD), [traces["lamps3"]], [traces["lamps1"]], prior_rev=good, runs=3
    )
    comparison = result.comparison
    assert comparison is not None and comparison.verdict == "fixed"
    by_id = {i.source_trace_id: i for i in comparison.items}
    noisy = by_id[traces["lamps1"].trace_id]  # recorded at head, output differs on rerun: varies
    assert noisy.before_runs.runs == noisy.after_runs.runs == 3 and noisy.prior_runs.runs == 3
    steady = by_id[traces["lamps3"].trace_id]  # fails at head as recorded: one run was enough
    assert steady.before_runs.runs == 1
    assert comparison.runs == 3


def test_a_config_override_the_config_rejects_is_a_usage_error(tmp_path: Path) -> None:
    repo, _good, _bad, traces = make_shop(tmp_path)
    with pytest.raises(ReplayError, match="nosuchkey"):
        verify_change(repo, None, [traces["lamps3"]], config_overrides={"nosuchkey": 1})
    db = tmp_path / "traces.db"
    out = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "rerun", traces["lamps3"].trace_id[:12], "--db", str(db),
         "--config", "nosuchkey=1", "--repo", str(repo)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "nosuchkey" in out.stderr and "Traceback" not in out.stderr


def test_an_entry_point_recorded_from_main_is_a_usage_error(tmp_path: Path) -> None:
    repo, _good, _bad, traces = make_shop(tmp_path)
    script = traces["lamps3"].model_copy(update={"entry_point": "__main__:answer"})
    with pytest.raises(ReplayError, match="__main__"):
        verify_change(repo, FIX.format(bad=BAD, good=GOOD), [script])


def test_reruns_record_into_their_own_store_even_when_the_agent_configures_one(tmp_path: Path) -> None:
    repo, _good, _bad, traces = make_shop(tmp_path)
    production = tmp_path / "production.db"
    # The app points tracemend at its production store itself, whatever the environment says.
    agent = repo / "shop" / "__init__.py"
    agent.write_text(f"import tracemend\ntracemend.configure(db_path={str(production)!r}, environment='production')\n")
    git(repo, "commit", "-qam", "configure tracing")
    result = verify_change(repo, FIX.format(bad=BAD, good=GOOD), [traces["lamps3"]], [traces["lamps1"]])
    assert result.comparison is not None and result.comparison.verdict == "fixed"
    assert all(i.after.trace is not None for i in result.comparison.items)  # recorded, and read back
    assert not production.exists() or Store(production, create=False).count() == 0


def test_comparison_samples_come_from_the_failing_inputs_environment(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tracemend.sandbox import sample_passing

    now = datetime.now(UTC)

    def trace(tid: str, environment: str, minutes: int, status: str = "ok") -> Trace:
        error = ErrorInfo(type="KeyError", message="x") if status == "error" else None
        return Trace(
            trace_id=tid * 32, entry_point="m:f", name="f", environment=environment, status=status,
            error=error, start_time=now - timedelta(minutes=minutes),
        )

    with Store(tmp_path / "t.db") as store:
        store.add_traces(
            [trace("a", "production", 5, "error"), trace("b", "production", 9), trace("c", "development", 1)]
        )
        failing = [store.get_trace("a" * 32)]
        sample = sample_passing(store, failing, per_entry_point=3)
    assert [t.trace_id for t in sample] == ["b" * 32]  # the newer development run is not a sample
