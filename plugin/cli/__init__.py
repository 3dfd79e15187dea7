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


def build_app():  # -> typer.Typer, imported lazily so `import tracemend` never pays for typer
    import typer

    from tracemend.cli._common import refresh_consoles

    app = typer.Typer(
        callback=refresh_consoles,
        name="tracemend",
        help="Trace LLM agents, find what the last change broke, propose and verify a fix, lock it in.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
    return app


def main() -> None:
    from tracemend.errors import TracemendError

    app = build_app()
    try:
        sys.exit(app(standalone_mode=True))
    except TracemendError as exc:  # a command without reports_errors: the same line and code
        from tracemend.cli.errors import report

        sys.exit(report(exc))
