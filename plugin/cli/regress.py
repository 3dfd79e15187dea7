"""``tracemend lock`` (write a regression case from a stored trace) and ``tracemend test`` (run the suite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from rich.text import Text

from tracemend.assertions.checks import KINDS
from tracemend.cli._common import DB_OPTION, console, err_console, open_store_or_exit


def lock(
    trace_id: str = typer.Argument(..., help="Trace id (or a unique prefix) of the call to lock in."),
    assertions: list[str] = typer.Option(
        [], "--assert", "-a", help="A plain-English assertion the output must satisfy (repeatable)."
    ),
    checks: list[str] = typer.Option(
        [],
        "--check",
        "-c",
        help="A deterministic check as kind=value (repeatable). Kinds: "
        + "; ".join(f"{kind}: {doc}" for kind, doc in KINDS.items())
        + ".",
    ),
    name: str | None = typer.Option(None, "--name", "-n", help="Case name (default: trace name and id)."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to write the case (default: the `regressions` setting, tests/regressions)."
    ),
    signature: str | None = typer.Option(
        None, "--signature", help="Signature id of the failure this case guards."
    ),
    db: Path | None = DB_OPTION,
) -> None:
    """Write a regression case (YAML) that reruns a stored trace's call and judges its output."""
    from tracemend.assertions.checks import parse_check
    from tracemend.assertions.lock import fixed_in, regressions_dir
    from tracemend.assertions.lock import lock as lock_case
    from tracemend.project import project_root, read_code_version

    if not assertions and not checks:
        err_console.print("[red]error:[/] give at least one --assert or --check")
        raise typer.Exit(2)
    parsed = []
    for text in checks:
        try:
            parsed.append(parse_check(text))
        except (ValueError, OSError) as exc:
            err_console.print(f"[red]error:[/] --check {exc}")
            raise typer.Exit(2) from None
    store = open_store_or_exit(db)
    try:
        trace = store.get_trace(trace_id, with_spans=False)
    except Exception as exc:  # an ambiguous prefix, for instance
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    finally:
        store.close()
    if trace is None:
        err_console.print(f"[red]error:[/] no trace {trace_id!r} in the store")
        raise typer.Exit(1)
    version = read_code_version()
    configured = regressions_dir(project_root()).resolve()
    target = directory if directory is not None else configured
    case, path = lock_case(
        trace,
        target,
        assertions=list(assertions),
        checks=parsed,
        name=name,
        fixed_in_commit=fixed_in(trace, version),
        signature_id=signature,
    )
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    console.line(
        "wrote ", Text(str(shown), style="bold"), f" ({len(case.assertions)} assertion(s), {len(case.checks)} check(s))"
    )
    if case.provenance.fixed_in_commit is None:
        console.line(
            "fixed_in_commit left empty: the trace "
            + ("failed, so the case fails until a fix lands" if trace.status != "ok" else "is not from HEAD"),
            style="dim",
        )
    if path.parent.resolve() == configured:
        console.line("run it: ", Text(f"pytest {shown}", style="bold"), "  or  ", Text("tracemend test", style="bold"))
    else:  # a folder pytest does not collect by default: name it
        folder = shown.parent
        console.line(
            "run it: ",
            Text(f"pytest {shown} --regressions {folder}", style="bold"),
            "  or  ",
            Text(f"tracemend test --dir {folder}", style="bold"),
        )


def test(
    ctx: typer.Context,
    cache_only: bool = typer.Option(False, "--judge-cache-only", help="Only cached verdicts (CI)."),
    no_cache: bool = typer.Option(False, "--judge-no-cache", help="Ignore the verdict cache."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="Judge model id."),
    directory: Path | None = typer.Option(
        None, "--dir", help="Regression folder (default: the `regressions` setting, tests/regressions)."
    ),
) -> None:
    """Run the regression suite: a thin wrapper over pytest (extra arguments go to pytest).

    In a log (not a terminal) each case gets its own line as it finishes (pytest -v).

    Exit codes: 0 every case passed; 1 a case failed; 2 usage errors; 3 the suite could not finish (the
    judge's model failed, or pytest itself stopped)."""
    from tracemend.assertions.lock import regressions_dir
    from tracemend.project import project_root

    folder = directory if directory is not None else regressions_dir(project_root())
    if not folder.is_dir():
        err_console.print(f"[red]error:[/] no regression folder {folder} (write cases with `tracemend lock`)")
        raise typer.Exit(2)
    args = [sys.executable, "-m", "pytest", str(folder), "--regressions", str(folder)]
    if cache_only:
        args.append("--judge-cache-only")
    if no_cache:
        args.append("--judge-no-cache")
    if judge_model:
        args += ["--judge-model", judge_model]
    extra = list(ctx.args)
    if not console.is_terminal and not any(a.startswith(("-q", "-v", "--quiet", "--verbose")) for a in extra):
        # In a log, a line per case as it finishes (pytest's dots only end their line with the file).
        args.append("-v")
    args += extra
    raise typer.Exit(exit_code_of_pytest(subprocess.call(args)))


def exit_code_of_pytest(code: int) -> int:
    """pytest's exit code in tracemend's terms: 1 a failing case; 2 usage (pytest's 4, bad arguments);
    3 could not finish (pytest's 2 interrupted, 3 internal error, and the plugin's 3 when the judge could
    not answer); 5 (nothing collected) stays 5."""
    return {0: 0, 1: 1, 2: 3, 3: 3, 4: 2}.get(code, code)


def register(app: typer.Typer) -> None:
    app.command("lock")(lock)
    app.command("test", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(test)
