"""``--source``: the option every reading command shares, and opening the source it names.

Without ``--source`` the ``source`` setting (``TRACEMEND_SOURCE``, ``[tool.tracemend] source``) decides, and
without that the local store at ``--db`` is read; an explicit ``--db`` alone means the local store. What a
remote source's traces lack (no entry point, no code version) is printed as ``note:`` lines on stderr
when the command ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from tracemend.cli._common import err_console

SOURCE_OPTION: Any = typer.Option(
    None,
    "--source",
    help="Read traces from phoenix://HOST:PORT/PROJECT or opik://HOST:PORT/PROJECT "
    "(default: $TRACEMEND_SOURCE, then `source` under tool.tracemend in pyproject.toml, else the local "
    "store at --db).",
)


def source_spec(source: str | None, db: Path | None) -> str | None:
    """The source a command reads: ``--source``, else the local store when ``--db`` is given, else the
    configured one (None: the local store)."""
    from tracemend.store.source import configured_source

    if source or db is not None:
        return source
    return configured_source()


def print_notes(source: Any) -> None:
    from tracemend.store import source as sources

    for line in sources.notes(source):
        err_console.print(Text.assemble(("note:", "yellow"), " ", line), soft_wrap=True)


@contextmanager
def trace_source(source: str | None, db: Path | None) -> Iterator[Any]:
    """The opened trace source (a StoreError on opening exits 2 through ``reports_errors``), closed when
    the block ends. Its notes print when the command ends, after what the command prints."""
    import click

    from tracemend.store import open_source

    opened = open_source(source_spec(source, db), db=db)
    ctx = click.get_current_context(silent=True)
    try:
        yield opened
    finally:
        opened.close()
        if ctx is not None:
            ctx.call_on_close(lambda: print_notes(opened))
        else:
            print_notes(opened)


def open_trace_source(source: str | None, db: Path | None) -> Any:
    """The opened trace source for the running command, closed (and its notes printed) when the command
    ends; an error opening it is reported as ``error: …`` with exit 2, like a missing store."""
    import click

    from tracemend.cli.errors import report
    from tracemend.errors import StoreError
    from tracemend.store import open_source

    try:
        opened = open_source(source_spec(source, db), db=db)
    except StoreError as exc:
        raise typer.Exit(report(exc)) from None
    ctx = click.get_current_context(silent=True)
    if ctx is not None:

        def done() -> None:
            opened.close()
            print_notes(opened)

        ctx.call_on_close(done)
    return opened
