"""`tracemend traces`, `tracemend show`, `tracemend status`: look at what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracemend.cli import render
from tracemend.cli._common import (
    DB_OPTION,
    FAILING,
    FAILING_OPTION,
    console,
    json_option,
    limit_option,
    parse_time,
    since_option,
)
from tracemend.cli.errors import reports_errors
from tracemend.errors import SelectionError
from tracemend.store import Store


@reports_errors
def traces(
    failing: bool = FAILING_OPTION,
    since: str | None = since_option("Start time: ISO time or a duration ago (2h, 7d)."),
    until: str | None = typer.Option(None, "--until", help="End time: ISO time or a duration ago."),
    entry: str | None = typer.Option(None, "--entry", help="Only this entry point (module:qualname)."),
    revision: str | None = typer.Option(
        None, "--revision", help="Only this code version (commit or prefix)."
    ),
    score: str | None = typer.Option(
        None, "--score", help="Only traces with this score: NAME, NAME=VERDICT or *=VERDICT (pass, fail, unknown)."
    ),
    limit: int = limit_option(20, "At most this many, newest first."),
    as_json: bool = json_option("One JSON object per line instead of a table."),
    db: Path | None = DB_OPTION,
) -> None:
    """List recorded traces, newest first."""
    from tracemend.cli.quality import parse_score_filter

    scored = parse_score_filter(score) if score else None
    with Store(db, create=False) as store:
        found = list(
            store.iter_traces(
                since=parse_time(since) if since else None,
                until=parse_time(until) if until else None,
                status=FAILING if failing else None,
                entry_point=entry,
                revision=revision,
                score=scored,
                limit=limit,
                newest_first=True,
            )
        )
        empty = not found and not store.count()
    if as_json:
        for trace in found:
            typer.echo(trace.model_dump_json())
    elif empty:
        console.print(f"The store at {store.path} holds no traces yet.")
    elif not found:
        console.print("No traces match.")
    else:
        console.print(render.trace_table(found))


@reports_errors
def show(
    trace_id: str = typer.Argument(..., help="Trace id or an unambiguous prefix of it."),
    as_json: bool = json_option("The full trace record as JSON."),
    db: Path | None = DB_OPTION,
) -> None:
    """Show one trace: span tree, config, error with frames, timings, and its scores."""
    from tracemend.cli.quality import score_lines

    with Store(db, create=False) as store:
        trace = store.get_trace(trace_id)
        if trace is None:
            raise SelectionError(f"no trace with id {trace_id!r} in {store.path}")
        scores = store.scores_of(trace.trace_id)
    if as_json:
        # The trace record, with its scores (judges' verdicts, feedback) under "scores".
        body = trace.model_dump(mode="json")
        body["scores"] = [s.model_dump(mode="json") for s in scores]
        typer.echo(json.dumps(body, indent=2))
    else:
        render.print_trace(console, trace)
        if scores:
            console.print("[bold]scores[/]")
            for line in score_lines(scores):
                console.print(line, soft_wrap=True)


@reports_errors
def status(db: Path | None = DB_OPTION) -> None:
    """Store path and size, trace counts, code versions, and records dropped by writers."""
    with Store(db, create=False) as store:
        counts = store.status_counts()
        span_total = store.span_count()
        time_range = store.time_range()
        versions = store.code_versions()
        writers = store.writer_stats()
    total = sum(counts.values())
    size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*") if p.is_file())
    console.print(f"[bold]store[/]     {store.path}  ({size / 1_048_576:.1f} MiB)")
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    console.print(f"[bold]traces[/]    {total} ({parts}); {span_total} spans")
    if time_range:
        console.print(f"[bold]recorded[/]  {render.when(time_range[0])} → {render.when(time_range[1])}")
    if versions:
        console.print(
            f"[bold]versions[/]  {len(versions)}; newest {versions[-1][0][:10]} ({versions[-1][3]} traces)"
        )
    dropped = sum(w.dropped for w in writers)
    style = "red" if dropped else "green"
    console.print(
        f"[bold]dropped[/]   [{style}]{dropped}[/] records (queue full) across {len(writers)} writer process(es)"
    )
    for w in writers:
        if w.dropped:
            console.print(f"            {w.writer_id}: {w.dropped} dropped, {w.written} written")


def register(app: typer.Typer) -> None:
    app.command("traces")(traces)
    app.command("show")(show)
    app.command("status")(status)
