"""`tracemend traces`, `tracemend show`, `tracemend status`: look at what the store holds."""

from __future__ import annotations

from pathlib import Path

import typer

from tracemend.cli import render
from tracemend.cli._common import DB_OPTION, console, err_console, open_store_or_exit, parse_time
from tracemend.store import StoreError


def traces(
    failing: bool = typer.Option(
        False, "--failing", help="Only traces that failed (error or failed assertion)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Start time: ISO time or a duration ago (2h, 7d)."
    ),
    until: str | None = typer.Option(None, "--until", help="End time: ISO time or a duration ago."),
    entry: str | None = typer.Option(None, "--entry", help="Only this entry point (module:qualname)."),
    revision: str | None = typer.Option(
        None, "--revision", help="Only this code version (commit or prefix)."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
    db: Path | None = DB_OPTION,
) -> None:
    """List recorded traces, newest first."""
    store = open_store_or_exit(db)
    rows = store.iter_traces(
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        status=("error", "failed_assertion") if failing else None,
        entry_point=entry,
        revision=revision,
        limit=limit,
        newest_first=True,
    )
    if as_json:
        for trace in rows:
            typer.echo(trace.model_dump_json())
        return
    found = list(rows)
    if not found:
        console.print(
            "No traces match." if store.count() else f"The store at {store.path} holds no traces yet."
        )
        return
    console.print(render.trace_table(found))


def show(
    trace_id: str = typer.Argument(..., help="Trace id or an unambiguous prefix of it."),
    as_json: bool = typer.Option(False, "--json", help="The full trace record as JSON."),
    db: Path | None = DB_OPTION,
) -> None:
    """Show one trace: span tree, config, error with frames, timings."""
    store = open_store_or_exit(db)
    try:
        trace = store.get_trace(trace_id)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if trace is None:
        err_console.print(f"[red]error:[/] no trace with id {trace_id!r} in {store.path}")
        raise typer.Exit(2)
    if as_json:
        typer.echo(trace.model_dump_json(indent=2))
        return
    render.print_trace(console, trace)


def status(db: Path | None = DB_OPTION) -> None:
    """Store path and size, trace counts, code versions, and records dropped by writers."""
    store = open_store_or_exit(db)
    counts = store.status_counts()
    total = sum(counts.values())
    size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*") if p.is_file())
    console.print(f"[bold]store[/]     {store.path}  ({size / 1_048_576:.1f} MiB)")
    span_total = store.span_count()
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    console.print(f"[bold]traces[/]    {total} ({parts}); {span_total} spans")
    time_range = store.time_range()
    if time_range:
        console.print(f"[bold]recorded[/]  {render.when(time_range[0])} → {render.when(time_range[1])}")
    versions = store.code_versions()
    if versions:
        console.print(
            f"[bold]versions[/]  {len(versions)}; newest {versions[-1][0][:10]} ({versions[-1][3]} traces)"
        )
    writers = store.writer_stats()
    dropped = sum(w.dropped for w in writers)
    style = "red" if dropped else "green"
    console.print(
        f"[bold]dropped[/]   [{style}]{dropped}[/] records (queue full) across {len(writers)} writer process(es)"
    )
    if dropped:
        for w in writers:
            if w.dropped:
                console.print(f"            {w.writer_id}: {w.dropped} dropped, {w.written} written")


def register(app: typer.Typer) -> None:
    app.command("traces")(traces)
    app.command("show")(show)
    app.command("status")(status)
