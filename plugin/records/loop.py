"""Records of the loop after analysis: triage verdicts, proposals, sandbox reruns and comparisons, and the
diagnosis."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tracemend.records.base import Record as _Record
from tracemend.records.traces import ErrorInfo, Trace

# --- triage and diagnosis ---------------------------------------------------------------------------

FileClass = Literal["runtime", "prompt_config", "test", "docs", "ci"]
Decision = Literal["investigate", "ignore", "roll_back"]
TriageAction = Literal["roll_back", "fix_forward", "none"]


class ChangedFile(_Record):
    path: str
    file_class: FileClass
    reason: str = ""


class TriageVerdict(_Record):
    changed_files: list[ChangedFile] = Field(default_factory=list)
    decision: Decision
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str
    caused_by_change: bool
    attributed_signatures: list[str] = Field(default_factory=list)
    linked_lines: list[str] = Field(default_factory=list)
    recommendation: str = ""
    scripted: bool = False
    # The suspect change (full shas), the recommended action and the exact command to run next.
    base_revision: str | None = None
    head_revision: str | None = None
    action: TriageAction = "none"
    next_command: str = ""
    # The unified diff base..head that triage judged; diagnosis reads it instead of rebuilding it.
    suspect_diff: str = ""


class Proposal(_Record):
    root_cause: str
    diff: str
    touched_files: list[str] = Field(default_factory=list)
    explanation: str = ""
    suggested_assertions: list[str] = Field(default_factory=list)
    scripted: bool = False
    # Where the root cause is ("path:line" or "path:start-end"), what it was diagnosed from, the edits as
    # the model wrote them (SEARCH/REPLACE), and the sandbox's before/after rerun of the failing inputs.
    locations: list[str] = Field(default_factory=list)
    signature_id: str | None = None
    trace_ids: list[str] = Field(default_factory=list)
    edits: str = ""
    base_revision: str | None = None
    comparison: Comparison | None = None


# --- sandbox ----------------------------------------------------------------------------------------


class EditMiss(_Record):
    """An edit that did not apply, with the closest region of the file so the author can correct it."""

    path: str
    search: str
    reason: str
    closest: str | None = None
    closest_start_line: int | None = None


class ApplyResult(_Record):
    ok: bool
    # Unified diff of what was (or, on failure, what would have been) written: for people to read.
    diff: str = ""
    touched: list[str] = Field(default_factory=list)
    misses: list[EditMiss] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)


# "setup_error": the harness could not make the call (entry point not importable, config rejected): a
# problem of the rerun, not a result of the code under test.
RerunStatus = Literal["ok", "error", "failed_assertion", "timeout", "crashed", "setup_error"]
# Three-way comparisons add "pre_existing" (the input already failed before the suspect change) and
# "not_reproduced" (it passed before the change and passes at head too: nothing to fix).
ChangeKind = Literal[
    "fixed", "still_failing", "new_error", "broke", "unchanged_ok", "changed_ok", "pre_existing", "not_reproduced"
]
# "unchanged": no failing input among those rerun and nothing broke (a what-if over passing inputs);
# "not_reproduced": no input passed before the suspect change and failed at head (three-way only).
OverallVerdict = Literal[
    "fixed", "partially_fixed", "not_fixed", "regressed_elsewhere", "unchanged", "not_reproduced"
]


class RerunResult(_Record):
    source_trace_id: str
    status: RerunStatus
    trace: Trace | None = None
    error: ErrorInfo | None = None
    output: Any = None
    duration_ms: float = 0.0
    stderr_tail: str = ""


class Tally(_Record):
    """One input's reruns in one tree: how many ran and how many passed (the comparison's unit is the
    rate, not a single run, because agents are not deterministic)."""

    runs: int = 0
    passed: int = 0

    @property
    def rate(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    @property
    def passes(self) -> bool | None:
        """Whether the input passes in this tree: in at least half of its runs (None: not run)."""
        return None if not self.runs else self.passed * 2 >= self.runs

    def __str__(self) -> str:
        return f"{self.passed}/{self.runs}" if self.runs else "-"


class InputComparison(_Record):
    """One input rerun in each tree. ``before`` is the tree the change is applied to (head, before the
    fix), ``after`` the tree with it; in a three-way comparison ``prior`` is the revision before the
    suspect change. Each side holds one run to show (the first failing one, else the first) and a tally
    of all its runs."""

    source_trace_id: str
    was_failing: bool
    before: RerunResult
    after: RerunResult
    change: ChangeKind
    output_diff: str = ""
    # Unified diff of the span trees (``name [kind]`` lines, indented by depth), empty when equal.
    span_diff: str = ""
    prior: RerunResult | None = None
    prior_runs: Tally | None = None
    before_runs: Tally = Field(default_factory=Tally)
    after_runs: Tally = Field(default_factory=Tally)


class Comparison(_Record):
    items: list[InputComparison] = Field(default_factory=list)
    verdict: OverallVerdict
    # Three-way: the revision before the suspect change (None: a before/after comparison), and the
    # revision the change was applied to.
    prior_revision: str | None = None
    head_revision: str | None = None
    # The most runs any input had in one tree (1 unless outputs varied; see ``verify_runs``).
    runs: int = 1
    # A judged failure's verification: the rule (or feedback name) every output was judged by, and what
    # judging the reruns cost (model calls counted by the judge; cache hits cost none).
    judged_by: str | None = None
    judge_calls: int = 0
    judge_cache_hits: int = 0

    @property
    def three_way(self) -> bool:
        return self.prior_revision is not None

    @property
    def regression(self) -> list[InputComparison]:
        """The inputs the verdict is about: failing ones that are neither pre-existing nor unreproduced."""
        return [i for i in self.items if i.was_failing and i.change not in ("pre_existing", "not_reproduced")]

    @property
    def pre_existing(self) -> list[InputComparison]:
        return [i for i in self.items if i.change == "pre_existing"]


class Verification(_Record):
    """A change applied in a sandbox worktree and the inputs rerun in three trees ("columns"): at the
    revision before the suspect change (``prior_commit``; None for a before/after check), at the revision
    the change is applied to (``base_commit``), and with the change."""

    apply: ApplyResult
    # None when the change did not apply (nothing was rerun).
    comparison: Comparison | None = None
    base_commit: str | None = None
    prior_commit: str | None = None


# --- diagnosis ---------------------------------------------------------------------------------------

DiagnosisStop = Literal["proposed", "step_budget", "token_budget", "edit_retries", "no_answer", "model_error"]


class Diagnosis(_Record):
    """What the diagnosing agent did: why it stopped, its proposal (with the sandbox's before/after
    comparison), the traces it worked from, and what it cost."""

    stop: DiagnosisStop
    proposal: Proposal | None = None
    failing: list[Trace] = Field(default_factory=list)
    passing: list[Trace] = Field(default_factory=list)
    steps: int = 0
    model_calls: int = 0
    tokens: int = 0
    # One line per tool call or feedback, for people.
    log: list[str] = Field(default_factory=list)
    scripted: bool = False

    @property
    def verdict(self) -> OverallVerdict | None:
        comparison = self.proposal.comparison if self.proposal is not None else None
        return comparison.verdict if comparison is not None else None


