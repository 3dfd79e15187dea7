"""`tracemend analyze`, `tracemend watch`, `tracemend signatures`: what did the last deploy break?

Exit codes (for CI): 0 nothing flagged, 1 a regression or a new signature was found, 2 usage errors
(bad durations or times, unknown revision, no store).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from tracemend.analyze import DEFAULT_ALPHA as ALPHA
from tracemend.analyze import Analysis, analyze, list_signatures, planned_looks
from tracemend.cli._common import (
    DB_OPTION,
    console,
    json_option,
    limit_option,
    parse_duration,
    parse_time,
    since_option,
)
from tracemend.cli.errors import reports_errors
from tracemend.cli.output import Table
from tracemend.cli.render import plain_table
from tracemend.cli.source_option import SOURCE_OPTION, source_spec, trace_source
from tracemend.errors import CouldNotFinish, StoreError
from tracemend.store import Store

_BARS = " ▁▂▃▄▅▆▇█"
_VERDICT_STYLE = {"regression": "bold red", "new": "bold magenta", "noise": "dim"}


def sparkline(values: list[int], width: int = 24) -> str:
    """Hourly counts as block characters (the last ``width`` hours)."""
    values = values[-width:]
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[0] if v <= 0 else _BARS[max(1, round(v / top * (len(_BARS) - 1)))] for v in values)


def _fmt_p(value: float) -> str:
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _signature_cell(sig, note: str = "") -> Text:  # sig: Signature
    """Exception types @ frame on the first line, the whole message template under it (plain text: a
    template is data, never markup)."""
    cell = Text()
    cell.append(" ← ".join(t.rsplit(".", 1)[-1] for t in sig.exception_types) or sig.kind, style="bold")
    if sig.frame:
        cell.append(f" @ {sig.frame}")
    cell.append(note)
    cell.append("\n" + (sig.template or "(no message)"))
    return cell


def _table(result: Analysis, limit: int) -> Table:
    hours = max(1, round((result.deploy_time - result.baseline_start).total_seconds() / 3600))
    numbers = ("baseline /h", "window", "expected", "p", "q")
    table = plain_table(
        ("verdict", "signature", *numbers, "examples", "last 24h │ window"),
        wrap=("signature",),
        right=numbers,
    )
    for finding in result.findings[:limit]:
        sig = finding.signature
        spark = sparkline(finding.hourly_counts[:hours]) + "│" + sparkline(finding.hourly_counts[hours:], 4)
        note = ""
        if finding.exposure == "judged":
            # A failure that raised nothing: its rate is per trace judged, not per trace recorded.
            note = (
                f" · {finding.window_count} of {finding.window_exposure} judged "
                f"(baseline {finding.baseline_count} of {finding.baseline_exposure})"
            )
        table.add_row(
            Text(finding.verdict, style=_VERDICT_STYLE[finding.verdict]),
            _signature_cell(sig, note),
            f"{finding.baseline_count / max(1, result.baseline_hours):.2f}",
            str(finding.window_count),
            f"{finding.expected:.2f}",
            _fmt_p(finding.p_value),
            _fmt_p(finding.q_value),
            "\n".join(t[:12] for t in finding.example_trace_ids),
            spark,
        )
    return table


def print_analysis(result: Analysis, limit: int) -> None:
    """The analysis as ``tracemend analyze`` prints it (heal prints the same)."""
    rev = result.revision[:10] if result.revision else "—"
    state = "complete" if result.complete else f"{result.window_elapsed.total_seconds() / 60:.0f} min so far"
    console.line(
        "deploy ", Text(rev, style="bold"), f" at {_when(result.deploy_time)} UTC · FDR level {result.alpha:g}"
    )
    console.line(
        f"baseline {_when(result.baseline_start)} → {_when(result.deploy_time)}: {result.baseline_traces:,} traces"
    )
    console.line(f"window   {state}: {result.window_traces:,} traces")
    for note in result.notes:
        console.line(Text("note", style="yellow"), f": {note}")
    if not result.findings:
        console.print("[green]No failing traces in the window.[/]")
        return
    console.print(_table(result, limit))
    if len(result.findings) > limit:
        console.print(f"… {len(result.findings) - limit} more signature(s) (use --limit).")
    flagged = result.flagged
    if flagged:
        console.print(
            f"[bold red]{len(flagged)} signature(s) flagged[/] out of {len(result.findings)} seen in the window."
        )
    else:
        console.print(
            f"[green]Nothing flagged[/]: {len(result.findings)} signature(s) in the window, all within noise."
        )


def _period(baseline: str, window: str, since: str | None, revision: str | None) -> dict[str, Any]:
    """The deploy and its periods as analyze() takes them; bad durations or times are usage errors."""
    return {
        "baseline": parse_duration(baseline),
        "window": parse_duration(window),
        "since": parse_time(since) if since else None,
        "revision": revision,
    }


def _run(source: Any, period: dict[str, Any], alpha: float, canary: bool = False) -> Analysis:
    return analyze(source, **period, alpha=alpha, canary=canary)


def analyze_cmd(
    baseline: str = typer.Option(
        "7d", "--baseline", help="Baseline period before the deploy (e.g. 7d, 48h)."
    ),
    window: str = typer.Option("60m", "--window", help="Window after the deploy (e.g. 60m, 2h)."),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Deploy time: ISO time or a duration ago (default: first trace of the newest revision).",
    ),
    revision: str | None = typer.Option(
        None, "--revision", help="Analyze the deploy of this commit (or prefix)."
    ),
    alpha: float = typer.Option(ALPHA, "--alpha", min=1e-6, max=0.5, help="False discovery rate level."),
    canary: bool = typer.Option(
        False, "--canary", help="The new revision serves part of the window beside older ones: compare them."
    ),
    limit: int = limit_option(30, "Rows to show."),
    as_json: bool = json_option("Print the analysis as JSON."),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """Group failures into signatures and flag those the last deploy made worse (exit 1 if any)."""
    period = _period(baseline, window, since, revision)
    with trace_source(source, db) as traces:
        result = _run(traces, period, alpha, canary)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        print_analysis(result, limit)
    raise typer.Exit(1 if result.flagged else 0)


def watch(
    baseline: str = typer.Option("7d", "--baseline", help="Baseline period before the deploy."),
    window: str = typer.Option("60m", "--window", help="How long to watch after the deploy."),
    since: str | None = typer.Option(
        None, "--since", help="Deploy time (default: first trace of the newest revision)."
    ),
    revision: str | None = typer.Option(
        None, "--revision", help="Watch the deploy of this commit (or prefix)."
    ),
    interval: str = typer.Option("5m", "--interval", help="Time between looks (e.g. 5m, 30s)."),
    max_wait: str | None = typer.Option(
        None, "--max-wait", help="Stop after this long even if the window is not over (e.g. 10s)."
    ),
    alpha: float = typer.Option(
        ALPHA, "--alpha", min=1e-6, max=0.5, help="False discovery rate over all looks."
    ),
    evaluate: bool = typer.Option(
        False, "--evaluate", help="Before each look, judge the window's new traces with the judging rules."
    ),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """Look again every --interval during the window; stop at the first flag (exit 1) or when it ends.

    Exit 3 when the store becomes unreadable during the watch (it could not finish)."""
    step = parse_duration(interval)
    period = _period(baseline, window, since, revision)
    if step <= timedelta(0):
        raise typer.BadParameter("--interval must be positive")
    limit_s = parse_duration(max_wait).total_seconds() if max_wait else None
    if evaluate and source_spec(source, db) is not None:
        raise typer.BadParameter("--evaluate judges traces in the local store; it does not take --source")
    judge = (lambda: _judge_window(db, period)) if evaluate else None
    with trace_source(source, db) as traces:
        _watch(traces, period, step, limit_s, alpha, revision, judge)


def _watch(
    traces: Any,
    period: dict[str, Any],
    step: timedelta,
    limit_s: float | None,
    alpha: float,
    revision: str | None,
    judge: Any = None,
) -> None:
    looks = planned_looks(
        traces, window=period["window"], interval=step, since=period["since"], revision=revision
    )
    per_look = alpha / looks
    started = time.monotonic()
    look = 0
    while True:
        look += 1
        if judge is not None:
            judge()
        try:
            result = _run(traces, period, per_look)
        except StoreError as exc:
            if look == 1:
                raise  # no store to watch: a usage error
            raise CouldNotFinish(
                f"watch could not finish: look {look}/{looks}: {exc}; nothing was flagged before it; check "
                "the store and run watch again"
            ) from None
        flagged = result.flagged
        elapsed_min = result.window_elapsed.total_seconds() / 60
        console.line(
            f"look {look}/{looks}: {elapsed_min:.0f} min into the window, {result.window_traces:,} traces, "
            f"{len(result.findings)} signature(s), {len(flagged)} flagged (level {per_look:.2g} per look)"
        )
        if flagged:
            print_analysis(result, 30)
            raise typer.Exit(1)
        if result.complete or look >= looks:
            console.print("[green]Window over: nothing flagged.[/]")
            raise typer.Exit(0)
        if limit_s is not None and time.monotonic() - started + step.total_seconds() > limit_s:
            console.print("Stopped (--max-wait reached): nothing flagged so far.")
            raise typer.Exit(0)
        _wait(step.total_seconds(), f"look {look + 1}/{looks}")


def _wait(seconds: float, what: str) -> None:
    """Sleep until the next look; a terminal shows a countdown (a log already has the look's line)."""
    if not console.is_terminal:
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    with console.status("") as status:
        while (left := end - time.monotonic()) > 0:
            status.update(f"{what} in {int(left) // 60}:{int(left) % 60:02d} (Ctrl-C stops watching)")
            time.sleep(min(1.0, left))


def _judge_window(db: Path | None, period: dict[str, Any]) -> None:
    """``watch --evaluate``: judge the window's traces not judged yet, within each rule's budget."""
    from tracemend.analyze import find_deploy
    from tracemend.cli.quality import cost_line, run_evaluation

    with Store(db, create=False) as store:
        start = period["since"] or find_deploy(store, period["revision"])[1]
    result = run_evaluation(db, since=start, until=start + period["window"], quiet=True)
    judged = sum(r.judged_traces for r in result.rules)
    failed = sum(r.failed for r in result.rules)
    console.print(f"judged {judged} new trace(s), {failed} failed; " + cost_line(result).split(None, 1)[1])


def signatures(
    since: str | None = since_option("Only failures after this time (ISO or a duration ago)."),
    limit: int = limit_option(50, "Rows to show."),
    as_json: bool = json_option("One JSON object per line."),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """Failure signatures with counts, first/last seen and the first revision that showed them."""
    start = parse_time(since) if since else None
    with trace_source(source, db) as traces:
        rows = list_signatures(traces, since=start)
    if as_json:
        for row in rows[:limit]:
            typer.echo(
                json.dumps(
                    {
                        "signature": row.signature.model_dump(mode="json"),
                        "count": row.count,
                        "first_seen": row.first_seen.isoformat(),
                        "last_seen": row.last_seen.isoformat(),
                        "first_revision": row.first_revision,
                        "last_revision": row.last_revision,
                        "example_trace_ids": row.example_trace_ids,
                        "judged": row.judged,
                    }
                )
            )
        return
    if not rows:
        console.print("No failing traces.")
        return
    columns = ("signature", "type @ frame", "template", "count", "first seen", "last seen", "first revision")
    table = plain_table(columns, wrap=("template", "type @ frame"), right=("count",))
    for row in rows[:limit]:
        sig = row.signature
        table.add_row(
            sig.signature_id[:10],
            Text(" ← ".join(sig.exception_types) + (f" @ {sig.frame}" if sig.frame else "")),
            Text(sig.template or "(no message)"),
            # A judged failure's count is out of the traces its rule (or feedback name) judged.
            str(row.count) + (f" of {row.judged} judged" if row.judged is not None else ""),
            _when(row.first_seen),
            _when(row.last_seen),
            (row.first_revision or "—")[:10],
        )
    console.print(table)
    if len(rows) > limit:
        console.print(f"… {len(rows) - limit} more (use --limit).")


def register(app: typer.Typer) -> None:
    app.command("analyze")(reports_errors(analyze_cmd))
    app.command("watch")(reports_errors(watch))
    app.command("signatures")(reports_errors(signatures))
