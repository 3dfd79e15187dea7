"""`tracemend demo`: the whole loop, offline, on the bundled example agent."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from tracemend import demo as steps
from tracemend.cli import render
from tracemend.cli._common import console
from tracemend.cli.quality import print_evaluation
from tracemend.demo import quality
from tracemend.store import Store

SCENARIOS = ("exception", "quality")


def demo(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to create the demo (default: a new temporary folder)."
    ),
    per_hour: float = typer.Option(40.0, "--per-hour", min=1.0, help="Average requests per hour of traffic."),
    seed: int = typer.Option(7, "--seed", help="Seed for the simulated traffic."),
    interactive: bool = typer.Option(
        False, "--interactive", help="Ask for approval in the terminal instead of approving a verified fix."
    ),
    scenario: str = typer.Option(
        "exception",
        "--scenario",
        help="exception: a code change that raises KeyError; quality: a prompt edit that raises nothing, "
        "caught by an online judge.",
    ),
) -> None:
    """Record a week of traffic, deploy a regression, and heal it, offline (the model is scripted).

    The whole loop: analyze, triage, diagnose, approve, apply, lock a regression case and run it.
    ``--scenario quality``: the regression raises nothing; online judging finds it."""
    from tracemend.approval.console import TerminalUI
    from tracemend.cli.heal import RichReporter, print_summary
    from tracemend.heal import Healer, HealOptions, exit_code

    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; choose {' or '.join(SCENARIOS)}")
    started = time.perf_counter()
    root = (directory or Path(tempfile.mkdtemp(prefix="tracemend-demo-"))).resolve()
    if (root / "repo").exists():
        console.print(f"[red]error:[/] {root / 'repo'} already exists; pass an empty --dir")
        raise typer.Exit(2)
    console.rule("[bold]tracemend demo[/] (offline: model answers are scripted)")
    # A spinner in a terminal; in a log, the ✓ line of each step is its progress.
    say = lambda m: console.line(Text("✓ ", style="green"), m)  # noqa: E731
    prepare = quality.prepare_quality if scenario == "quality" else steps.prepare
    with console.status("recording a week of traffic, deploying the regression, recording the window…"):
        world = prepare(root, per_hour=per_hour, seed=seed, say=say)
    repo, db, model = world.repo, world.db, world.model
    if scenario == "quality":
        failing = judge_the_window(world)
    else:
        with Store(db) as store:
            failing = list(
                store.iter_traces(since=world.deploy_time, status="error", newest_first=True, limit=5)
            )
        console.print(render.trace_table(failing))

    console.rule("[bold]tracemend heal[/]")
    options = HealOptions(
        repo=repo,
        db=db,
        model=model,
        yes=not interactive,
        tty=interactive,
        timeout=30.0,
    )
    if not interactive:
        console.print("[dim](demo: a fix the sandbox verifies is approved automatically, as with --yes; "
                      "pass --interactive to be asked)[/]")
    healer = Healer(options, RichReporter(), TerminalUI(console))
    state = healer.run(healer.begin(resume=False, fresh=True))
    if state.case_path:
        case_file = repo / state.case_path
        console.line(Text("\nthe locked regression case", style="bold"), f" ({case_file}):")
        console.code(case_file.read_text(encoding="utf-8"), "yaml")
    # The outcome, the undo command and where to look next end the output: the tail of a log shows them.
    print_summary(state)
    console.rule()
    console.line(f"done in {time.perf_counter() - started:.1f} s. Look around:")
    example = failing[0].trace_id[:12] if failing else "TRACE_ID"
    # Each command on its own line, whole, so it can be copied; what it shows goes on the line above.
    looks = [
        (f"a {'judged ' if scenario == 'quality' else ''}failing trace from the window",
         f"tracemend show {example} --db {db}"),
        ("the finding (exit 1: a regression)", f"tracemend analyze --db {db}"),
        ("the regression and the fix", f"cd {repo} && git log --oneline && git diff"),
    ]
    if state.case_path:
        looks.append(("the locked case", f"cd {repo} && python -m pytest {state.case_path}"))
    for what, command in looks:
        console.line(Text(f"  # {what}", style="dim"))
        console.line(f"  {command}")
    raise typer.Exit(exit_code(state))


def judge_the_window(world: steps.Scenario) -> list[Any]:
    """The quality scenario's online judging (``tracemend evaluate --since 8d`` in the demo repository):
    its report and cost line, then the window's traces the judge failed."""
    console.rule("[bold]tracemend evaluate[/] (online judge: rules in the repository's pyproject.toml)")
    console.line(Text(f"  rule {quality.RULE_NAME}: ", style="bold"), quality.RULE_ASSERTION)
    with console.status("judging the week before the deploy and the hour after it…"):
        evaluation = quality.judge_online(world)
    print_evaluation(evaluation)
    with Store(world.db) as store:
        ids = [row.trace_id for row in store.iter_scores(name=quality.RULE_NAME, verdict="fail")]
        failing = [t for t in (store.get_trace(i) for i in ids) if t and t.start_time >= world.deploy_time]
    failing.sort(key=lambda t: t.start_time, reverse=True)
    console.line("the window's replies the judge failed (nothing raised):")
    console.print(render.trace_table(failing[:5]))
    return failing


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
