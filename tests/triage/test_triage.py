"""Triage: rules for changed files, the suspect change, the causal verdict, roll-back vs fix-forward; vcs."""

from __future__ import annotations

import json

import pytest

from tracemend import triage as tri
from tracemend import vcs
from tracemend.analyze.select import select_finding
from tracemend.analyze.ungated import finding_from_store
from tracemend.errors import AnalyzeError
from tracemend.records import Finding, Signature
from tracemend.store import Store

from helpers.diagnose import AgentRepo, by_turn, git, make_agent_repo, text

# --- rules -------------------------------------------------------------------------------------------

RMAP = tri.RuntimeMap(
    entry_modules=["shopbot.agent"],
    imported={"shopbot/__init__.py", "shopbot/agent.py", "shopbot/pricing.py"},
    packages={"shopbot"},
    literals={"prompts/system.txt", "greeting.txt"},
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("shopbot/pricing.py", "runtime"),
        ("shopbot/new_module.py", "runtime"),  # inside the agent's package
        ("shopbot/prompts/greeting.txt", "runtime"),  # read by the runtime
        ("prompts/system.txt", "runtime"),  # referenced by an imported module
        ("config/unused.yaml", "prompt_config"),  # prompt/config nobody imports
        ("requirements.txt", "runtime"),
        ("pyproject.toml", "runtime"),
        ("tests/test_pricing.py", "test"),
        ("shopbot/test_helpers_test.py", "test"),
        ("conftest.py", "test"),
        ("tests/regressions/refund.yaml", "test"),
        ("README.md", "docs"),
        ("docs/guide.rst", "docs"),
        ("LICENSE", "docs"),
        (".github/workflows/ci.yml", "ci"),
        (".gitlab-ci.yml", "ci"),
        ("tox.ini", "ci"),
        ("Makefile", "ci"),
    ],
)
def test_rules_place_files(path: str, expected: str) -> None:
    cf = tri.classify_path(path, RMAP)
    assert cf is not None, path
    assert cf.file_class == expected, (path, cf.reason)


@pytest.mark.parametrize(
    "path", ["scripts/seed_data.py", "tools/thing.dat", "assets/logo.bin", "scripts/load_test.py", "bench/run_test.py"]
)
def test_rules_leave_unknown_files_to_the_model(path: str) -> None:
    assert tri.classify_path(path, RMAP) is None


def test_python_without_known_entry_point_is_runtime() -> None:
    cf = tri.classify_path("scripts/seed_data.py", tri.RuntimeMap())
    assert cf is not None and cf.file_class == "runtime"


def test_runtime_map_follows_imports_and_prompt_reads(agent_repo: AgentRepo) -> None:
    repo = vcs.open_repo(agent_repo.root)
    rmap = tri.build_runtime_map(
        ["shopbot.agent:answer"],
        lambda p: vcs.file_at(repo, "HEAD", p),
        vcs.files_at(repo, "HEAD"),
    )
    assert {"shopbot/__init__.py", "shopbot/agent.py", "shopbot/pricing.py"} <= rmap.imported
    assert "scripts/seed_data.py" not in rmap.imported
    assert tri.classify_path("shopbot/prompts/greeting.txt", rmap).file_class == "runtime"
    assert tri.classify_path("scripts/seed_data.py", rmap) is None


# --- severity and the recommendation ------------------------------------------------------------------


def _finding(window: int, exposure: int, types: list[str], ids: list[str] | None = None) -> Finding:
    return Finding(
        signature=Signature(
            signature_id="sig123", signature_version=1, exception_types=types, template="KeyError at x"
        ),
        baseline_count=0,
        baseline_exposure=100,
        window_count=window,
        window_exposure=exposure,
        expected=0.1,
        p_value=0.001,
        q_value=0.01,
        verdict="new",
        example_trace_ids=ids or [],
    )


def test_severity_uses_share_and_error_kind() -> None:
    assert tri.severity_of(_finding(30, 100, ["ValueError"])).high
    assert tri.severity_of(_finding(4, 100, ["KeyError"])).high  # crash-type at 4 %
    assert not tri.severity_of(_finding(4, 100, ["ValueError"])).high


def test_recommendation_rolls_back_when_severe_and_unsure() -> None:
    sev = tri.severity_of(_finding(40, 100, ["KeyError"]))
    action, why, cmd = tri.recommend("investigate", 0.3, True, sev, "git revert --no-edit abc", "sig123")
    assert action == "roll_back" and cmd == "git revert --no-edit abc"
    assert "30%" in why


def test_recommendation_fixes_forward_when_attributed() -> None:
    sev = tri.severity_of(_finding(40, 100, ["KeyError"]))
    action, _why, cmd = tri.recommend("investigate", 0.9, True, sev, "git revert --no-edit abc", "sig123")
    assert action == "fix_forward" and cmd == "tracemend diagnose --signature sig123"


def test_recommendation_follows_a_roll_back_decision_even_when_confident() -> None:
    sev = tri.severity_of(_finding(1, 100, ["ValueError"]))
    assert tri.recommend("roll_back", 0.95, True, sev, "git revert x", "s")[0] == "roll_back"


# --- the suspect change and the verdict on a real repository -------------------------------------------


def test_finding_from_store_and_suspect_change(agent_repo: AgentRepo) -> None:
    with Store(agent_repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=agent_repo.failing[0])
        traces = tri.load_examples(store, finding)
        change = tri.suspect_change(vcs.open_repo(agent_repo.root), store, finding, traces)
    assert finding.window_count == 2 and finding.window_exposure == 5
    assert finding.baseline_count == 0 and finding.verdict == "new"
    assert change.base == agent_repo.good and change.head == agent_repo.bad
    assert set(change.files) == {"shopbot/pricing.py", "README.md"}
    assert "-    return COUPONS.get(coupon.upper(), 0.0)" in change.diff
    linked = tri.link_frames(change.diff, traces)
    assert any(item.startswith("shopbot/pricing.py:9:") for item in linked), linked


def test_runtime_change_gets_a_causal_verdict_from_the_model(agent_repo: AgentRepo, loopback) -> None:
    answer = {
        "decision": "investigate",
        "confidence": 0.85,
        "reasoning": "pricing.py now indexes COUPONS directly; unknown coupons raise KeyError.",
        "linked_lines": ["shopbot/pricing.py:9"],
        "attributed_signatures": [],
    }
    loopback.script = by_turn([text(json.dumps(answer))])
    with Store(agent_repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=agent_repo.failing[0])
        result = tri.triage(finding, store, vcs.open_repo(agent_repo.root), model=loopback.model)
    v = result.verdict
    assert len(loopback.requests) == 1  # every file placed by rules: one call, for the verdict
    sent = loopback.all_text()
    assert "COUPONS[coupon.upper()]" in sent and "KeyError" in sent
    assert v.caused_by_change and v.decision == "investigate" and v.confidence == pytest.approx(0.85)
    assert {c.path: c.file_class for c in v.changed_files} == {
        "shopbot/pricing.py": "runtime",
        "README.md": "docs",
    }
    assert finding.signature.signature_id in v.attributed_signatures
    # 2 of 5 traces fail with a KeyError (high severity) but the cause is attributed: fix forward.
    assert v.action == "fix_forward" and v.next_command.startswith("tracemend diagnose --signature ")
    assert any("shopbot/pricing.py:9" in line for line in v.linked_lines)


def test_low_confidence_on_severe_failure_recommends_the_exact_revert(
    agent_repo: AgentRepo, loopback
) -> None:
    answer = {"decision": "investigate", "confidence": 0.3, "reasoning": "unclear", "linked_lines": []}
    loopback.script = by_turn([text(json.dumps(answer))])
    with Store(agent_repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=agent_repo.failing[0])
        v = tri.triage(finding, store, vcs.open_repo(agent_repo.root), model=loopback.model).verdict
    assert v.action == "roll_back"
    assert v.next_command == f"git revert --no-edit {agent_repo.bad[:10]}"


def test_docs_and_tests_only_change_is_not_the_cause_without_any_model_call(tmp_path, loopback) -> None:
    repo = make_agent_repo(tmp_path / "shop", docs_only_followup=True)
    loopback.script = by_turn([text("must not be asked")])
    with Store(repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=repo.failing[0])
        result = tri.triage(finding, store, vcs.open_repo(repo.root), model=loopback.model)
    v = result.verdict
    assert loopback.requests == []
    assert result.model_calls == 0
    assert not v.caused_by_change and v.decision == "ignore"
    assert {c.file_class for c in v.changed_files} == {"docs", "test"}
    assert "Not caused by this change" in v.reasoning


def test_unplaced_files_go_to_the_model(agent_repo: AgentRepo, loopback) -> None:
    (agent_repo.root / "scripts/seed_data.py").write_text("print('heavier load')\n")
    sha = git_commit(agent_repo, "load test tweak")
    classify = {
        "files": [{"path": "scripts/seed_data.py", "file_class": "ci", "reason": "a load-test script"}]
    }
    loopback.script = by_turn([text(json.dumps(classify))])
    with Store(agent_repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=agent_repo.failing[0])
        v = tri.triage(
            finding,
            store,
            vcs.open_repo(agent_repo.root),
            model=loopback.model,
            base=agent_repo.bad,
            head=sha,
        ).verdict
    assert len(loopback.requests) == 1  # classification only; no runtime file → no verdict call
    assert v.changed_files[0].file_class == "ci" and "model" in v.changed_files[0].reason
    assert not v.caused_by_change


def git_commit(repo: AgentRepo, message: str) -> str:
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", message)
    return git(repo.root, "rev-parse", "HEAD")


def test_no_earlier_revision_is_a_clear_error(agent_repo: AgentRepo) -> None:
    with Store(agent_repo.db, create=False) as store:
        finding = finding_from_store(store, trace_id=agent_repo.failing[0])
        with pytest.raises(tri.TriageError, match="pass --base"):
            tri.suspect_change(vcs.open_repo(agent_repo.root), store, finding, [], head=agent_repo.good)


# --- vcs -----------------------------------------------------------------------------------------------


def test_vcs_reads_revisions(agent_repo: AgentRepo) -> None:
    repo = vcs.open_repo(agent_repo.root / "shopbot")
    assert vcs.repo_root(repo) == agent_repo.root.resolve()
    assert [c.summary for c in vcs.commits_between(repo, agent_repo.good, agent_repo.bad)] == [
        "pricing: look coupons up directly"
    ]
    assert "COUPONS.get" in vcs.file_at(repo, agent_repo.good, "shopbot/pricing.py")
    assert vcs.file_at(repo, agent_repo.good, "nope.py") is None
    assert vcs.parent_of(repo, agent_repo.bad) == agent_repo.good
    assert (
        vcs.revert_command(repo, agent_repo.good, agent_repo.bad)
        == f"git revert --no-edit {agent_repo.bad[:10]}"
    )
    with pytest.raises(vcs.VcsError, match="unknown revision"):
        vcs.diff(repo, "0" * 40)
    with pytest.raises(vcs.VcsError, match="not inside a git repository"):
        vcs.open_repo(agent_repo.root.parent)


def test_commit_to_branch_leaves_the_checkout_alone(agent_repo: AgentRepo) -> None:
    repo = vcs.open_repo(agent_repo.root)
    patch = vcs.diff(repo, agent_repo.bad, agent_repo.good, paths=["shopbot/pricing.py"])
    before = agent_repo.snapshot()
    sha = vcs.commit_to_branch(repo, patch, "fix/coupons", "Fix coupons\n\nSignature: abc\n")
    assert agent_repo.snapshot() == before
    assert repo.active_branch.name == "main" and not repo.is_dirty()
    assert vcs.file_at(repo, sha, "shopbot/pricing.py") == vcs.file_at(
        repo, agent_repo.good, "shopbot/pricing.py"
    )
    assert repo.commit(sha).message.startswith("Fix coupons")
    with pytest.raises(vcs.VcsError, match="already exists"):
        vcs.commit_to_branch(repo, patch, "fix/coupons", "again")
    bad_patch = patch.replace("COUPONS[coupon.upper()]", "SOMETHING_ELSE")
    with pytest.raises(vcs.VcsError, match="does not apply"):
        vcs.commit_to_branch(repo, bad_patch, "fix/other", "x")
    assert "fix/other" not in [h.name for h in repo.heads]  # nothing left behind
    assert len(repo.git.worktree("list").splitlines()) == 1


def test_apply_to_working_tree_is_all_or_nothing(agent_repo: AgentRepo) -> None:
    repo = vcs.open_repo(agent_repo.root)
    patch = vcs.diff(repo, agent_repo.bad, agent_repo.good, paths=["shopbot/pricing.py"])
    broken = patch + patch.replace("shopbot/pricing.py", "shopbot/agent.py")
    before = agent_repo.snapshot()
    with pytest.raises(vcs.VcsError):
        vcs.apply_to_working_tree(repo, broken)
    assert agent_repo.snapshot() == before
    assert vcs.apply_to_working_tree(repo, patch) == ["shopbot/pricing.py"]
    assert "COUPONS.get" in (agent_repo.root / "shopbot/pricing.py").read_text()


def test_select_finding_from_analyze_json_and_from_the_store(agent_repo: AgentRepo) -> None:
    noise = _finding(1, 100, ["ValueError"]).model_copy(update={"verdict": "noise"})
    flagged = _finding(40, 100, ["KeyError"]).model_copy(
        update={"signature": Signature(signature_id="abc999", signature_version=1, template="t")}
    )
    doc = json.dumps(
        {"revision": "x", "findings": [noise.model_dump(mode="json"), flagged.model_dump(mode="json")]}
    )
    with Store(agent_repo.db, create=False) as store:
        assert select_finding(store, finding_json=doc).signature.signature_id == "abc999"
        assert (
            select_finding(store, finding_json=doc, signature="sig1").signature.signature_id == "sig123"
        )
        with pytest.raises(AnalyzeError, match="no finding"):
            select_finding(store, finding_json=doc, signature="zzz")
        with pytest.raises(AnalyzeError, match="not a Finding"):
            select_finding(store, finding_json='{"findings": [{"nope": 1}]}')
        by_trace = select_finding(store, trace_id=agent_repo.failing[0])
        by_sig = select_finding(store, signature=by_trace.signature.signature_id[:10])
    assert by_sig.signature.signature_id == by_trace.signature.signature_id
    assert set(by_sig.example_trace_ids) == set(agent_repo.failing)


def test_wide_range_reaches_back_to_the_signatures_first_revision(tmp_path, loopback) -> None:
    repo = make_agent_repo(tmp_path / "shop", docs_only_followup=True)
    answer = {"decision": "investigate", "confidence": 0.8, "reasoning": "the coupon lookup changed"}
    loopback.script = by_turn([text(json.dumps(answer))])
    with Store(repo.db, create=False) as store:
        finding = select_finding(store, trace_id=repo.failing[0])
        result = tri.triage(finding, store, vcs.open_repo(repo.root), model=loopback.model, wide=True)
    assert result.change.base == vcs.open_repo(repo.root).git.rev_list("--max-parents=0", "HEAD")
    assert "shopbot/pricing.py" in result.change.files and len(result.change.commits) == 2
    assert result.verdict.caused_by_change and len(loopback.requests) == 1


def test_a_model_that_never_gives_a_valid_verdict_fails_closed(agent_repo: AgentRepo, loopback) -> None:
    from tracemend import llm

    loopback.script = by_turn([text('{"decision": "maybe", "confidence": 7}')])
    with Store(agent_repo.db, create=False) as store:
        finding = select_finding(store, trace_id=agent_repo.failing[0])
        with pytest.raises(llm.StructuredOutputError):
            tri.triage(finding, store, vcs.open_repo(agent_repo.root), model=loopback.model)
    assert len(loopback.requests) >= 2  # re-asked with the validation error before giving up
