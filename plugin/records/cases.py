"""Records of regression cases and the judge: checks, provenance, the case itself, and verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tracemend.records.base import Record as _Record
from tracemend.records.traces import ScoreSource, ScoreVerdict

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
