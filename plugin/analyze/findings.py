"""Trace source → signatures → gate → findings: did the last deploy break something?

One streaming pass over the failing traces of the baseline and the window builds, per signature,
hourly counts of distinct failing traces, a window count, example trace ids and the first revision
that showed it; exposure (traces per hour) comes from an aggregate query. Memory grows with the
number of signatures, never with the number of traces.

The deploy time is the first trace of the newest code version (or of ``revision``, or ``since``); the
baseline is the ``baseline`` before it (7 days by default) and the window the ``window`` after it
(60 minutes by default, cut at ``now`` while it is still running).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tracemend.analyze import judged
from tracemend.analyze.grouping import group_family
from tracemend.analyze.signatures import SIGNATURE_VERSION, signature_from_dict
from tracemend.errors import AnalyzeError
from tracemend.records import Finding, Signature
from tracemend.store import TraceSource, to_us

DEFAULT_BASELINE = timedelta(days=7)
DEFAULT_WINDOW = timedelta(minutes=60)
DEFAULT_LOOKBACK = timedelta(days=30)
# The gate's FDR level (gating.ALPHA), repeated here so the CLI does not import numpy to show its help.
DEFAULT_ALPHA = 0.05
# Example traces per finding: the inputs diagnosis reruns (several, so failures that predate the change
# can be told apart from the regression).
EXAMPLES = 5
HOUR_US = 3_600_000_000


@dataclass
class _Acc:
    """What one signature accumulates during the scan (a few small lists, however many traces)."""

    kind: str
    types: list[str]
    frame: str | None
    template: str
    hourly: list[int]  # baseline hours then window hours
    window: int = 0
    window_canary: int = 0  # window failures of the deploy's revision (canary mode)
    window_slices: list[int] = field(default_factory=list)
    baseline: int = 0
    examples: list[str] = field(default_factory=list)
    baseline_examples: list[str] = field(default_factory=list)
    first_us: int = 0
    last_us: int = 0
    first_revision: str | None = None
    id_kind: str = "exception"
    aliases: set[str] = field(default_factory=set)


@dataclass
class Analysis:
    """The result of one analysis: the periods, exposures, and findings sorted by severity."""

    deploy_time: datetime
    revision: str | None
    # Hours of the baseline that had traffic: the rates' denominator.
    baseline_hours: int
    baseline_start: datetime
    window_end: datetime
    window_elapsed: timedelta
    baseline_traces: int
    window_traces: int
    alpha: float
    findings: list[Finding]
    signatures_seen: int
    complete: bool  # the whole window has passed
    notes: list[str] = field(default_factory=list)  # what could not be gated, and why

    @property
    def flagged(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict != "noise"]

    def to_json(self) -> dict[str, Any]:
        return {
            "deploy_time": self.deploy_time.isoformat(),
            "revision": self.revision,
            "baseline_hours": self.baseline_hours,
            "baseline_start": self.baseline_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "window_elapsed_s": self.window_elapsed.total_seconds(),
            "baseline_traces": self.baseline_traces,
            "window_traces": self.window_traces,
            "alpha": self.alpha,
            "signatures_seen": self.signatures_seen,
            "complete": self.complete,
            "notes": self.notes,
            "findings": [f.model_dump(mode="json") for f in self.findings],
        }


def find_deploy(store: TraceSource, revision: str | None = None) -> tuple[str | None, datetime]:
    """(commit, first trace time) of ``revision`` (a commit or prefix) or of the newest code version."""
    versions = store.first_trace_by_revision()
    if revision:
        matches = [v for v in versions if v[0].startswith(revision.strip().lower())]
        if not matches:
            raise AnalyzeError(f"No traces recorded with code version {revision!r}.")
        if len({m[0] for m in matches}) > 1:
            raise AnalyzeError(f"Revision prefix {revision!r} is ambiguous; give more characters.")
        return matches[0][0], matches[0][1]
    if not versions:
        raise AnalyzeError(
            "No trace carries a code version, so the deploy time is unknown; pass --since or --revision."
        )
    newest = max(versions, key=lambda v: v[1])
    return newest[0], newest[1]


def planned_looks(
    store: TraceSource,
    *,
    window: timedelta,
    interval: timedelta,
    since: datetime | None = None,
    revision: str | None = None,
    now: datetime | None = None,
) -> int:
    """How many looks a watch makes from ``now`` to the end of the window (1 if it is already over).

    The error budget is split evenly over these looks (alpha spending), so looking often does not
    inflate false alarms.
    """
    now = now or datetime.now(UTC)
    deploy = since if since is not None else find_deploy(store, revision)[1]
    remaining = (deploy + window - now).total_seconds()
    if remaining <= 0:
        return 1
    return max(1, math.ceil(remaining / max(interval.total_seconds(), 1e-9)))


def analyze(
    store: TraceSource,
    *,
    baseline: timedelta = DEFAULT_BASELINE,
    window: timedelta = DEFAULT_WINDOW,
    since: datetime | None = None,
    revision: str | None = None,
    alpha: float | None = None,
    now: datetime | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    merge: bool = True,
    canary: bool = False,
) -> Analysis:
    """Findings for the deploy at ``since`` (or of ``revision``, or of the newest code version).

    ``canary``: the new revision serves part of the window's traffic beside older ones; each
    signature's window failures are split by revision and tested conditionally on their total
    (docs/gating.md), which cancels outages and bursts that hit both.
    """
    import numpy as np

    from tracemend.analyze import gating
    if baseline <= timedelta(0) or window <= timedelta(0):
        raise AnalyzeError("--baseline and --window must be positive durations.")
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    now = now or datetime.now(UTC)
    if since is not None:
        deploy = since if since.tzinfo else since.replace(tzinfo=UTC)
        rev = revision
    else:
        rev, deploy = find_deploy(store, revision)
    window_end = deploy + window
    until = min(window_end, now)
    if until <= deploy:
        raise AnalyzeError(
            f"The window starting {deploy.isoformat()} has not begun yet (now {now.isoformat()})."
        )
    elapsed = until - deploy
    # The baseline is whole hours ending at the deploy (hourly counts are the gate's unit).
    n_hours = max(1, math.ceil(baseline.total_seconds() / 3600))
    base_start = deploy - timedelta(hours=n_hours)
    n_win_hours = max(1, math.ceil(elapsed.total_seconds() / 3600))

    traffic = store.count_bins(since=base_start, until=deploy, bin_seconds=3600)
    window_traces = store.count(since=deploy, until=until)
    baseline_traces = sum(traffic)
    fraction = 0.0
    if canary:
        if not rev:
            raise AnalyzeError(
                "Canary mode needs the canary's revision: pass --revision (or let it be found)."
            )
        canary_traces = store.count(since=deploy, until=until, revision=rev)
        fraction = canary_traces / window_traces if window_traces else 0.0
        if not 0.0 < fraction < 1.0:
            raise AnalyzeError(
                f"Canary mode needs window traffic from both {rev[:10]} and older revisions "
                f"({canary_traces} of {window_traces} window traces are from {rev[:10]})."
            )

    if baseline_traces == 0 and window_traces > 0:
        raise AnalyzeError(
            f"No traces in the baseline ({_span(baseline)} before the deploy at {deploy:%Y-%m-%d %H:%M} UTC): "
            "there is nothing to compare the window with. Record traffic of an earlier version first, or "
            "pass a longer --baseline."
        )
    # Rates are over the hours that had traffic: a store that starts an hour before the deploy has a
    # one-hour baseline, not a week of zeros.
    live = [h for h, n in enumerate(traffic) if n > 0]

    accs = _scan(store, base_start, deploy, until, n_hours, n_win_hours, rev if canary else None)
    # First occurrences before the baseline come first: a merged group is keyed by its oldest member.
    _first_revisions(store, accs, base_start - lookback, base_start)
    if merge:
        accs = _merge(accs)

    # Baseline signatures first (same order as their rows), then the never-seen ones.
    keys = sorted(accs, key=lambda k: (accs[k].baseline == 0, k))
    n_base = sum(1 for k in keys if accs[k].baseline > 0)
    hourly = np.array(
        [[accs[k].hourly[h] for h in live] for k in keys[:n_base]], dtype=np.int64
    ).reshape(n_base, len(live))
    counts = np.array([accs[k].window for k in keys], dtype=np.int64)
    if canary:
        canary_counts = np.array([accs[k].window_canary for k in keys], dtype=np.int64)
        result = gating.gate_canary(hourly, canary_counts, counts - canary_counts, fraction, alpha=alpha)
    else:
        result = gating.gate_counts(
            hourly,
            np.asarray([traffic[h] for h in live], dtype=np.float64),
            counts,
            float(window_traces),
            elapsed.total_seconds() / 3600,
            alpha=alpha,
        )
    # Failures that raised nothing, each rule exposed to the traces it judged; one FDR over all of them.
    groups = judged.scan(store, base_start, deploy, until, n_hours, n_win_hours, rev if canary else None, merge)
    hours = elapsed.total_seconds() / 3600
    parts = [g.gate(n_hours, traffic, window_traces, hours, fraction if canary else None) for g in groups]
    result, *parts = gating.joint([result, *parts], alpha)
    verdicts = result.verdicts()
    findings: list[Finding] = [f for g, part in zip(groups, parts, strict=True) for f in g.findings(part)]
    for i, key in enumerate(keys):
        acc = accs[key]
        if acc.window == 0:
            continue
        findings.append(
            Finding(
                signature=signature_record(key, acc.kind, acc.types, acc.frame, acc.template, acc.aliases),
                baseline_count=acc.baseline,
                baseline_exposure=baseline_traces,
                window_count=acc.window,
                window_exposure=window_traces,
                expected=float(result.expected[i]),
                p_value=float(result.p_value[i]),
                q_value=float(result.q_value[i]),
                verdict=verdicts[i],  # type: ignore[arg-type]
                example_trace_ids=acc.examples[:EXAMPLES],
                first_revision=acc.first_revision,
                hourly_counts=acc.hourly,
            )
        )
    order = {"regression": 0, "new": 1, "noise": 2}
    findings.sort(key=lambda f: (order[f.verdict], f.q_value, -f.window_count))
    return Analysis(
        deploy_time=deploy,
        revision=rev,
        baseline_hours=len(live),
        baseline_start=base_start,
        window_end=window_end,
        window_elapsed=elapsed,
        baseline_traces=baseline_traces,
        window_traces=window_traces,
        alpha=alpha,
        findings=findings,
        signatures_seen=len(accs) + sum(len(g.accs) for g in groups),
        complete=now >= window_end,
        notes=[g.note for g in groups if g.note],
    )


def _span(period: timedelta) -> str:
    hours = period.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} h"


SignatureParts = tuple[str, str, list[str], str | None, str, str]


def signature_record(
    sid: str,
    kind: str,
    types: list[str],
    frame: str | None,
    template: str,
    aliases: Iterable[str] = (),
) -> Signature:
    return Signature(
        signature_id=sid,
        signature_version=SIGNATURE_VERSION,
        kind=kind,  # type: ignore[arg-type]
        exception_types=types,
        frame=frame,
        template=template,
        aliases=sorted(set(aliases) - {sid}),
    )


def _signature_of_row(
    memo: dict[tuple[Any, ...], SignatureParts],
    error: str | None,
    status: str,
    entry_point: str,
    metadata: str | None,
    output: str | None,
) -> SignatureParts:
    """(id, kind, types, frame, template, id kind) of one stored failure, memoized on its raw JSON."""
    key = (error, status, entry_point, metadata, output)
    sig = memo.get(key)
    if sig is None:
        err = _parse(error)
        err = err if isinstance(err, dict) and err else None
        sid, kind, types, frame, tmpl = signature_from_dict(
            err, status, entry_point, _parse(metadata) or {}, _parse(output)
        )
        sig = (sid, kind, types, frame, tmpl, "exception" if err is not None else kind)
        if len(memo) > 10_000:  # bounded: distinct stored errors, not traces
            memo.clear()
        memo[key] = sig
    return sig


def signed_failures(
    store: TraceSource, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[str, int, str | None, SignatureParts]]:
    """The failing traces in time order as (trace id, start µs, commit, signature parts)."""
    memo: dict[tuple[Any, ...], SignatureParts] = {}
    for trace_id, t_us, status, entry_point, commit, error, metadata, output in store.iter_failures(
        since=since, until=until
    ):
        yield trace_id, t_us, commit, _signature_of_row(memo, error, status, entry_point, metadata, output)


def _parse(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _scan(
    store: TraceSource,
    base_start: datetime,
    deploy: datetime,
    until: datetime,
    n_hours: int,
    n_win_hours: int,
    canary_revision: str | None = None,
) -> dict[str, _Acc]:
    accs: dict[str, _Acc] = {}
    start_us = to_us(base_start)
    deploy_us = to_us(deploy)
    for trace_id, t_us, commit, parts in signed_failures(store, since=base_start, until=until):
        sid, kind, types, frame, tmpl, id_kind = parts
        acc = accs.get(sid)
        if acc is None:
            acc = accs[sid] = _Acc(kind, types, frame, tmpl, [0] * (n_hours + n_win_hours), first_us=t_us)
            acc.first_revision = commit
            acc.id_kind = id_kind
            acc.aliases = {sid}
        hour = (t_us - start_us) // HOUR_US
        if 0 <= hour < len(acc.hourly):
            acc.hourly[hour] += 1
        if t_us >= deploy_us:
            acc.window += 1
            if canary_revision is not None and commit == canary_revision:
                acc.window_canary += 1
            if len(acc.examples) < EXAMPLES:
                acc.examples.append(trace_id)
        else:
            acc.baseline += 1
            if len(acc.baseline_examples) < EXAMPLES:
                acc.baseline_examples.append(trace_id)
        acc.last_us = t_us
    for acc in accs.values():
        if not acc.examples:
            acc.examples = acc.baseline_examples
    return accs


def _merge(accs: dict[str, _Acc]) -> dict[str, _Acc]:
    """Join the signatures of one family (type chain and frame) that the corpus pass puts in one group.

    The group keeps the id of its oldest member (``grouping.group_family``); the other members' ids
    are its aliases.
    """
    by_family: dict[tuple[str, tuple[str, ...], str | None], dict[str, tuple[str, int]]] = {}
    for key, acc in accs.items():
        by_family.setdefault((acc.id_kind, tuple(acc.types), acc.frame), {})[key] = (acc.template, acc.first_us)
    out: dict[str, _Acc] = {}
    for members in by_family.values():
        for k, (new_key, tmpl) in group_family(members).items():
            acc = accs[k]
            into = out.get(new_key)
            if into is None:
                into = out[new_key] = accs[new_key]
                into.template = tmpl
            if into is acc:
                continue
            into.aliases |= acc.aliases
            into.hourly = [a + b for a, b in zip(into.hourly, acc.hourly, strict=True)]
            into.window += acc.window
            into.window_canary += acc.window_canary
            into.baseline += acc.baseline
            into.examples = (into.examples + acc.examples)[:EXAMPLES]
            into.baseline_examples = (into.baseline_examples + acc.baseline_examples)[:EXAMPLES]
            if acc.first_us < into.first_us:
                into.first_us, into.first_revision = acc.first_us, acc.first_revision
            into.last_us = max(into.last_us, acc.last_us)
    return out


def _first_revisions(store: TraceSource, accs: dict[str, _Acc], since: datetime, until: datetime) -> None:
    """Look back before the baseline for the first revision that showed each signature."""
    if not accs or until <= since:
        return
    alias = {sid: key for key, acc in accs.items() for sid in acc.aliases}
    wanted = set(accs)
    # Ascending time: the first hit of a signature is its oldest occurrence, then it is done.
    for _trace_id, t_us, commit, parts in signed_failures(store, since=since, until=until):
        sid = parts[0]
        key = alias.get(sid)
        if key in wanted:
            accs[key].first_us, accs[key].first_revision = t_us, commit
            wanted.discard(key)
            if not wanted:
                return
