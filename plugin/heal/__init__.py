"""`tracemend heal`: the whole loop for the newest deploy, one stage after another, resumable.

    analyze → triage → diagnose (sandbox-verified) → approve → apply → lock → check

Each stage reads the records the previous one produced (Finding, TriageVerdict, Proposal, RegressionCase)
and the state is saved after every stage in ``<repo>/.tracemend/heal/state.json``, so an interrupted run
continues where it stopped (``--resume``). Nothing changes the user's files before a person approved the
diff (or ``--yes`` approved a sandbox-verified fix). Display is the caller's: stages report through a
:class:`Reporter`.

Exit codes: 0 nothing to heal, or healed (fix applied, case locked and passing); 1 a flagged finding was
left unhealed (not attributed to the change, roll back advised, no fix, not verified, rejected,
``--no-input``); 2 usage errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from tracemend.errors import HealError
from tracemend.records import Finding, Proposal, RegressionCase, TriageVerdict

STAGES = ("analyze", "triage", "diagnose", "approve", "apply", "lock", "check")
STATE_VERSION = 1
Outcome = Literal["clean", "healed", "not_caused", "roll_back", "ignored", "no_fix", "not_approved", "check_failed"]


class CaseCheck(BaseModel):
    where: str
    passed: bool
    exit_code: int
    output_tail: str = ""


class HealState(BaseModel):
    version: int = STATE_VERSION
    repo: str
    db: str
    head: str
    started_at: datetime
    completed: list[str] = Field(default_factory=list)
    deploy_revision: str | None = None
    deploy_time: datetime | None = None
    flagged: int = 0
    finding: Finding | None = None
    triage: TriageVerdict | None = None
    proposal: Proposal | None = None
    decision: str | None = None
    applied: dict[str, Any] | None = None
    case: RegressionCase | None = None
    case_path: str | None = None
    check_before: CaseCheck | None = None
    check_after: CaseCheck | None = None
    model_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    scripted: bool = False
    outcome: Outcome | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.outcome is not None


class Reporter(Protocol):
    def start(self, stage: str, what: str) -> None: ...
    def done(self, stage: str, summary: str) -> None: ...
    def skip(self, stage: str, why: str) -> None: ...
    def show(self, stage: str, state: HealState, extra: Any = None) -> None: ...


class ApprovalUI(Protocol):  # tracemend.approval.ApprovalUI
    def show_proposal(self, proposal: Proposal) -> None: ...
    def show_trace(self, trace: Any) -> None: ...
    def ask(self, prompt: str) -> str | None: ...
    def info(self, message: str) -> None: ...


@dataclass
class HealOptions:
    repo: Path
    db: Path
    baseline: timedelta = timedelta(days=7)
    window: timedelta = timedelta(minutes=60)
    since: datetime | None = None
    revision: str | None = None
    model: str | None = None
    yes: bool = False
    no_input: bool = False
    branch: str | None = None
    regress_dir: str = "tests/regressions"
    timeout: float = 30.0
    passing: int = 3
    tty: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


def state_path(repo: Path) -> Path:
    return repo / ".tracemend" / "heal" / "state.json"


def load_state(repo: Path) -> HealState | None:
    path = state_path(repo)
    if not path.exists():
        return None
    try:
        return HealState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HealError(f"{path} is not a heal state ({str(exc).splitlines()[0]}); remove it or pass --fresh") from None


def save_state(state: HealState) -> None:
    path = state_path(Path(state.repo))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: an interrupted save never leaves half a state


class Healer:
    def __init__(self, options: HealOptions, reporter: Reporter, approval_ui: ApprovalUI | None = None) -> None:
        self.opt = options
        self.report = reporter
        self.ui = approval_ui
        self._store: Any = None
        self._request: Any = None

    # --- plumbing ----------------------------------------------------------------------------------

    def store(self) -> Any:
        if self._store is None:
            from tracemend.store import Store, StoreError

            try:
                self._store = Store(self.opt.db, create=False)
            except StoreError as exc:
                raise HealError(str(exc)) from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def begin(self, *, resume: bool, fresh: bool) -> HealState:
        from tracemend import vcs

        try:
            repo = vcs.open_repo(self.opt.repo)
        except vcs.VcsError as exc:
            raise HealError(str(exc)) from None
        root = vcs.repo_root(repo)
        self.opt.repo = root
        head = vcs.resolve(repo, "HEAD")
        previous = None if fresh else load_state(root)
        if previous is not None and not previous.finished:
            if not resume:
                raise HealError(
                    f"an interrupted heal run is saved in {state_path(root)} (stopped after "
                    f"{previous.completed[-1] if previous.completed else 'the start'}); "
                    "pass --resume to continue it or --fresh to start over"
                )
            if previous.db != str(self.opt.db):
                raise HealError(f"the saved run used the store {previous.db}; pass --db {previous.db} or --fresh")
            return previous
        if resume:
            raise HealError("there is no interrupted heal run to resume")
        return HealState(repo=str(root), db=str(self.opt.db), head=head, started_at=datetime.now(UTC))

    def run(self, state: HealState) -> HealState:
        from tracemend import llm

        # Totals of a resumed run continue from what the saved run had spent.
        calls, tokens, cost = state.model_calls, state.tokens, state.cost
        with llm.track_usage() as usage:

            def account() -> None:
                state.model_calls = calls + usage.calls
                state.tokens = tokens + usage.prompt_tokens + usage.completion_tokens
                state.cost = cost + usage.cost
                state.scripted = state.scripted or usage.scripted_calls > 0

            try:
                for stage in STAGES:
                    if state.finished:
                        break
                    if stage in state.completed:
                        self.report.skip(stage, "done in the saved run")
                        continue
                    getattr(self, f"_{stage}")(state)
                    state.completed.append(stage)
                    account()
                    save_state(state)
            finally:
                account()
                save_state(state)
                self.close()
        return state

    def _finish(self, state: HealState, outcome: Outcome, message: str) -> None:
        state.outcome = outcome
        state.message = message

    # --- stages ------------------------------------------------------------------------------------

    def _analyze(self, state: HealState) -> None:
        from tracemend.analyze import AnalyzeError, analyze

        self.report.start("analyze", "grouping failures into signatures and gating the newest deploy")
        try:
            result = analyze(
                self.store(),
                baseline=self.opt.baseline,
                window=self.opt.window,
                since=self.opt.since,
                revision=self.opt.revision,
            )
        except AnalyzeError as exc:
            raise HealError(str(exc)) from None
        state.deploy_revision = result.revision
        state.deploy_time = result.deploy_time
        flagged = result.flagged
        state.flagged = len(flagged)
        self.report.show("analyze", state, result)
        if not flagged:
            self.report.done("analyze", f"nothing flagged among {result.signatures_seen} signatures")
            self._finish(state, "clean", "the deploy shows no significant new or increased failure")
            return
        state.finding = flagged[0]
        more = f" (and {len(flagged) - 1} more; heal takes the most significant first)" if len(flagged) > 1 else ""
        self.report.done(
            "analyze",
            f"{flagged[0].verdict}: {describe(flagged[0].signature)} — {flagged[0].window_count} failing "
            f"traces in the window, {flagged[0].expected:.2f} expected{more}",
        )

    def _triage(self, state: HealState) -> None:
        from tracemend import triage, vcs

        assert state.finding is not None
        self.report.start("triage", "classifying the suspect change and asking for a causal verdict")
        try:
            result = triage.triage(state.finding, self.store(), vcs.open_repo(self.opt.repo), model=self.opt.model)
        except triage.TriageError as exc:
            raise HealError(f"triage cannot run: {exc}") from None
        verdict = result.verdict
        state.triage = verdict
        self.report.show("triage", state, result)
        if not verdict.caused_by_change:
            self.report.done("triage", "not caused by this change")
            self._finish(state, "not_caused", verdict.recommendation or "the suspect change touched no runtime file")
        elif verdict.action == "roll_back" or verdict.decision == "roll_back":
            self.report.done("triage", "roll back advised")
            self._finish(state, "roll_back", verdict.next_command or verdict.recommendation)
        elif verdict.decision == "ignore":
            self.report.done("triage", "the model judged the finding not worth acting on")
            self._finish(state, "ignored", verdict.reasoning)
        else:
            self.report.done("triage", f"{verdict.decision}, confidence {verdict.confidence:.2f}: fix forward")

    def _diagnose_request(self, state: HealState) -> Any:
        if self._request is None:
            from tracemend.diagnose.request import request_for_trace

            assert state.finding is not None and state.finding.example_trace_ids
            self._request = request_for_trace(
                self.store(), self.opt.repo, state.finding.example_trace_ids[0], passing=self.opt.passing
            )
            self._request.rerun_timeout = self.opt.timeout
        return self._request

    def _diagnose(self, state: HealState) -> None:
        from tracemend.diagnose import DiagnoseError, diagnose

        self.report.start("diagnose", "reading the trace and the source, proposing and verifying an edit")
        try:
            result = diagnose(self._diagnose_request(state), model=self.opt.model)
        except DiagnoseError as exc:
            raise HealError(str(exc)) from None
        self.report.show("diagnose", state, result)
        if result.proposal is None:
            self.report.done("diagnose", f"no fix proposed ({result.stop.replace('_', ' ')})")
            self._finish(state, "no_fix", f"the diagnosing agent stopped: {result.stop.replace('_', ' ')}")
            return
        state.proposal = result.proposal
        verdict = result.proposal.comparison.verdict if result.proposal.comparison else "not rerun"
        self.report.done("diagnose", f"proposed an edit to {', '.join(result.proposal.touched_files)}; sandbox: {verdict}")

    def _approve(self, state: HealState) -> None:
        from tracemend.diagnose import approval_loop, auto_decision

        assert state.proposal is not None
        self.report.start("approve", "asking a person")
        decision = auto_decision(state.proposal, yes=self.opt.yes, no_input=self.opt.no_input, tty=self.opt.tty)
        if decision == "ask" and self.ui is not None:
            outcome, proposal = approval_loop(state.proposal, self._diagnose_request(state), self.ui)
            state.proposal = proposal
            decision = "approve" if outcome == "approve" else outcome
        else:
            self.report.show("approve", state)
        state.decision = decision
        if decision != "approve":
            why = {
                "refuse": "--no-input" if self.opt.no_input else "--yes applies only a sandbox-verified fix",
                "no_tty": "no terminal to ask on (use --yes or --no-input)",
                "reject": "rejected",
                "quit": "quit",
            }.get(decision, decision)
            self.report.done("approve", f"not approved: {why}")
            self._finish(state, "not_approved", f"nothing was changed ({why})")
            return
        who = "approved with --yes (sandbox verdict: fixed)" if self.opt.yes else "approved"
        self.report.done("approve", who)

    def _apply(self, state: HealState) -> None:
        from tracemend import vcs
        from tracemend.diagnose import apply_approved

        assert state.proposal is not None
        self.report.start("apply", "applying the approved diff")
        if self.opt.branch:
            # The case joins the fix on the branch in the lock stage; nothing is committed yet.
            state.applied = {"mode": "branch", "branch": self.opt.branch, "files": state.proposal.touched_files}
            self.report.done("apply", f"fix held for branch {self.opt.branch} (committed with its case)")
            return
        try:
            applied = apply_approved(self.opt.repo, state.proposal)
        except vcs.VcsError as exc:
            raise HealError(f"could not apply the approved fix: {exc}") from None
        state.applied = {"mode": applied.mode, "summary": applied.summary, "undo": applied.undo, "files": applied.files}
        self.report.done("apply", applied.summary)

    def _lock(self, state: HealState) -> None:
        from tracemend.assertions.case import case_from_trace, dump_case, slug
        from tracemend.records import Check

        assert state.finding is not None and state.proposal is not None
        self.report.start("lock", "writing the regression case")
        trace = self.store().get_trace(state.finding.example_trace_ids[0], with_spans=False)
        if trace is None:
            raise HealError(f"trace {state.finding.example_trace_ids[0]} is gone from the store")
        assertions = list(state.proposal.suggested_assertions) or [
            "The reply answers the customer's request without reporting an internal error."
        ]
        checks = [Check(kind="not_raises", value=t) for t in state.finding.signature.exception_types[:1]]
        case = case_from_trace(
            trace,
            assertions=assertions,
            checks=checks,
            name=f"{trace.name} {state.finding.signature.signature_id[:8]}",
            signature_id=state.finding.signature.signature_id,
            fixed_in_commit=None,
        )
        state.case = case
        rel = f"{self.opt.regress_dir}/{slug(case.name)}.yaml"
        state.case_path = rel
        if self.opt.branch:
            from tracemend import vcs

            diff = state.proposal.diff.rstrip("\n") + "\n" + _new_file_diff(rel, dump_case(case))
            message = _commit_message(state)
            repo = vcs.open_repo(self.opt.repo)
            try:
                sha = vcs.commit_to_branch(repo, diff, self.opt.branch, message, rev=state.proposal.base_revision or "HEAD")
            except vcs.VcsError as exc:
                raise HealError(f"could not commit to {self.opt.branch}: {exc}") from None
            case.provenance.fixed_in_commit = sha
            state.applied = {
                **(state.applied or {}),
                "commit": sha,
                "summary": f"committed {sha[:10]} (fix + case) on new branch {self.opt.branch}; your checkout is unchanged",
                "undo": f"git branch -D {self.opt.branch}",
            }
            self.report.done("lock", f"{rel} committed with the fix on {self.opt.branch}")
            return
        path = self.opt.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_case(case), encoding="utf-8")
        self.report.done("lock", f"wrote {rel} ({len(case.assertions)} assertion(s), {len(case.checks)} check(s))")

    def _check(self, state: HealState) -> None:
        from tracemend.sandbox import isolated_worktree

        assert state.case_path is not None
        self.report.start("check", "running the new case before the fix (must fail) and after it (must pass)")
        case_text = (
            (self.opt.repo / state.case_path).read_text(encoding="utf-8")
            if not self.opt.branch
            else None
        )
        base = state.proposal.base_revision if state.proposal and state.proposal.base_revision else state.head
        with isolated_worktree(self.opt.repo, base) as before_tree:
            if case_text is None:
                from tracemend.assertions.case import dump_case

                assert state.case is not None
                case_text = dump_case(state.case)
            target = before_tree / state.case_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(case_text, encoding="utf-8")
            state.check_before = self._run_case(before_tree, state.case_path, "before the fix")
        if self.opt.branch:
            with isolated_worktree(self.opt.repo, self.opt.branch) as after_tree:
                state.check_after = self._run_case(after_tree, state.case_path, "with the fix")
        else:
            state.check_after = self._run_case(self.opt.repo, state.case_path, "with the fix")
        self.report.show("check", state)
        if not state.check_after.passed:
            self.report.done("check", "the new case fails with the fix applied")
            self._finish(state, "check_failed", "the locked case does not pass with the fix; see its output")
            return
        caught = "fails before the fix, " if not state.check_before.passed else "passes even before the fix (!), "
        self.report.done("check", f"the case {caught}passes with it")
        self._finish(state, "healed", "fixed, verified in the sandbox, applied, and locked as a regression case")

    def _run_case(self, where: Path, case_path: str, label: str) -> CaseCheck:
        env = {
            **os.environ,
            **self.opt.extra_env,
            "PYTHONPATH": str(where) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TRACEMEND_PROJECT_ROOT": str(where),
            "TRACEMEND_DB": str(where / ".tracemend" / "check-traces.db"),
        }
        if self.opt.model:
            env.setdefault("TRACEMEND_JUDGE_MODEL", self.opt.model)
        cmd = [sys.executable, "-m", "pytest", case_path, "-q", "-p", "no:cacheprovider", "-p", "no:opik", "--no-header"]
        try:
            out = subprocess.run(cmd, cwd=where, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return CaseCheck(where=label, passed=False, exit_code=-1, output_tail="pytest timed out")
        text = (out.stdout + out.stderr).strip()
        return CaseCheck(where=label, passed=out.returncode == 0, exit_code=out.returncode, output_tail=text[-3000:])


def describe(signature: Any) -> str:
    """``KeyError @ support_agent.tools:refund_policy: <*>``: type, where, and the message template."""
    kinds = " ← ".join(t.rsplit(".", 1)[-1] for t in signature.exception_types[:3]) or signature.kind
    where = f" @ {signature.frame}" if signature.frame else ""
    return f"{kinds}{where}: {signature.template[:120]}"


def _new_file_diff(path: str, text: str) -> str:
    lines = text.splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def _commit_message(state: HealState) -> str:
    from tracemend.diagnose import commit_message

    assert state.proposal is not None
    text = commit_message(state.proposal).rstrip("\n")
    return text + f"\nRegression case: {state.case_path}\n"


def exit_code(state: HealState) -> int:
    return 0 if state.outcome in ("clean", "healed", "ignored") else 1


def summary(state: HealState) -> dict[str, Any]:
    """The final summary as data (``--json``)."""
    return {
        "outcome": state.outcome,
        "message": state.message,
        "deploy_revision": state.deploy_revision,
        "flagged": state.flagged,
        "finding": state.finding.model_dump(mode="json") if state.finding else None,
        "triage": state.triage.model_dump(mode="json") if state.triage else None,
        "proposal": state.proposal.model_dump(mode="json", exclude={"comparison"}) if state.proposal else None,
        "sandbox_verdict": state.proposal.comparison.verdict if state.proposal and state.proposal.comparison else None,
        "decision": state.decision,
        "applied": state.applied,
        "case_path": state.case_path,
        "check_before": state.check_before.model_dump() if state.check_before else None,
        "check_after": state.check_after.model_dump() if state.check_after else None,
        "model_calls": state.model_calls,
        "tokens": state.tokens,
        "cost": state.cost,
        "scripted": state.scripted,
        "exit_code": exit_code(state),
        "state_file": str(state_path(Path(state.repo))),
    }


__all__ = [
    "STAGES",
    "HealError",
    "HealOptions",
    "HealState",
    "Healer",
    "exit_code",
    "load_state",
    "state_path",
    "summary",
]
