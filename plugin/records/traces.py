"""Records of what was recorded and what the analyzer makes of it: traces, spans, errors, signatures,
findings, and the scores judges and people give traces."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tracemend.records.base import Record as _Record

SpanKind = Literal["agent", "llm", "tool", "retrieval", "general"]
TraceStatus = Literal["ok", "error", "failed_assertion"]
SPAN_KINDS: tuple[str, ...] = ("agent", "llm", "tool", "retrieval", "general")



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


