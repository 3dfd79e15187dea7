"""`tracemend evaluate` (online judges over sampled traces) and `tracemend feedback` (a person's score).

Exit codes: 0 done (failed judgments are findings for ``analyze``, not errors here), 2 usage errors (no
rules, an unknown rule or trace, a bad score).
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from tracemend.cli._common import DB_OPTION, console, err_console, json_option, parse_time
from tracemend.cli.errors import reports_errors
from tracemend.cli.render import short, when
from tracemend.errors import ConfigError, SelectionError
from tracemend.records import Score
from tracemend.store import Store

VERDICT_STYLE = {"pass": "green", "fail": "red", "unknown": "yellow"}
VERDICTS = ("pass", "fail", "unknown")


def money(value: float) -> str:
    return f"${value:.4f}"


def parse_score_filter(text: str) -> tuple[str | None, str | None]:
    """``NAME``, ``NAME=VERDICT`` or ``*=VERDICT`` (``traces --score``) → (name or None, verdict or None)."""
    name, _, verdict = text.partition("=")
    name, verdict = name.strip(), verdict.strip().lower()
    if verdict and verdict not in VERDICTS:
        raise typer.BadParameter(f"--score {text!r}: the verdict must be pass, fail or unknown")
    if not name:
        raise typer.BadParameter(f"--score {text!r}: give NAME, NAME=VERDICT or *=VERDICT")
    return (None if name == "*" else name), (verdict or None)


def score_lines(scores: list[Score]) -> list[Text]:
    """The scores of one trace (``tracemend show``): a head line per score and its reasoning or reason."""
    lines = []
    for s in scores:
        head = Text("  ")
        head.append(f"{s.verdict:<8}", style=VERDICT_STYLE[s.verdict])
        head.append(f"{s.source} {s.name}", style="bold")
        if s.source == "feedback" and s.value is not None:
            head.append(f" ({s.value:g})")
        if s.span_id:
            head.append(f" span {s.span_id}")
        if s.category:
            head.append(f": {s.category}")
        if s.source == "judge":
            votes = f", votes {sum(s.votes)}/{len(s.votes)} pass" if len(s.votes) > 1 else ""
            scripted = " (scripted)" if s.scripted and not (s.model or "").startswith("scripted:") else ""
            calls = f"{s.model_calls} call(s)" if s.model_calls else "cached"
            head.append(
                f"  [{s.model}{scripted}, {calls}, {money(s.cost)}{votes}, {when(s.created_at)}]", style="dim"
            )
        else:
            head.append(f"  [person, {when(s.created_at)}]", style="dim")
        lines.append(head)
        why = s.error or s.reason
        if why:
            lines.append(Text("          " + short(why, 400)))
    return lines


# --- evaluate -----------------------------------------------------------------------------------------


def rule_lines(report: Any) -> list[str]:
    """One rule's run as short lines (a CI log at 80 columns keeps them whole)."""
    r, today = report, report.today
    limit = r.rule.max_cost_per_day
    lines = [
        f"[bold]{r.rule.name}[/]  {r.candidates} trace(s) without a verdict, {r.sampled} sampled "
        f"(rate {r.rule.sample_rate:g}), {r.judged_traces} judged",
        f"  verdicts  [green]{r.passed} pass[/], "
        + (f"[red]{r.failed} fail[/]" if r.failed else "0 fail")
        + (
            f", [yellow]{r.unknown} unknown[/] (judge failed closed; tried again next run)"
            if r.unknown
            else ""
        ),
        f"  spent     {r.model_calls} model calls, {r.cache_hits} cache hits, {money(r.cost)}"
        + (" (scripted model)" if r.scripted else "")
        + f"; judge {r.model}",
        f"  today     {today.model_calls if today else 0}/{r.rule.daily_calls()} calls, "
        f"{money(today.cost if today else 0.0)}"
        + (f"/{money(limit)}" if limit is not None else " (no cost limit)"),
    ]
    for category, n in sorted(r.categories.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  failed    {n} × {category}")
    if r.errored:
        lines.append(
            f"  [dim]skipped   {r.errored} trace(s) that failed already (an error or a failed status)[/]"
        )
    if r.no_target:
        lines.append(
            f"  [dim]skipped   {r.no_target} trace(s) without a span of kind {', '.join(r.rule.span_kinds)}[/]"
        )
    if r.budget_hit:
        lines.append(
            f"  [yellow]budget    the day's {r.budget_hit} budget is spent: {r.over_budget} sampled trace(s) "
            "wait for tomorrow (max_calls_per_day, max_cost_per_day)[/]"
        )
    return lines


def cost_line(evaluation: Any) -> str:
    """What judging cost: this run, and the rules' spending today (UTC)."""
    scripted = " (scripted model)" if evaluation.scripted else ""
    today = sum(r.today.model_calls for r in evaluation.rules if r.today)
    today_cost = sum(r.today.cost for r in evaluation.rules if r.today)
    return (
        f"cost        {evaluation.model_calls} model calls, {evaluation.cache_hits} cache hits, "
        f"{money(evaluation.cost)}{scripted}; today (UTC) {today} calls, {money(today_cost)} "
        f"across {len(evaluation.rules)} rule(s)"
    )


def print_evaluation(evaluation: Any) -> None:
    for report in evaluation.rules:
        for line in rule_lines(report):
            console.print(line, soft_wrap=True)
    console.print(cost_line(evaluation), soft_wrap=True)


def run_evaluation(
    db: Path | None,
    *,
    since: datetime | None,
    until: datetime | None = None,
    names: list[str] | None = None,
    rules_file: Path | None = None,
    model: str | None = None,
    cache: str | None = "default",
    quiet: bool = False,
) -> Any:
    """Load the rules and judge the period (``evaluate``, and ``watch --evaluate`` at each look)."""
    from tracemend.analyze import evaluate, load_rules, select_rules

    rules = select_rules(load_rules(path=rules_file), names)
    if not rules:
        raise ConfigError(
            "no judging rules: add [[tool.tracemend.rules]] tables (name, assertion) to pyproject.toml "
            "or name a rules file with --rules / rules_file (docs/quality.md)"
        )
    tty = sys.stderr.isatty() and not quiet
    shown: dict[str, int] = {}

    def progress(report: Any) -> None:
        done, total = report.judged_traces, report.sampled
        if status is not None:
            status.update(f"judging {report.rule.name}: {done}/{total} traces")
        elif not quiet and done - shown.get(report.rule.name, 0) >= max(50, total // 10):
            shown[report.rule.name] = done
            err_console.print(f"  {report.rule.name}: judged {done}/{total} traces")

    with Store(db, create=False) as store, err_console.status("judging…") if tty else nullcontext() as status:
        return evaluate(store, rules, since=since, until=until, model=model, cache=cache, progress=progress)


def evaluate_cmd(
    since: str = typer.Option(
        "1h", "--since", help="Judge traces that started since: ISO time or a duration ago."
    ),
    until: str | None = typer.Option(
        None, "--until", help="End time: ISO time or a duration ago (default now)."
    ),
    rule: list[str] = typer.Option(
        [], "--rule", "-r", help="Only this rule (repeatable; default every rule)."
    ),
    rules_file: Path | None = typer.Option(None, "--rules", help="Read the rules from this file instead."),
    model: str | None = typer.Option(None, "--model", help="Judge model for rules that name none."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the judge even for verdicts in the cache."),
    as_json: bool = json_option("Print what was judged and spent as JSON."),
    db: Path | None = DB_OPTION,
) -> None:
    """Judge sampled traces with the project's plain-English rules; verdicts are stored as scores."""
    start = parse_time(since)
    end = parse_time(until) if until else None
    if not as_json:
        console.print(
            f"judging traces from {when(start)} to {when(end or datetime.now(UTC))} UTC", soft_wrap=True
        )
    result = run_evaluation(
        db,
        since=start,
        until=end,
        names=rule,
        rules_file=rules_file,
        model=model,
        cache="no-cache" if no_cache else "default",
        quiet=as_json,
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    print_evaluation(result)


# --- feedback -----------------------------------------------------------------------------------------


def feedback_cmd(
    trace_id: str = typer.Argument(..., help="Trace id or an unambiguous prefix of it."),
    bad: bool = typer.Option(False, "--bad", help="Negative feedback (score 0): a failure for the analyzer."),
    good: bool = typer.Option(False, "--good", help="Positive feedback (score 1)."),
    score: float | None = typer.Option(
        None, "--score", min=0.0, max=1.0, help="A score from 0 (bad) to 1 (good); below 0.5 is negative."
    ),
    name: str = typer.Option("user", "--name", help="The feedback's name (its signature's name)."),
    reason: str | None = typer.Option(None, "--reason", help="Why, in the person's words."),
    category: str | None = typer.Option(
        None, "--category", help="A few words naming the failure (its signature's category)."
    ),
    db: Path | None = DB_OPTION,
) -> None:
    """Record a person's judgment of a trace (stored as a score; negative feedback is a failure)."""
    from tracemend.capture.feedback import feedback_score, recorder_scrub

    given = [x for x in (bad, good, score is not None) if x]
    if len(given) != 1:
        raise ConfigError("give exactly one of --bad, --good or --score")
    value = 0.0 if bad else 1.0 if good else float(score)  # type: ignore[arg-type]
    if not name.strip():
        raise ConfigError("--name must not be empty")
    with Store(db, create=False) as store:
        trace = store.get_trace(trace_id, with_spans=False)
        if trace is None:
            raise SelectionError(f"no trace with id {trace_id!r} in {store.path}")
        record = feedback_score(
            trace.trace_id, value, name=name.strip(), reason=reason, category=category, scrub=recorder_scrub()
        )
        store.add_scores([record])
    word = "negative" if record.failed else "positive"
    console.print(
        f"recorded {word} feedback {record.name!r} ({value:g}) on trace {trace.trace_id}"
        + (f": {record.reason}" if record.reason else ""),
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("evaluate")(reports_errors(evaluate_cmd))
    app.command("feedback")(reports_errors(feedback_cmd))
