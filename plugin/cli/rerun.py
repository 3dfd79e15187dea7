"""``tracemend rerun``: rerun recorded inputs in an isolated worktree, optionally with a patch or config overrides.

Exit codes: 0 the verdict is ``fixed`` (or ``unchanged`` for a what-if over passing inputs); 1 not fixed,
partially fixed, regressed elsewhere, or the patch did not apply; 2 usage errors, unknown traces, a
rejected (hostile or invalid) patch, or a directory that is not a git repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tracemend.cli._common import DB_OPTION, console, err_console
from tracemend.cli.errors import reports_errors
from tracemend.cli.source_option import SOURCE_OPTION, trace_source
from tracemend.errors import ConfigError
from tracemend.records import RerunResult


def register(app: typer.Typer) -> None:
    @app.command("rerun")
    @reports_errors
    def rerun(
        trace_ids: list[str] = typer.Argument(None, help="Trace ids (or unambiguous prefixes) to rerun."),
        signature: str = typer.Option(
            None, "--signature", "-s", help="Rerun failing traces with this signature id."
        ),
        limit: int = typer.Option(20, "--limit", help="At most this many traces of a signature."),
        patch: Path = typer.Option(
            None, "--patch", "-p", help="Unified diff or SEARCH/REPLACE file to apply first ('-': stdin)."
        ),
        config: list[str] = typer.Option(
            None, "--config", "-c", help="Config override key=value (JSON values parsed); repeatable."
        ),
        repo: Path = typer.Option(Path("."), "--repo", help="The git repository the agent's code lives in."),
        rev: str = typer.Option("HEAD", "--rev", help="Revision to check out in the sandbox."),
        passing: int = typer.Option(
            3,
            "--passing",
            help="Also rerun this many recent passing traces per entry point (collateral check).",
        ),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds per rerun before it is killed."),
        parallel: int = typer.Option(2, "--parallel", "-j", help="Reruns at the same time."),
        pass_env: list[str] = typer.Option(
            None,
            "--pass-env",
            help="Environment variable to pass to reruns (e.g. OPENAI_API_KEY); repeatable.",
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Before and after of each input that changed, above the summary."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the verification as JSON."),
        db: Path = DB_OPTION,
        source: str = SOURCE_OPTION,
    ) -> None:
        """Rerun traces in an isolated git worktree and compare before and after.

        Ends in one summary table (one row per input) and the verdict."""
        from tracemend.cli.sandbox_view import render_verification
        from tracemend.sandbox import (
            parse_overrides,
            rerun_recorded,
            sample_passing,
            select_traces,
            verify_change,
        )

        if not trace_ids and not signature:
            raise ConfigError("give trace ids or --signature")
        try:
            overrides = parse_overrides(config or [])
        except ValueError as exc:
            raise ConfigError(f"--config {exc}") from None
        change = _read_change(patch) if patch is not None else None
        with trace_source(source, db) as store:
            failing, chosen = select_traces(store, trace_ids or [], signature=signature, limit=limit)
            sample = sample_passing(store, [*failing, *chosen], per_entry_point=passing) if passing else []
        others = [*chosen, *sample]
        common = dict(rev=rev, timeout=timeout, parallel=parallel, pass_env=pass_env or None)
        what_if = change is None and not overrides
        n = len({t.trace_id for t in [*failing, *others]})
        # Progress on stderr: a bar in a terminal, a line per rerun in a log (stdout stays the report).
        with err_console.progress("rerunning", total=n if what_if else 2 * n) as bar:

            def one_done(r: RerunResult) -> None:
                bar.step(f"{r.source_trace_id[:12]} {r.status}")

            if what_if:
                result = rerun_recorded(repo, failing, others, progress=one_done, **common)
            else:
                result = verify_change(
                    repo, change, failing, others, config_overrides=overrides or None, progress=one_done, **common
                )
        if json_out:
            typer.echo(result.model_dump_json(indent=2))
        else:
            render_verification(result, console, details=verbose)
        if not result.apply.ok or result.comparison is None:
            if not json_out:
                err_console.print("[red]the change did not apply; nothing was rerun[/]")
            raise typer.Exit(1)
        verdict = result.comparison.verdict
        raise typer.Exit(0 if verdict in ("fixed", "unchanged") else 1)


def _read_change(patch: Path) -> str:
    """The change's text from a file, or from stdin for ``-``."""
    try:
        return sys.stdin.read() if str(patch) == "-" else patch.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {patch}: {exc}") from None
