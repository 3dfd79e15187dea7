"""`tracemend traces`, `tracemend show`, `tracemend status`: look at what the store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

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
from tracemend.cli.source_option import SOURCE_OPTION, trace_source
from tracemend.errors import ConfigError, SelectionError
from tracemend.store import Store, where
from tracemend.store.filters import metadata_path

# Totals parse every span body of the traces they cover (about 20-80 µs a span on a laptop-class core), so
# by default they are added up only for this many traces; --totals asks for them whatever the number.
AUTO_TOTALS = 20_000
_SKIPPED = (
    "tokens and cost: not added up for {n:,} traces by default (--totals adds them up, reading every span; "
    "--since or another filter narrows them)"
)


def parse_meta(pairs: list[str]) -> dict[str, str]:
    """``--meta key=value`` options as a dict (a usage error for anything else)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--meta {pair!r}: give key=value")
        try:
            metadata_path(key.strip())
        except ValueError as exc:
            raise ConfigError(f"--meta {exc}") from None
        out[key.strip()] = value
    return out


@reports_errors
def traces(
    failing: bool = FAILING_OPTION,
    since: str | None = since_option("Start time: ISO time or a duration ago (2h, 7d)."),
    until: str | None = typer.Option(None, "--until", help="End time: ISO time or a duration ago."),
    entry: str | None = typer.Option(None, "--entry", help="Only this entry point (module:qualname)."),
    revision: str | None = typer.Option(
        None, "--revision", help="Only this code version (commit or prefix)."
    ),
    session: str | None = typer.Option(
        None, "--session", help="Only this session (update_current_trace(session_id=...))."
    ),
    user: str | None = typer.Option(None, "--user", help="Only this user (update_current_trace(user_id=...))."),
    tags: list[str] = typer.Option([], "--tag", help="Only traces with this tag (repeatable: all of them)."),
    meta: list[str] = typer.Option(
        [], "--meta", help="Only traces whose metadata key holds this value, as key=value (repeatable)."
    ),
    score: str | None = typer.Option(
        None, "--score", help="Only traces with this score: NAME, NAME=VERDICT or *=VERDICT (pass, fail, unknown)."
    ),
    limit: int = limit_option(20, "At most this many, newest first."),
    totals: bool | None = typer.Option(
        None,
        "--totals/--no-totals",
        help=f"Tokens and cost of all matching traces by model and entry point (default: when at most "
        f"{AUTO_TOTALS:,} match; they read every span).",
    ),
    as_json: bool = json_option("One JSON object per line instead of a table."),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """List recorded traces, newest first, with the tokens and cost of all that match."""
    from tracemend.cli.quality import parse_score_filter

    query: dict[str, Any] = {
        "since": parse_time(since) if since else None,
        "until": parse_time(until) if until else None,
        "status": FAILING if failing else None,
        "entry_point": entry,
        "revision": revision,
        "session": session,
        "user": user,
        "tags": tags or None,
        "meta": parse_meta(meta) or None,
        "score": parse_score_filter(score) if score else None,
    }
    with trace_source(source, db) as opened:
        local = getattr(opened, "store", None)  # the local store: the filters and totals below are its own
        if local is None:
            given = [f"--{k}" for k in ("session", "user", "tags", "meta", "score") if query[k]]
            if given:
                raise ConfigError(f"{', '.join(given)}: only the local store filters on these")
            query = {k: v for k, v in query.items() if k not in ("session", "user", "tags", "meta", "score")}
        store = opened
        found = list(store.iter_traces(**query, limit=limit, newest_first=True))
        if as_json:
            for trace in found:
                typer.echo(trace.model_dump_json())
            return
        if not found:
            empty = not store.count()
            console.line(f"The store at {where(store)} holds no traces yet." if empty else "No traces match.")
            return
        matching = store.count(**query)
        usage = local.usage_by_trace([t.trace_id for t in found]) if local is not None else {}
        add_up = local is not None and (totals if totals is not None else matching <= AUTO_TOTALS)
        by_model = local.usage_totals("model", **query) if add_up else []
        by_entry = local.usage_totals("entry_point", **query) if add_up else []
    console.print(render.trace_table(found, usage))
    if matching > len(found):
        console.print(Text(f"{len(found)} of {matching:,} matching traces shown (newest first; see --limit).", style="dim"))
    if add_up:
        what = "the matching trace" if matching == 1 else f"all {matching:,} matching traces"
        render.print_usage(console, by_model, by_entry, what)
    elif totals is None and local is not None:
        console.print(Text(_SKIPPED.format(n=matching), style="dim"))


@reports_errors
def show(
    trace_id: str = typer.Argument(..., help="Trace id or an unambiguous prefix of it."),
    as_json: bool = json_option("The full trace record as JSON."),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """Show one trace: input, config, output, spans (model, tokens, cost, duration), error, and its scores.

    The config is printed once, under the input; durations below a millisecond are in µs."""
    from tracemend.cli.quality import score_lines

    with trace_source(source, db) as store:
        trace = store.get_trace(trace_id)
        if trace is None:
            raise SelectionError(f"no trace with id {trace_id!r} in {where(store)}")
        local = getattr(store, "store", None)  # scores live in the local store
        scores = local.scores_of(trace.trace_id) if local is not None else []
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
def status(
    totals: bool | None = typer.Option(
        None,
        "--totals/--no-totals",
        help=f"Tokens and cost by model and entry point (default: when the store holds at most "
        f"{AUTO_TOTALS:,} traces; they read every span).",
    ),
    db: Path | None = DB_OPTION,
) -> None:
    """Store path and size, trace counts, code versions, records dropped by writers, tokens and cost.

    Tokens and cost are added up by model and by entry point."""
    with Store(db, create=False) as store:
        counts = store.status_counts()
        span_total = store.span_count()
        time_range = store.time_range()
        versions = store.code_versions()
        writers = store.writer_stats()
        add_up = totals if totals is not None else sum(counts.values()) <= AUTO_TOTALS
        by_model = store.usage_totals("model") if add_up else []
        by_entry = store.usage_totals("entry_point") if add_up else []
    total = sum(counts.values())
    size = sum(p.stat().st_size for p in store.path.parent.glob(store.path.name + "*") if p.is_file())
    key = lambda word: Text(f"{word:<10}", style="bold")  # noqa: E731
    console.line(key("store"), f"{store.path}  ({size / 1_048_576:.1f} MiB)")
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    console.line(key("traces"), f"{total} ({parts}); {span_total} spans")
    if time_range:
        console.line(key("recorded"), f"{render.when(time_range[0])} → {render.when(time_range[1])} UTC")
    if versions:
        console.line(key("versions"), f"{len(versions)}; newest {versions[-1][0][:10]} ({versions[-1][3]} traces)")
    dropped = sum(w.dropped for w in writers)
    console.line(
        key("dropped"),
        Text(str(dropped), style="red" if dropped else "green"),
        f" records (queue full) across {len(writers)} writer process(es)",
    )
    for w in writers:
        if w.dropped:
            console.line(f"{'':10}{w.writer_id}: {w.dropped} dropped, {w.written} written")
    if add_up:
        render.print_usage(console, by_model, by_entry, "the store" if total != 1 else "the one trace")
    elif totals is None:
        console.print(Text(_SKIPPED.format(n=total), style="dim"))


def register(app: typer.Typer) -> None:
    app.command("traces")(traces)
    app.command("show")(show)
    app.command("status")(status)
