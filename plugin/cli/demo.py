"""`tracemend demo`: the offline demo on the bundled example agent."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from .. import demo as steps
from ..store import Store
from . import render
from ._common import console


def demo(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to create the demo repository (default: a new temporary folder)."
    ),
    per_hour: float = typer.Option(
        20.0, "--per-hour", min=1.0, help="Average requests per hour of baseline traffic."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed for the simulated traffic."),
) -> None:
    """Record a week of traffic from the bundled support agent (offline) and show the traces."""
    started = time.perf_counter()
    root = directory or Path(tempfile.mkdtemp(prefix="tracemend-demo-"))
    repo = root / "repo"
    if repo.exists():
        console.print(f"[red]error:[/] {repo} already exists; pass an empty --dir")
        raise typer.Exit(2)
    db = root / "traces.db"
    console.rule("[bold]tracemend demo[/] (offline)")

    with console.status("creating the example repository…"):
        commit = steps.make_repo(repo)
    console.print(f"[green]✓[/] example agent committed at {commit[:10]} in {repo}")

    now = datetime.now(UTC).replace(microsecond=0)
    times = list(steps.diurnal_times(now - timedelta(days=7), now, per_hour, seed))
    requests = min(len(times), 600)
    with console.status(f"running the agent on {requests} real requests…"):
        steps.run_traffic(repo, root / "raw-baseline.db", requests, seed)
    store = Store(db)
    with console.status("spreading the traffic over the past week…"):
        added = steps.backdate(root / "raw-baseline.db", store, times)
    console.print(
        f"[green]✓[/] ran {requests} real requests through @track; spread as {added} traces over 7 days "
        f"(~{per_hour:g}/hour, diurnal) in {db}"
    )

    counts = store.status_counts()
    console.print(f"  traces by status: {counts}")
    failing = list(store.iter_traces(status="error", newest_first=True, limit=5))
    console.print("\n[bold]recent failing traces[/]  (tracemend traces --failing --db …)")
    console.print(render.trace_table(failing))
    if failing:
        example = store.get_trace(failing[0].trace_id)
        assert example is not None
        console.print(f"\n[bold]one of them[/]  (tracemend show {example.trace_id[:12]} --db …)")
        render.print_trace(console, example)
    store.close()
    console.rule()
    console.print(f"done in {time.perf_counter() - started:.1f} s. Look around:")
    console.print(f"  tracemend traces --db {db}")
    console.print(f"  tracemend status --db {db}")
    console.print(f"  cd {repo} && git log --oneline")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
