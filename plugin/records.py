"""The records that flow between the stages of the loop (pydantic v2).

Every stage reads and writes these and nothing else of another stage. Times are timezone-aware UTC
datetimes; ids are lowercase hex (32 digits for traces, 16 for spans, as in OpenTelemetry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SpanKind = Literal["agent", "llm", "tool", "retrieval", "general"]
TraceStatus = Literal["ok", "error", "failed_assertion"]
SPAN_KINDS: tuple[str, ...] = ("agent", "llm", "tool", "retrieval", "general")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- traces -----------------------------------------------------------------------------------------


class Frame(_Record):
    """One stack frame of an error; ``file`` is relative to the project root when it lies inside it."""

    file: str
    line: int
    function: str
    module: str | None = None
    in_app: bool = False


class ErrorInfo(_Record):
    """An exception as data: qualified type, message, frames (outermost first) and its chained cause."""

    type: str
    message: str
    frames: list[Frame] = Field(default_factory=list)
    cause: ErrorInfo | None = None
    # How ``cause`` is chained: "cause" (raise ... from) or "context" (raised while handling).
    cause_kind: Literal["cause", "context"] | None = None

    def chain(self) -> list[ErrorInfo]:
        """This error followed by its causes, outermost first."""
        out: list[ErrorInfo] = []
        err: ErrorInfo | None = self
        while err is not None and len(out) < 32:
            out.append(err)
            err = err.cause
        return out

    def top_in_app_frame(self) -> Frame | None:
        """The innermost frame that belongs to the user's code (where the error surfaced in the app)."""
        for frame in reversed(self.frames):
            if frame.in_app:
                return frame
        return None


class Usage(_Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Span(_Record):
    span_id: str
    trace_id: str
    parent_id: str | None = None
    name: str
    kind: SpanKind = "general"
    start_time: datetime
    end_time: datetime | None = None
    input: Any = None
    output: Any = None
    error: ErrorInfo | None = None
    # model, usage (Usage as dict), cost (USD), metadata and anything set by update_current_span.
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds() * 1000.0


class CodeVersion(_Record):
    commit: str | None = None
    dirty: bool = False
    branch: str | None = None

    @property
    def short(self) -> str:
        if not self.commit:
            return "unknown"
        return self.commit[:10] + ("+dirty" if self.dirty else "")


class Trace(_Record):
    trace_id: str
    # ``module:qualname`` of the root function, importable so later stages can rerun it.
    entry_point: str
    name: str
    project: str = "default"
    environment: str = "development"
    # The root call's arguments bound by parameter name (self/cls left out).
    input: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    status: TraceStatus = "ok"
    error: ErrorInfo | None = None
    start_time: datetime
    end_time: datetime | None = None
    config: dict[str, Any] | None = None
    config_hash: str | None = None
    # ``module:qualname`` of the config's class and the parameter it was passed as (None: set on the
    # decorator), so a rerun can rebuild the same config object, or one with overrides.
    config_class: str | None = None
    config_param: str | None = None
    code_version: CodeVersion = Field(default_factory=CodeVersion)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The conversation (Opik thread, Langfuse session) and the end user the trace served, when the app
    # set them with tracemend.update_current_trace(session_id=..., user_id=...).
    session_id: str | None = None
    user_id: str | None = None
    spans: list[Span] = Field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds() * 1000.0

    def root_span(self) -> Span | None:
        for span in self.spans:
            if span.parent_id is None:
                return span
        return None

    def children(self, span_id: str | None) -> list[Span]:
        return sorted((s for s in self.spans if s.parent_id == span_id), key=lambda s: s.start_time)


# --- analyzer ---------------------------------------------------------------------------------------

# "judged_failure": an online judge failed the trace on a rule; "negative_feedback": a person said it was bad.
SignatureKind = Literal["exception", "failed_assertion", "error_status", "judged_failure", "negative_feedback"]
Verdict = Literal["regression", "new", "noise"]


class Signature(_Record):
    """The stable fingerprint of one kind of failure."""

    signature_id: str
    signature_version: int
    kind: SignatureKind = "exception"
    # Qualified exception types, outermost first, causes included.
    exception_types: list[str] = Field(default_factory=list)
    # ``module:function`` of the top in-app frame (never a line number).
    frame: str | None = None
    template: str
    # The per-message signature ids the corpus pass joined into this group (the id is its oldest member's).
    aliases: list[str] = Field(default_factory=list)
    # Failures that raised nothing: the rule's (or the feedback's) name and the normalised failure category.
    rule: str | None = None
    category: str | None = None


# What a finding's exposures count: every trace, or only the traces judged by its rule (or rated by people).
Exposure = Literal["traces", "judged"]


class Finding(_Record):
    signature: Signature
    baseline_count: int
    baseline_exposure: int
    window_count: int
    window_exposure: int
    expected: float
    p_value: float
    q_value: float
    verdict: Verdict
    example_trace_ids: list[str] = Field(default_factory=list)
    first_revision: str | None = None
    hourly_counts: list[int] = Field(default_factory=list)
    exposure: Exposure = "traces"


# --- scores: judgments of a trace that raise nothing -------------------------------------------------

ScoreSource = Literal["judge", "feedback"]
ScoreVerdict = Literal["pass", "fail", "unknown"]


class Score(_Record):
    """A judgment on a trace: an online judge's verdict on one rule, or a person's feedback. A ``fail`` is a
    failure like an exception (signed from ``name`` and ``category``); ``unknown`` (the judge failed closed:
    an error, an unusable answer) never counts as one."""

    score_id: str
    trace_id: str
    # The span judged, for rules on span kinds; None: the trace's own input and output.
    span_id: str | None = None
    source: ScoreSource
    name: str  # the rule's name (judge) or the feedback's name ("user", "thumbs", ...)
    verdict: ScoreVerdict
    # Feedback: the value given (1 good … 0 bad; below 0.5 is a failure). Judge: 1 pass, 0 fail, None unknown.
    value: float | None = None
    # A few words naming the kind of failure (the judge's answer; feedback when the app gives one).
    category: str | None = None
    reason: str = ""  # the judge's reasoning, or the person's reason
    # Judge only: the rule's assertion text and its digest (a changed rule is judged again), the model,
    # what it cost, the samples and their votes (True = pass), and why it failed closed.
    rule: str | None = None
    rule_key: str | None = None
    model: str | None = None
    model_calls: int = 0
    cache_hits: int = 0
    cost: float = 0.0
    samples: int = 1
    votes: list[bool] = Field(default_factory=list)
    scripted: bool = False
    error: str | None = None
    created_at: datetime

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"


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


# --- regression cases and the judge -----------------------------------------------------------------


class Check(_Record):
    """A deterministic check that needs no model."""

    kind: Literal["raises", "not_raises", "contains", "not_contains", "regex", "equals", "json_schema", "max_latency_ms"]
    value: Any = None


class JudgedFailure(_Record):
    """The judged failure a case was locked from: a rule's failed verdict (or a person's negative feedback)
    on the source trace, and the assertion the case checks for it."""

    source: ScoreSource
    # The rule's name (judge) or the feedback's name.
    name: str
    # The rule's assertion, or the feedback's reason rewritten as an assertion.
    assertion: str
    category: str | None = None
    score_id: str | None = None
    verdict: ScoreVerdict = "fail"
    # The judge model of the verdict (None for feedback).
    model: str | None = None


class Provenance(_Record):
    source_trace_id: str | None = None
    signature_id: str | None = None
    fixed_in_commit: str | None = None
    locked_at: datetime | None = None
    # A failure that raised nothing: the judged failure the case guards against.
    judged: JudgedFailure | None = None


class RegressionCase(_Record):
    name: str
    entry_point: str
    input: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    # How to rebuild the config object for the rerun (see replay.prepare_call); None: a plain dict / none.
    config_class: str | None = None
    config_param: str | None = None
    assertions: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    provenance: Provenance = Field(default_factory=Provenance)
    # pytest marker names added to the collected item (e.g. "slow", "refunds").
    marks: list[str] = Field(default_factory=list)
    # Judge samples for this case (majority vote); None: the suite's setting.
    samples: int | None = Field(default=None, ge=1)


class CaseCheck(_Record):
    """A regression case run under pytest in one tree (before the fix, with it)."""

    where: str
    passed: bool
    exit_code: int
    output_tail: str = ""


class AssertionVerdict(_Record):
    assertion: str
    passed: bool
    reasoning: str = ""
    # One vote per judge sample (True = pass); disagreeing votes make the verdict flaky.
    votes: list[bool] = Field(default_factory=list)
    # Why the verdict failed closed (judge error, unparseable answer, cache miss), if it did.
    error: str | None = None
    cached: bool = False
    # A few words naming the kind of failure, when the judge was asked for one and the verdict failed.
    category: str | None = None


class JudgeVerdict(_Record):
    passed: bool
    assertions: list[AssertionVerdict] = Field(default_factory=list)
    reasoning: str = ""
    model: str
    cached: bool = False
    scripted: bool = False
    flaky: bool = False
    samples: int = 1
    model_calls: int = 0
    cache_hits: int = 0
    cost: float = 0.0
