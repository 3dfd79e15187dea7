"""Failures that raise nothing: failed judgments and negative feedback as signatures, gated by exposure.

A failed score (an online judge's ``fail`` on a rule, or a person's feedback below 0.5) is a failure with
a signature: the rule's or the feedback's name and the failure category, normalised like an error message
(:func:`category_template`). Each name is a *group* whose exposure is the number of traces it judged per
hour, not the number of traces recorded: rules judge samples, and people rate a few traces, so a rate of
failures per judged trace is what can be compared across a deploy. The gate (:mod:`.gating`) is the one
exceptions go through (same baseline model, same never-seen rule); the analyzer then controls the false
discovery rate over every signature of the deploy at once (:func:`tracemend.analyze.gating.joint`).

Per trace and name the newest score of each target (the trace, or each judged span) counts: a trace is
judged when it has a pass or fail, and fails a signature when one of its targets' newest scores failed with
that category. ``unknown`` scores are neither. Feedback of a name that was never positive in the period (a
"report" button) has no judged exposure to speak of: its exposure is every trace recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracemend.analyze.signatures import SIGNATURE_VERSION, merge_templates, signature_id, template
from tracemend.records import Finding, Signature
from tracemend.store import Store, to_us

if TYPE_CHECKING:
    from tracemend.analyze.gating import GateResult

HOUR_US = 3_600_000_000
EXAMPLES = 3
MAX_CATEGORY_CHARS = 80
JUDGED_TYPE = "tracemend.JudgedFailure"
FEEDBACK_TYPE = "tracemend.NegativeFeedback"
KINDS = {"judge": ("judged_failure", JUDGED_TYPE), "feedback": ("negative_feedback", FEEDBACK_TYPE)}
NO_CATEGORY = {"judge": "unspecified", "feedback": "negative"}


def category_template(category: str | None, source: str = "judge") -> str:
    """A failure category as a signature keys it: lower case, one space between words, no surrounding
    quotes or final punctuation, cut to a few words' length, then parameters masked like messages."""
    text = " ".join((category or "").split()).strip("\"'`.,;:!?- ").lower()
    if not text:
        return NO_CATEGORY.get(source, "unspecified")
    return template(text[:MAX_CATEGORY_CHARS])


def judged_signature(source: str, name: str, category_tmpl: str) -> Signature:
    kind, etype = KINDS[source]
    return Signature(
        signature_id=signature_id(kind, [etype], name, category_tmpl),
        signature_version=SIGNATURE_VERSION,
        kind=kind,  # type: ignore[arg-type]
        exception_types=[etype],
        frame=None,
        template=f"{name}: {category_tmpl}",
        rule=name,
        category=category_tmpl,
    )


@dataclass
class JudgedTrace:
    """One trace's standing on one name: judged, and the categories its targets failed with."""

    trace_id: str
    start_us: int
    commit: str | None
    source: str
    name: str
    failed: set[str]


def judged_traces(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[JudgedTrace]:
    """Per trace (in start order) and name, what the newest scores of its targets say."""
    current: str | None = None
    newest: dict[tuple[str, str, str | None], Any] = {}

    def flush() -> Iterator[JudgedTrace]:
        by_name: dict[tuple[str, str], JudgedTrace] = {}
        for (source, name, _span), row in newest.items():
            item = by_name.get((source, name))
            if item is None:
                item = by_name[(source, name)] = JudgedTrace(
                    row.trace_id, row.start_us, row.code_commit, source, name, set()
                )
            if row.verdict == "fail":
                item.failed.add(category_template(row.category, source))
        yield from by_name.values()

    for row in store.score_rows(since=since, until=until):
        if row.trace_id != current:
            yield from flush()
            newest.clear()
            current = row.trace_id
        newest[(row.source, row.name, row.span_id)] = row  # rows come oldest first: the last one wins
    yield from flush()


@dataclass
class _Acc:
    category: str
    hourly: list[int]
    window: int = 0
    window_canary: int = 0
    baseline: int = 0
    examples: list[str] = field(default_factory=list)
    baseline_examples: list[str] = field(default_factory=list)
    first_revision: str | None = None


@dataclass
class JudgedGroup:
    """One rule's (or feedback name's) judged exposure and its signatures over a baseline and window."""

    source: str
    name: str
    hourly_exposure: list[int]
    window_exposure: int = 0
    window_canary_exposure: int = 0
    any_pass: bool = False
    accs: dict[str, _Acc] = field(default_factory=dict)
    # Filled by gate(): the signature ids in the gate's row order, and what the exposure was.
    order: list[str] = field(default_factory=list)
    exposure_is_traffic: bool = False
    baseline_total: int = 0
    window_total: int = 0
    note: str | None = None

    def _merge(self) -> None:
        if len(self.accs) < 2:
            return
        mapping = merge_templates(a.category for a in self.accs.values())
        merged: dict[str, _Acc] = {}
        for acc in self.accs.values():
            acc.category = mapping.get(acc.category, acc.category)
            into = merged.get(acc.category)
            if into is None:
                merged[acc.category] = acc
                continue
            into.hourly = [a + b for a, b in zip(into.hourly, acc.hourly, strict=True)]
            into.window += acc.window
            into.window_canary += acc.window_canary
            into.baseline += acc.baseline
            into.examples = (into.examples + acc.examples)[:EXAMPLES]
            into.baseline_examples = (into.baseline_examples + acc.baseline_examples)[:EXAMPLES]
            into.first_revision = into.first_revision or acc.first_revision
        self.accs = {judged_signature(self.source, self.name, c).signature_id: a for c, a in merged.items()}

    def gate(
        self,
        n_hours: int,
        traffic: list[int],
        window_traces: int,
        window_hours: float,
        canary_fraction: float | None,
    ) -> GateResult:
        """The gate's verdict on this group's signatures (q-values are set later, over the whole deploy)."""
        import numpy as np

        from tracemend.analyze import gating

        exposure = [float(x) for x in self.hourly_exposure[:n_hours]]
        window_exposure = float(self.window_exposure)
        fraction = canary_fraction
        if self.source == "feedback" and not self.any_pass:
            # Only negative feedback ever given (a "report" button): the traces recorded are the exposure.
            self.exposure_is_traffic = True
            exposure, window_exposure = [float(x) for x in traffic], float(window_traces)
        elif canary_fraction is not None:
            fraction = self.window_canary_exposure / self.window_exposure if self.window_exposure else 0.0
        self.baseline_total, self.window_total = int(sum(exposure)), int(window_exposure)
        self.order = sorted(self.accs, key=lambda k: (self.accs[k].baseline == 0, k))
        n_base = sum(1 for k in self.order if self.accs[k].baseline > 0)
        hourly = np.array([self.accs[k].hourly[:n_hours] for k in self.order[:n_base]], dtype=np.int64)
        hourly = hourly.reshape(n_base, n_hours)
        counts = np.array([self.accs[k].window for k in self.order], dtype=np.int64)
        if sum(exposure) <= 0:
            self.note = f"{self.name}: no judged trace in the baseline, so its failures cannot be gated yet"
            ones = np.ones(len(counts))
            return gating.GateResult(ones * 0.0, ones, ones, ones < 0, np.arange(len(counts)) >= n_base)
        if fraction is not None:
            if not 0.0 < fraction < 1.0:
                self.note = f"{self.name}: the window's judged traces are not from both revisions (canary)"
                ones = np.ones(len(counts))
                return gating.GateResult(ones * 0.0, ones, ones, ones < 0, np.arange(len(counts)) >= n_base)
            canary = np.array([self.accs[k].window_canary for k in self.order], dtype=np.int64)
            return gating.gate_canary(hourly, canary, counts - canary, fraction)
        return gating.gate_counts(hourly, np.asarray(exposure), counts, window_exposure, window_hours)

    def findings(self, result: GateResult) -> list[Finding]:
        """This group's findings from the gate's ``result`` (rows in :attr:`order`), once q-values are set."""
        verdicts = result.verdicts()
        out = []
        for i, key in enumerate(self.order):
            acc = self.accs[key]
            if acc.window == 0:
                continue
            out.append(
                Finding(
                    signature=judged_signature(self.source, self.name, acc.category),
                    baseline_count=acc.baseline,
                    baseline_exposure=self.baseline_total,
                    window_count=acc.window,
                    window_exposure=self.window_total,
                    expected=float(result.expected[i]),
                    p_value=float(result.p_value[i]),
                    q_value=float(result.q_value[i]),
                    verdict=verdicts[i],  # type: ignore[arg-type]
                    example_trace_ids=acc.examples or acc.baseline_examples,
                    first_revision=acc.first_revision,
                    hourly_counts=acc.hourly,
                    exposure="traces" if self.exposure_is_traffic else "judged",
                )
            )
        return out


def scan(
    store: Store,
    base_start: datetime,
    deploy: datetime,
    until: datetime,
    n_hours: int,
    n_win_hours: int,
    canary_revision: str | None = None,
    merge: bool = True,
) -> list[JudgedGroup]:
    """One pass over the scores of the traces of the baseline and window: each name's judged exposure per
    hour and each signature's hourly counts of failing traces."""
    start_us, deploy_us = to_us(base_start), to_us(deploy)
    size = n_hours + n_win_hours
    groups: dict[tuple[str, str], JudgedGroup] = {}
    for item in judged_traces(store, since=base_start, until=until):
        group = groups.get((item.source, item.name))
        if group is None:
            group = groups[(item.source, item.name)] = JudgedGroup(item.source, item.name, [0] * size)
        hour = (item.start_us - start_us) // HOUR_US
        in_window = item.start_us >= deploy_us
        if 0 <= hour < size:
            group.hourly_exposure[hour] += 1
        if in_window:
            group.window_exposure += 1
            group.window_canary_exposure += int(
                canary_revision is not None and item.commit == canary_revision
            )
        group.any_pass = group.any_pass or not item.failed
        for category in item.failed:
            sid = judged_signature(item.source, item.name, category).signature_id
            acc = group.accs.get(sid)
            if acc is None:
                acc = group.accs[sid] = _Acc(category, [0] * size, first_revision=item.commit)
            if 0 <= hour < size:
                acc.hourly[hour] += 1
            if in_window:
                acc.window += 1
                acc.window_canary += int(canary_revision is not None and item.commit == canary_revision)
                if len(acc.examples) < EXAMPLES:
                    acc.examples.append(item.trace_id)
            else:
                acc.baseline += 1
                if len(acc.baseline_examples) < EXAMPLES:
                    acc.baseline_examples.append(item.trace_id)
    out = sorted(groups.values(), key=lambda g: (g.source, g.name))
    if merge:
        for group in out:
            group._merge()
    return out


# --- listing and the ungated finding ------------------------------------------------------------------


@dataclass
class JudgedSummary:
    """One judged signature over a period (``tracemend signatures``)."""

    signature: Signature
    count: int
    judged: int
    first_us: int
    last_us: int
    first_revision: str | None
    last_revision: str | None
    example_trace_ids: list[str]


def list_judged(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> list[JudgedSummary]:
    """Every judged signature with its count of failing traces and the traces its name judged."""
    judged: dict[tuple[str, str], int] = {}
    rows: dict[str, JudgedSummary] = {}
    for item in judged_traces(store, since=since, until=until):
        judged[(item.source, item.name)] = judged.get((item.source, item.name), 0) + 1
        for category in item.failed:
            sig = judged_signature(item.source, item.name, category)
            row = rows.get(sig.signature_id)
            if row is None:
                rows[sig.signature_id] = JudgedSummary(
                    sig, 1, 0, item.start_us, item.start_us, item.commit, item.commit, [item.trace_id]
                )
                continue
            row.count += 1
            row.last_us, row.last_revision = item.start_us, item.commit
            if len(row.example_trace_ids) < EXAMPLES:
                row.example_trace_ids.append(item.trace_id)
    for row in rows.values():
        row.judged = judged.get((_source(row.signature), row.signature.rule or ""), 0)
    return sorted(rows.values(), key=lambda r: (-r.count, r.first_us))


def _source(signature: Signature) -> str:
    return "feedback" if signature.kind == "negative_feedback" else "judge"


def judged_finding(
    store: Store, *, trace_id: str | None = None, signature: str | None = None
) -> Finding | None:
    """An ungated finding for a judged signature (an id prefix) or for the first judged failure of a
    trace (the newest code version's failures are the window, earlier versions the baseline);
    None when nothing judged matches."""
    wanted = signature.strip().lower() if signature else None
    chosen: Signature | None = None
    failures: list[tuple[str, str | None]] = []
    names_judged: dict[str | None, int] = {}
    items = list(judged_traces(store))
    if trace_id is not None:
        mine = [i for i in items if i.trace_id == trace_id and i.failed]
        if not mine:
            return None
        first = mine[0]
        wanted = judged_signature(first.source, first.name, sorted(first.failed)[0]).signature_id
    if wanted is None:
        return None
    for item in items:
        for category in item.failed:
            sig = judged_signature(item.source, item.name, category)
            if sig.signature_id.startswith(wanted if chosen is None else chosen.signature_id):
                chosen = chosen or sig
                failures.append((item.trace_id, item.commit))
    if chosen is None:
        return None
    for item in items:
        if item.source == _source(chosen) and item.name == chosen.rule:
            names_judged[item.commit] = names_judged.get(item.commit, 0) + 1
    head = failures[-1][1]
    window = [t for t, c in failures if c == head]
    baseline = [t for t, c in failures if c != head]
    window_exposure = names_judged.get(head, 0)
    baseline_exposure = sum(n for c, n in names_judged.items() if c != head)
    expected = len(baseline) / baseline_exposure * window_exposure if baseline_exposure else 0.0
    examples = list(reversed(window))
    if trace_id is not None:
        examples = [trace_id, *(t for t in examples if t != trace_id)]
    return Finding(
        signature=chosen,
        baseline_count=len(baseline),
        baseline_exposure=baseline_exposure,
        window_count=len(window),
        window_exposure=window_exposure,
        expected=expected,
        p_value=1.0,
        q_value=1.0,
        verdict="new" if not baseline else "regression",
        example_trace_ids=examples[:5],
        first_revision=next((c for _t, c in failures if c), None),
        exposure="judged",
    )
