"""The stages of ``tracemend heal``, each calling the stage that does the work and keeping its record:

    analyze → Finding → triage → TriageVerdict → diagnose → Diagnosis (Proposal, Verification)
    → approve → Proposal → apply → lock → RegressionCase → check → CaseCheck before/after

Nothing changes the user's files before a person approved the diff (or ``--yes`` approved a
sandbox-verified fix). Display is the caller's: stages report through a :class:`Reporter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tracemend.errors import CouldNotFinish, HealError, ModelError
from tracemend.heal.outcome import could_not_finish
from tracemend.heal.state import STAGES, HealState, load_state, run_dir, save_state, state_path
from tracemend.records import JudgedFailure, Signature, Trace

if TYPE_CHECKING:
    from tracemend.approval import ApprovalUI
    from tracemend.store import TraceSource


class Reporter(Protocol):
    def start(self, stage: str, what: str) -> None: ...
    # ``ok`` False: the stage ended the run without healing (not approved, not proven...).
    def done(self, stage: str, summary: str, ok: bool = True) -> None: ...
    def skip(self, stage: str, why: str) -> None: ...
    def show(self, stage: str, state: HealState, extra: Any = None) -> None: ...


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
    # Where traces are read: None for the local store at ``db``, else phoenix://… or opik://…
    source: str | None = None

    @property
    def reads_from(self) -> str:
        """The source a run reads, as its saved state records it."""
        return self.source or str(self.db)


def locked_trace(state: HealState) -> Trace:
    """The call to lock: a failing input the sandbox saw the fix fix — never a pre-existing failure, which
    fails with the fix too and so could not prove it."""
    assert state.diagnosis is not None
    comparison = state.proposal.comparison if state.proposal else None
    fixed = {i.source_trace_id for i in comparison.items if i.change == "fixed"} if comparison else set()
    return next((t for t in state.diagnosis.failing if t.trace_id in fixed), state.diagnosis.failing[0])


def describe(signature: Signature) -> str:
    """``KeyError @ support_agent.tools:refund_policy: <*>``: type, where, and the message template."""
    kinds = " ← ".join(t.rsplit(".", 1)[-1] for t in signature.exception_types[:3]) or signature.kind
    where = f" @ {signature.frame}" if signature.frame else ""
    return f"{kinds}{where}: {signature.template[:120]}"


class Healer:
    def __init__(
        self, options: HealOptions, reporter: Reporter, approval_ui: ApprovalUI | None = None
    ) -> None:
        self.opt = options
        self.report = reporter
        self.ui = approval_ui
        self._store: TraceSource | None = None
        # What the source's traces lacked (printed by the CLI after the run).
        self.notes: list[str] = []
        # A saved interrupted run that --no-input set aside to start fresh (the CLI says so).
        self.discarded: HealState | None = None

    # --- plumbing ----------------------------------------------------------------------------------

    def store(self) -> TraceSource:
        """The trace source every stage reads (the local store unless ``--source`` names another)."""
        if self._store is None:
            from tracemend.store import StoreError, open_source

            try:
                self._store = open_source(self.opt.source, db=self.opt.db)
            except StoreError as exc:
                raise HealError(str(exc)) from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            from tracemend.store import source

            self.notes = [n for n in source.notes(self._store) if n not in self.notes] + self.notes
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
        if self.opt.no_input and not resume:
            # CI: a run that stopped (a model outage, a killed job), or a state this version cannot read,
            # never blocks the next one; a saved run is resumed only when asked.
            try:
                previous = None if fresh else load_state(root)
            except HealError:
                previous = None
            if previous is not None and not previous.finished:
                self.discarded, previous = previous, None
        else:
            previous = None if fresh else load_state(root)
        if previous is not None and not previous.finished:
            if not resume:
                raise HealError(
                    f"an interrupted heal run is saved in {state_path(root)} (stopped after "
                    f"{previous.completed[-1] if previous.completed else 'the start'}); "
                    "pass --resume to continue it or --fresh to start over"
                )
            if previous.db != self.opt.reads_from:
                flag = "--source" if "://" in previous.db else "--db"
                raise HealError(
                    f"the saved run read traces from {previous.db}; pass {flag} {previous.db} or --fresh"
                )
            return previous
        if resume:
            raise HealError("there is no interrupted heal run to resume")
        import shutil

        shutil.rmtree(run_dir(root), ignore_errors=True)  # the previous run's log and case-run stores
        return HealState(repo=str(root), db=self.opt.reads_from, head=head, started_at=datetime.now(UTC))

    def run(self, state: HealState) -> HealState:
        from tracemend import llm

        # Every model call of the run — this process, its reruns and its pytest runs, every attempt —
        # is logged in the run's folder: the totals are what the server saw, across resumed runs too.
        log = run_dir(Path(state.repo)) / "usage.jsonl"

        def account() -> None:
            usage = llm.read_usage_log(log)
            state.model_calls = usage.attempts
            state.failed_calls = usage.failed_calls
            state.tokens = usage.prompt_tokens + usage.completion_tokens
            state.cost = usage.cost
            state.calls_by_purpose = dict(usage.by_purpose)
            state.scripted = state.scripted or usage.scripted_calls > 0

        with llm.usage_log(log):
            try:
                for stage in STAGES:
                    if state.finished:
                        break
                    if stage in state.completed:
                        self.report.skip(stage, "done in the saved run")
                        continue
                    try:
                        getattr(self, f"_{stage}")(state)
                    except ModelError as exc:
                        raise CouldNotFinish(could_not_finish(stage, exc, self.opt.no_input)) from None
                    state.completed.append(stage)
                    account()
                    save_state(state)
            finally:
                account()
                save_state(state)
                self.close()
        return state

    def _check_models(self) -> None:
        """Before the first model call: every model the run will use may be called and has its key."""
        from tracemend import llm

        for role in ("triage", "diagnose", "judge"):
            llm.check_model(self.opt.model, role=role)

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
            state.finish("clean", "the deploy shows no significant new or increased failure")
            return
        state.finding = flagged[0]
        more = (
            f" (and {len(flagged) - 1} more; heal takes the most significant first)"
            if len(flagged) > 1
            else ""
        )
        self.report.done(
            "analyze",
            f"{flagged[0].verdict}: {describe(flagged[0].signature)} — {flagged[0].window_count} failing "
            f"traces in the window, {flagged[0].expected:.2f} expected{more}",
        )

    def _triage(self, state: HealState) -> None:
        from tracemend import triage, vcs

        assert state.finding is not None
        self.report.start("triage", "classifying the suspect change and asking for a causal verdict")
        self._check_models()
        try:
            result = triage.triage(
                state.finding, self.store(), vcs.open_repo(self.opt.repo), model=self.opt.model
            )
        except triage.TriageError as exc:
            raise HealError(f"triage cannot run: {exc}") from None
        verdict = result.verdict
        state.triage = verdict
        self.report.show("triage", state, result)
        if not verdict.caused_by_change:
            self.report.done("triage", "not caused by this change")
            state.finish("not_caused", verdict.recommendation or "the suspect change touched no runtime file")
        elif verdict.action == "roll_back" or verdict.decision == "roll_back":
            self.report.done("triage", "roll back advised")
            state.finish("roll_back", verdict.next_command or verdict.recommendation)
        elif verdict.decision == "ignore":
            self.report.done("triage", "the model judged the finding not worth acting on")
            state.finish("ignored", verdict.reasoning)
        else:
            self.report.done(
                "triage", f"{verdict.decision}, confidence {verdict.confidence:.2f}: fix forward"
            )

    def _diagnose(self, state: HealState) -> None:
        from tracemend.diagnose import DiagnoseError, diagnose
        from tracemend.diagnose.request import request_for_finding

        assert state.finding is not None
        self.report.start("diagnose", "reading the trace and the source, proposing and verifying an edit")
        try:
            request = request_for_finding(
                state.finding,
                self.store(),
                self.opt.repo,
                verdict=state.triage,
                passing=self.opt.passing,
                timeout=self.opt.timeout,
            )
            # Traces recorded without our decorator (OpenInference, GenAI) say what failed but not which
            # function to call again: the diagnosis works from the trace alone, unverified.
            rerunnable = any(t.entry_point for t in request.failing)
            result = diagnose(request, model=self.opt.model, verify=rerunnable, raise_model_errors=True)
        except DiagnoseError as exc:
            raise HealError(str(exc)) from None
        state.diagnosis = result
        self.report.show("diagnose", state, result)
        if not rerunnable:
            from tracemend.store.source import NO_ENTRY_POINT

            proposed = "a fix was proposed but not verified" if result.proposal else "no fix proposed"
            self.report.done("diagnose", f"{proposed}: {NO_ENTRY_POINT}")
            if result.proposal is not None:
                state.proposal = result.proposal
                self.report.show("approve", state)
            state.finish("cannot_rerun", f"{NO_ENTRY_POINT}; {proposed} (shown above), nothing was changed")
            return
        if result.proposal is None:
            self.report.done("diagnose", f"no fix proposed ({result.stop.replace('_', ' ')})", ok=False)
            state.finish("no_fix", f"the diagnosing agent stopped: {result.stop.replace('_', ' ')}")
            return
        state.proposal = result.proposal
        comparison = result.proposal.comparison
        verdict = comparison.verdict if comparison else "not rerun"
        apart = f", {len(comparison.pre_existing)} pre-existing failure(s) set apart" if comparison else ""
        self.report.done(
            "diagnose",
            f"proposed an edit to {', '.join(result.proposal.touched_files)}; sandbox: {verdict}{apart}",
            ok=verdict == "fixed",
        )

    def _approve(self, state: HealState) -> None:
        from tracemend.approval import approval_loop, auto_decision

        assert state.diagnosis is not None and state.proposal is not None
        self.report.start("approve", "asking a person")
        decision: str = auto_decision(
            state.proposal, yes=self.opt.yes, no_input=self.opt.no_input, tty=self.opt.tty
        )
        if decision == "ask" and self.ui is not None:
            outcome, proposal = approval_loop(
                state.diagnosis, self.ui, repo=self.opt.repo, timeout=self.opt.timeout
            )
            state.proposal = proposal
            decision = outcome
        else:
            self.report.show("approve", state)
        state.decision = decision
        if decision != "approve":
            verdict = state.proposal.comparison.verdict if state.proposal.comparison else "not rerun"
            why = {
                "refuse": "--no-input"
                if self.opt.no_input
                else f"--yes applies only a sandbox-verified fix (sandbox verdict: {verdict})",
                "no_tty": "no terminal to ask on (use --yes or --no-input)",
                "reject": "rejected",
                "quit": "quit",
            }.get(decision, decision)
            self.report.done("approve", f"not approved: {why}", ok=False)
            state.finish("not_approved", f"nothing was changed ({why})")
            return
        state.approved_by = (
            "approved with --yes (sandbox verdict: fixed)" if self.opt.yes else "approved by a person"
        )
        self.report.done("approve", state.approved_by)

    def _apply(self, state: HealState) -> None:
        from tracemend import vcs
        from tracemend.approval import apply_approved

        assert state.proposal is not None
        self.report.start("apply", "applying the approved diff")
        if self.opt.branch:
            # The case joins the fix on the branch in the lock stage; nothing is committed yet.
            state.applied = {
                "mode": "branch",
                "branch": self.opt.branch,
                "files": state.proposal.touched_files,
            }
            self.report.done("apply", f"fix held for branch {self.opt.branch} (committed with its case)")
            return
        try:
            applied = apply_approved(self.opt.repo, state.proposal)
        except vcs.VcsError as exc:
            raise HealError(f"could not apply the approved fix: {exc}") from None
        state.applied = {
            "mode": applied.mode,
            "summary": applied.summary,
            "undo": applied.undo,
            "files": applied.files,
        }
        self.report.done("apply", applied.summary)

    def _lock(self, state: HealState) -> None:
        from tracemend.assertions.case import case_filename, dump_case, write_case
        from tracemend.assertions.lock import case_from_trace

        assert state.finding is not None and state.diagnosis is not None and state.proposal is not None
        self.report.start("lock", "writing the regression case")
        if not state.diagnosis.failing:
            raise HealError("the diagnosis worked from no failing trace: there is no call to lock")
        trace = locked_trace(state)
        case = case_from_trace(
            trace, finding=state.finding, proposal=state.proposal, judged=self._judged(state, trace)
        )
        state.case = case
        rel = f"{self.opt.regress_dir}/{case_filename(case)}"
        state.case_path = rel
        if self.opt.branch:
            self._commit_fix_and_case(state, rel, dump_case(case))
            self.report.done("lock", f"{rel} committed with the fix on {self.opt.branch}")
            return
        write_case(case, self.opt.repo / self.opt.regress_dir, overwrite=True)
        self.report.done(
            "lock", f"wrote {rel} ({len(case.assertions)} assertion(s), {len(case.checks)} check(s))"
        )

    def _judged(self, state: HealState, trace: Trace) -> JudgedFailure | None:
        """The judged failure of the locked trace (its rule's assertion becomes the case's), if it is one."""
        from tracemend.diagnose.judged import judged_context

        assert state.finding is not None
        context = judged_context(state.finding, self.store(), [trace], self.opt.repo)
        return context.failure if context is not None else None

    def _commit_fix_and_case(self, state: HealState, rel: str, case_text: str) -> None:
        from tracemend import vcs
        from tracemend.approval import commit_on_branch

        assert self.opt.branch and state.proposal is not None and state.case is not None
        try:
            sha = commit_on_branch(
                self.opt.repo,
                state.proposal,
                self.opt.branch,
                new_files={rel: case_text},
                trailer=f"Regression case: {rel}\n",
                approval=state.approved_by or "approved by a person",
            )
        except vcs.VcsError as exc:
            raise HealError(f"could not commit to {self.opt.branch}: {exc}") from None
        state.applied = {
            **(state.applied or {}),
            "commit": sha,
            "summary": f"committed {sha[:10]} (fix + case) on new branch {self.opt.branch}; your checkout is unchanged",
            "undo": f"git branch -D {self.opt.branch}",
        }

    def _check(self, state: HealState) -> None:
        from tracemend.assertions.case import dump_case
        from tracemend.sandbox.case_check import check_before_after

        assert state.case_path is not None and state.case is not None
        self.report.start("check", "running the new case before the fix (must fail) and after it (must pass)")
        if self.opt.branch:
            case_text = dump_case(state.case)
        else:
            case_text = (self.opt.repo / state.case_path).read_text(encoding="utf-8")
        base = state.proposal.base_revision if state.proposal and state.proposal.base_revision else state.head
        state.check_before, state.check_after = check_before_after(
            self.opt.repo,
            state.case_path,
            case_text,
            base=base,
            after=self.opt.branch,
            env=self.opt.extra_env,
            model=self.opt.model,
            run_dir=run_dir(self.opt.repo),
        )
        self.report.show("check", state)
        before, after = state.check_before, state.check_after
        where = f"on {self.opt.branch}" if self.opt.branch else "in your working tree"
        if not after.passed:
            self.report.done("check", f"the new case fails with the fix ({where})", ok=False)
            state.finish("check_failed", f"the locked case does not pass with the fix {where}; see its output")
            return
        if before.passed:
            self.report.done("check", "the new case passes even before the fix: it proves nothing", ok=False)
            state.finish(
                "unproven",
                f"the fix is applied and {state.case_path} passes with it, but the case also passes without "
                "the fix, so it does not prove the fix: make its assertions or checks catch the failure",
            )
            return
        if self.opt.branch and state.case is not None and state.applied:
            state.case.provenance.fixed_in_commit = state.applied.get("commit")
        self.report.done("check", f"the case fails before the fix and passes with it ({where})")
        state.finish(
            "healed",
            "fixed and proven: the sandbox reran the failing inputs before the change, at head and with "
            "the fix; the locked case fails before the fix and passes with it",
        )
