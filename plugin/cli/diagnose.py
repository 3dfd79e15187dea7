"""``tracemend triage`` and ``tracemend diagnose``: rendering and wiring only; the work is in
``tracemend.analyze`` (which finding), ``tracemend.triage``, ``tracemend.diagnose`` and
``tracemend.approval`` (the prompt, in ``approval.console``).

Exit codes: 0 done (triage printed; a fix approved and applied), 1 no fix applied (rejected, quit, not
verified, ``--no-input``, no terminal, budget exhausted), 2 usage errors (bad ids, not a repository), 3
the model could not answer (server errors, timeouts, unusable answers, missing or refused credentials).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.text import Text

from tracemend.approval.console import TerminalUI, clean
from tracemend.cli._common import DB_OPTION, console, err_console
from tracemend.cli.output import Column, Table
from tracemend.cli.source_option import SOURCE_OPTION, open_trace_source
from tracemend.records import Proposal


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _open_repo(path: Path | None):  # -> git.Repo
    from tracemend import vcs

    try:
        return vcs.open_repo(path or Path.cwd())
    except vcs.VcsError as exc:
        raise _fail(str(exc)) from None


# --- rendering ----------------------------------------------------------------------------------------


def render_triage(result) -> None:  # TriageResult
    v = result.verdict
    table = Table(
        Column("file", nowrap=True),
        Column("class", nowrap=True),
        Column("why", style="dim"),
        title=f"changed files {v.base_revision[:10]}..{v.head_revision[:10]}",
    )
    for cf in v.changed_files:
        style = "bold" if cf.file_class == "runtime" else "dim"
        table.add_row(Text(clean(cf.path)), Text(cf.file_class, style=style), Text(clean(cf.reason)))
    console.print(table)
    label = " [dim](scripted model)[/]" if v.scripted else ""
    caused = "[red]caused by this change[/]" if v.caused_by_change else "[green]not caused by this change[/]"
    console.print(
        f"\n[bold]verdict:[/] {caused} — decision [bold]{v.decision}[/], confidence {v.confidence:.0%}{label}"
    )
    console.print(f"[bold]severity:[/] {result.severity.describe()}")
    console.print(Text(clean(v.reasoning)))
    if v.linked_lines:
        console.print("[bold]changed lines on the error's path:[/]")
        for line in v.linked_lines:
            console.line(clean("  " + line))
    console.print(f"\n[bold]recommendation:[/] {escape(v.recommendation)}")
    console.line(Text("next: ", style="bold"), v.next_command)


def render_proposal(proposal: Proposal) -> None:
    """The proposal as the approval prompt shows it (also with --yes, --no-input and in heal)."""
    TerminalUI(console).show_proposal(proposal)


def _newest_finding(store):  # -> Finding | None
    """The most significant flagged finding of the newest deploy, as ``tracemend analyze`` shows it."""
    from tracemend.analyze import analyze

    flagged = analyze(store).flagged
    if flagged:
        err_console.print(f"[dim]triaging the most significant of {len(flagged)} flagged finding(s)[/]")
    return flagged[0] if flagged else None


# --- commands -----------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    @app.command("triage")
    def triage_cmd(
        trace: str = typer.Option(None, "--trace", help="A failing trace: triage its signature."),
        signature: str = typer.Option(None, "--signature", "-s", help="A signature id (or prefix)."),
        finding_file: Path = typer.Option(
            None,
            "--finding",
            help="A Finding, or the output of tracemend analyze --json (pick one with --signature).",
        ),
        wide: bool = typer.Option(False, "--wide", help="Every revision since the signature first appeared."),
        base: str = typer.Option(
            None, "--base", help="Compare from this revision (default: the previous deployed one)."
        ),
        head: str = typer.Option(None, "--head", help="Compare to this revision (default: the finding's)."),
        repo: Path = typer.Option(None, "--repo", help="The repository (default: the current one)."),
        model: str = typer.Option(None, "--model", help="Model id (litellm string or scripted:<file>)."),
        as_json: bool = typer.Option(False, "--json", help="Print the TriageVerdict as JSON."),
        db: Path = DB_OPTION,
        source: str = SOURCE_OPTION,
    ) -> None:
        """Did the last change cause this failure? Recommends fix-forward or roll-back.

        Classifies the changed files, then (if runtime files changed) asks for a causal verdict, and
        recommends fix-forward or roll-back with the exact command.

        Bare, it triages the most significant finding of the newest deploy (as ``tracemend analyze``
        flags it). Exit 3 when the model could not give a verdict."""
        from tracemend import llm
        from tracemend import triage as tri
        from tracemend.analyze.select import select_finding
        from tracemend.errors import AnalyzeError

        if trace and signature:
            raise _fail("give --trace, or --signature, or --finding (optionally with --signature)")
        store = open_trace_source(source, db)
        r = _open_repo(repo)
        try:
            text = None
            if finding_file is not None:
                try:
                    text = finding_file.read_text(encoding="utf-8")
                except OSError as exc:
                    raise _fail(f"{finding_file}: {exc.strerror}") from None
            if trace is None and signature is None and text is None:
                finding = _newest_finding(store)
                if finding is None:
                    console.print("nothing flagged for the newest deploy: nothing to triage")
                    return
            else:
                finding = select_finding(store, trace_id=trace, signature=signature, finding_json=text)
            result = tri.triage(finding, store, r, model=model, wide=wide, base=base, head=head)
        except (AnalyzeError, tri.TriageError) as exc:
            raise _fail(str(exc)) from None
        except llm.ModelError as exc:  # the verdict could not be obtained: fail closed, say why
            raise _fail(f"triage could not finish: {exc}; {exc.hint}", 3) from None
        if as_json:
            print(result.verdict.model_dump_json(indent=2))
        else:
            render_triage(result)

    @app.command("diagnose")
    def diagnose_cmd(
        trace_id: str = typer.Argument(None, help="A failing trace id (or prefix)."),
        signature: str = typer.Option(
            None, "--signature", "-s", help="Diagnose the newest failures of a signature."
        ),
        build_log: Path = typer.Option(
            None, "--build-log", help="A failed build/install log: diagnose it with the last commit's diff."
        ),
        yes: bool = typer.Option(
            False, "--yes", help="Approve without asking when the sandbox verdict is 'fixed'."
        ),
        no_input: bool = typer.Option(
            False, "--no-input", help="Print the proposal and exit 1 without asking (CI)."
        ),
        branch: str = typer.Option(
            None, "--branch", help="Commit the approved fix on this new branch instead of the working tree."
        ),
        model: str = typer.Option(None, "--model", help="Model id (litellm string or scripted:<file>)."),
        repo: Path = typer.Option(None, "--repo", help="The repository (default: the current one)."),
        max_steps: int = typer.Option(16, "--max-steps", min=1, help="Model calls the agent may make."),
        max_tokens: int = typer.Option(120_000, "--max-tokens", min=1000, help="Tokens the agent may use."),
        passing: int = typer.Option(
            3, "--passing", min=0, help="Passing traces rerun to catch collateral breakage."
        ),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds per rerun."),
        db: Path = DB_OPTION,
        source: str = SOURCE_OPTION,
    ) -> None:
        """Propose a fix for a failure, verify it in a sandbox, and ask before applying it."""
        from tracemend import vcs
        from tracemend.analyze.ungated import finding_from_store
        from tracemend.approval import apply_approved, approval_loop, auto_decision
        from tracemend.diagnose import Budget, DiagnoseError, diagnose
        from tracemend.diagnose.request import request_for_build_log, request_for_finding
        from tracemend.errors import AnalyzeError

        if sum(x is not None for x in (trace_id, signature, build_log)) != 1:
            raise _fail("give exactly one of TRACE_ID, --signature, --build-log")
        if yes and no_input:
            raise _fail("--yes and --no-input exclude each other")
        r = _open_repo(repo)
        root = vcs.repo_root(r)
        try:
            if build_log is not None:
                req = request_for_build_log(root, build_log)
            else:
                store = open_trace_source(source, db)
                finding = finding_from_store(store, trace_id=trace_id, signature=signature)
                req = request_for_finding(finding, store, root, passing=passing)
        except (AnalyzeError, DiagnoseError) as exc:
            raise _fail(str(exc)) from None
        req.rerun_timeout = timeout
        what = req.signature_text or "failure"
        err_console.line(
            f"diagnosing {what} ({len(req.failing)} failing, {len(req.passing)} passing traces)…", style="dim"
        )
        from tracemend import llm
        from tracemend.errors import ReplayError
        from tracemend.sandbox import SandboxError

        try:
            with llm.track_usage() as usage:
                llm.check_model(model, role="diagnose")
                result = diagnose(
                    req,
                    model=model,
                    budget=Budget(max_steps=max_steps, max_tokens=max_tokens),
                    raise_model_errors=True,
                )
        except SandboxError as exc:
            raise _fail(f"the sandbox could not run: {exc}", 1) from None
        except ReplayError as exc:
            raise _fail(str(exc), 2) from None
        except llm.ModelError as exc:
            raise _fail(f"diagnose could not finish: {exc}; {exc.hint}", 3) from None
        for line in result.log:
            err_console.line(clean("  · " + line), style="dim")
        err_console.print(
            f"[dim]{usage.attempts} model requests, {usage.prompt_tokens + usage.completion_tokens} tokens, "
            f"${usage.cost:.4f}{' (scripted model)' if result.scripted else ''}[/]"
        )
        proposal = result.proposal
        if proposal is None:
            err_console.print(f"[red]no fix proposed:[/] {result.stop.replace('_', ' ')}")
            raise typer.Exit(1)
        decision = auto_decision(proposal, yes=yes, no_input=no_input, tty=sys.stdin.isatty())
        if decision != "ask":
            render_proposal(proposal)
        if decision == "refuse":
            reason = (
                "--no-input"
                if no_input
                else f"--yes needs the sandbox verdict 'fixed' (got {result.verdict or 'none'})"
            )
            err_console.print(f"[yellow]not applied[/] ({reason}).")
            raise typer.Exit(1)
        if decision == "no_tty":
            err_console.print("[yellow]not applied:[/] no terminal to ask on; use --yes or --no-input.")
            raise typer.Exit(1)
        if decision == "ask":
            outcome, proposal = approval_loop(result, TerminalUI(console), repo=root, timeout=timeout)
            if outcome != "approve":
                console.print(
                    "rejected: nothing was changed." if outcome == "reject" else "quit: nothing was changed."
                )
                raise typer.Exit(1)
        try:
            applied = apply_approved(root, proposal, branch=branch)
        except vcs.VcsError as exc:
            raise _fail(f"could not apply the approved fix: {exc}", 1) from None
        console.line(Text("done: ", style="green"), applied.summary)
        console.line(Text("undo: ", style="bold"), applied.undo)
        if proposal.suggested_assertions and proposal.trace_ids:
            quoted = " ".join("--assert " + shlex.quote(clean(a)) for a in proposal.suggested_assertions[:3])
            if proposal.signature_id:
                quoted += f" --signature {shlex.quote(proposal.signature_id)}"
            console.line(Text("lock it: ", style="bold"), f"tracemend lock {proposal.trace_ids[0][:12]} {quoted}")
