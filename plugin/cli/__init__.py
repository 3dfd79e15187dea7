"""The ``tracemend`` command line: typer commands and rich rendering, with no logic of their own.

Each command group lives in its own module with a ``register(app)`` function; the stages they call do
the work. Exit codes: 0 success, 1 a finding or failure the command exists to report, 2 usage errors;
``tracemend.cli.errors`` maps tracemend's exceptions to them.
"""

from __future__ import annotations

import importlib
import sys

# Command modules, in help order. Each defines register(app: typer.Typer) -> None.
COMMAND_MODULES = ("traces", "analyze", "quality", "regress", "rerun", "diagnose", "heal", "export", "demo")


def version() -> str:
    """The installed distribution's version (the package's own when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("tracemend")
    except PackageNotFoundError:
        from tracemend import __version__

        return __version__


def build_app():  # -> typer.Typer, imported lazily so `import tracemend` never pays for typer
    import typer

    from tracemend.cli._common import refresh_consoles

    def show_version(value: bool) -> None:
        if value:
            typer.echo(f"tracemend {version()}")
            raise typer.Exit()

    def root(
        _version: bool = typer.Option(
            False, "--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        refresh_consoles()

    app = typer.Typer(
        callback=root,
        name="tracemend",
        help="Trace LLM agents, find what the last change broke, propose and verify a fix, lock it in.",
        no_args_is_help=True,
        # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
        add_completion=True,
        pretty_exceptions_enable=False,
        # Help text is reflowed: a docstring's line breaks are not kept in an 80-column terminal or log.
        rich_markup_mode="markdown",
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
    return app


def main() -> None:
    from tracemend.errors import TracemendError

    app = build_app()
    try:
        # prog_name: the same usage line and completion script for `python -m tracemend` as for the script.
        sys.exit(app(standalone_mode=True, prog_name="tracemend"))
    except TracemendError as exc:  # a command without reports_errors: the same line and code
        from tracemend.cli.errors import report

        sys.exit(report(exc))
    except ImportError as exc:  # a library of an extra that is not installed: name the extra
        from tracemend.cli.errors import report
        from tracemend.errors import missing_extra

        missing = missing_extra(exc, f"tracemend {sys.argv[1]}" if len(sys.argv) > 1 else None)
        if missing is None:
            raise
        sys.exit(report(missing))
