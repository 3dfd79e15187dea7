"""`tracemend heal`: the whole loop with a progress line per stage and a final summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from tracemend.cli._common import DB_OPTION, console, err_console, parse_duration, parse_time
from tracemend.cli.output import Column, Table, Verbatim
from tracemend.cli.source_option import SOURCE_OPTION, print_notes, source_spec
from tracemend.store import resolve_db_path

STAGE_TITLES = {
    "analyze": "1/7 analyze",
    "triage": "2/7 triage",
    "diagnose": "3/7 diagnose",
    "approve": "4/7 approve",
    "apply": "5/7 apply",
    "lock": "6/7 lock",
    "check": "7/7 check",
}


class RichReporter:
    """Prints each stage as it starts and ends, with a spinner while it works."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._status: Any = None

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def start(self, stage: str, what: str) -> None:
        self._stop()
        console.line(Text(f"▶ {STAGE_TITLES[stage]}", style="bold cyan"), f"  {what}")
        if stage not in ("approve",) and console.is_terminal:
            self._status = console.status(f"{stage}…")
            self._status.start()

    def done(self, stage: str, summary: str, ok: bool = True) -> None:
        self._stop()
        console.line(f"  {'✓' if ok else '✗'} {summary}", style="green" if ok else "yellow")

    def skip(self, stage: str, why: str) -> None:
        self._stop()
        console.line(f"▶ {STAGE_TITLES[stage]}  skipped: {why}", style="dim")

    def show(self, stage: str, state: Any, extra: Any = None) -> None:
        self._stop()
        if self.quiet:
            return
        if stage == "analyze" and extra is not None:
            from tracemend.cli.analyze import print_analysis

            print_analysis(extra, 5)
        elif stage == "triage" and extra is not None:
            from tracemend.cli.diagnose import render_triage

            render_triage(extra)
        elif stage == "diagnose" and extra is not None:
            from tracemend.approval.console import clean

            for line in extra.log:
                console.line(clean("  · " + line), style="dim")
        elif stage == "approve" and state.proposal is not None:
            from tracemend.cli.diagnose import render_proposal

            render_proposal(state.proposal)
        elif stage == "check":
            for check in (state.check_before, state.check_after):
                if check is None:
                    continue
                mark = Text("passes", style="green") if check.passed else Text("fails", style="red")
                console.line(f"  case {check.where}: ", mark, f" (pytest exit {check.exit_code})")
                tail = [ln for ln in check.output_tail.splitlines() if ln.strip()][-6:]
                for line in tail:
                    console.line("    " + line, style="dim")


def print_summary(state: Any) -> None:
    """The run's outcome as "key  value" lines under a rule; commands (undo, run it) are verbatim lines
    to copy, never wrapped or boxed."""
    from tracemend.heal import describe, exit_code, state_path

    code = exit_code(state)
    grid = Table(Column("", nowrap=True, style="bold"), Column(""), show_header=False)
    outcome = Text(state.outcome or "interrupted", style="bold green" if code == 0 else "bold red")
    grid.add_row("outcome", outcome + Text(f"  (exit {code})"))
    if state.message:
        grid.add_row("", Text(state.message))
    if state.finding is not None:
        f = state.finding
        grid.add_row("found", Text(f"{f.verdict}: {describe(f.signature)}"))
        grid.add_row(
            "", f"{f.window_count} failing traces in the window vs {f.expected:.2f} expected; q={f.q_value:.2g}"
        )
    if state.triage is not None:
        grid.add_row("triage", f"{state.triage.decision} ({state.triage.confidence:.0%}), {state.triage.action or '—'}")
    if state.proposal is not None:
        verdict = state.proposal.comparison.verdict if state.proposal.comparison else "not rerun"
        grid.add_row("changed", Text(f"{', '.join(state.proposal.touched_files)} (sandbox: {verdict})"))
        if state.proposal.comparison is not None:
            grid.add_row("sandbox", Text(sandbox_line(state.proposal.comparison)))
    if state.applied:
        grid.add_row("applied", Text(state.applied.get("summary", "")))
        if state.applied.get("undo"):
            grid.add_row("undo", Verbatim(state.applied["undo"]))
    if state.case_path:
        grid.add_row("locked", Verbatim(state.case_path))
        grid.add_row("run it", Verbatim(pytest_command(state)))
        grid.add_row("", "(or: tracemend test)")
    if state.check_before is not None and state.check_after is not None:
        before = "fails" if not state.check_before.passed else "passes"
        after = "passes" if state.check_after.passed else "fails"
        grid.add_row("proof", f"the case {before} before the fix and {after} with it")
    spent = f"${state.cost:.4f}" + (" (scripted model)" if state.scripted else "")
    purposes = ", ".join(f"{k} {v}" for k, v in sorted(state.calls_by_purpose.items()))
    failed = f", {state.failed_calls} failed" if state.failed_calls else ""
    grid.add_row(
        "cost",
        f"{state.model_calls} model requests{failed}"
        + (f" ({purposes})" if purposes else "")
        + f", {state.tokens} tokens, {spent}",
    )
    grid.add_row("state", Verbatim(str(state_path(Path(state.repo)))))
    console.rule("[bold]tracemend heal: summary[/]")
    console.print(grid)


def sandbox_line(comparison: Any) -> str:
    """``3 regression input(s), 3 fixed; 2 pre-existing failure(s) set apart``."""
    regression = comparison.regression
    fixed = sum(item.change == "fixed" for item in regression)
    text = f"{len(regression)} regression input(s), {fixed} fixed"
    if comparison.three_way:
        text += f"; {len(comparison.pre_existing)} pre-existing failure(s) set apart"
    if comparison.judged_by:
        from tracemend.approval.console import judged_rates

        return text + f"; {judged_rates(comparison)}"
    if comparison.runs > 1:
        text += f"; up to {comparison.runs} runs per input"
    return text


def pytest_command(state: Any) -> str:
    """The command that runs the locked case as it is, wherever its folder is."""
    from tracemend import settings

    folder = str(Path(state.case_path).parent)
    configured = str(settings.get("regressions", root=Path(state.repo))).strip("/")
    extra = "" if folder == configured else f" --regressions {folder}"
    return f"pytest {state.case_path}{extra}"


def heal(
    baseline: str = typer.Option("7d", "--baseline", help="Baseline before the deploy (e.g. 7d)."),
    window: str = typer.Option("60m", "--window", help="Window after the deploy (e.g. 60m)."),
    since: str | None = typer.Option(None, "--since", help="Deploy time (ISO or a duration ago); default: first trace of the newest code version."),
    revision: str | None = typer.Option(None, "--revision", help="Analyze the deploy of this commit (or prefix)."),
    model: str | None = typer.Option(None, "--model", help="Model for triage, diagnosis and the judge (litellm id or scripted:<file>)."),
    yes: bool = typer.Option(False, "--yes", help="Approve without asking when the sandbox verdict is 'fixed'."),
    no_input: bool = typer.Option(False, "--no-input", help="Never ask: print the proposal and exit 1 (CI)."),
    branch: str | None = typer.Option(None, "--branch", help="Commit the fix and its case on this new branch instead of the working tree."),
    repo: Path = typer.Option(Path("."), "--repo", help="The repository to heal."),
    regress_dir: str | None = typer.Option(None, "--regressions", help="Folder for the regression case, relative to the repository (default: the `regressions` setting, tests/regressions)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds per sandbox rerun."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its saved state."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard an interrupted run's state and start over."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON (progress goes to stderr)."),
    db: Path | None = DB_OPTION,
    source: str | None = SOURCE_OPTION,
) -> None:
    """The whole loop: analyze → triage → diagnose → approve → apply → lock → check.

    Exit codes: 0 nothing to heal, or healed and proven (the new case fails before the fix and passes
    with it); 1 a flagged finding was left unhealed (not caused by the change, roll back advised, no
    verified fix, not approved, --no-input, a case that proves nothing); 2 usage errors; 3 a model or the
    infrastructure failed and the run could not finish.
    """
    from tracemend import settings
    from tracemend.errors import CouldNotFinish
    from tracemend.heal import Healer, HealError, HealOptions, exit_code, summary

    if yes and no_input:
        err_console.print("[red]error:[/] --yes and --no-input exclude each other")
        raise typer.Exit(2)
    if resume and fresh:
        err_console.print("[red]error:[/] --resume and --fresh exclude each other")
        raise typer.Exit(2)
    options = HealOptions(
        repo=repo.resolve(),
        db=resolve_db_path(db).resolve(),
        baseline=parse_duration(baseline),
        window=parse_duration(window),
        since=parse_time(since) if since else None,
        revision=revision,
        model=model,
        yes=yes,
        no_input=no_input,
        branch=branch,
        regress_dir=(regress_dir or str(settings.get("regressions", root=repo.resolve()))).strip("/"),
        timeout=timeout,
        tty=sys.stdin.isatty() and sys.stdout.isatty(),
        source=source_spec(source, db),
    )
    if as_json:
        console.file = sys.stderr
    from tracemend.approval.console import TerminalUI

    healer = Healer(options, RichReporter(), TerminalUI(console))
    try:
        state = healer.begin(resume=resume, fresh=fresh)
        if healer.discarded is not None:
            err_console.print(
                "[yellow]note:[/] an interrupted run (stopped after "
                f"{healer.discarded.completed[-1] if healer.discarded.completed else 'the start'}) was set "
                "aside: --no-input starts afresh (continue it with --resume instead)",
                soft_wrap=True,
            )
        state = healer.run(state)
    except CouldNotFinish as exc:
        err_console.print(Text.assemble(("error:", "red"), f" {exc}"), soft_wrap=True)
        raise typer.Exit(3) from None
    except HealError as exc:
        err_console.print(Text.assemble(("error:", "red"), f" {exc}"), soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("\n[yellow]interrupted:[/] the state is saved; continue with tracemend heal --resume")
        raise typer.Exit(130) from None
    if as_json:
        sys.stdout.write(json.dumps(summary(state), indent=2) + "\n")
    else:
        print_summary(state)
    print_notes(healer)
    raise typer.Exit(exit_code(state))


def register(app: typer.Typer) -> None:
    app.command("heal")(heal)
