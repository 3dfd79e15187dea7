"""Exit codes in one place: each :mod:`tracemend.errors` class maps to the code the CLI exits with.

The codes: **0** success; **1** the command found what it exists to report (a regression, a fix that did
not fix, a refused export); **2** usage: bad arguments, unknown ids, a missing or corrupt store, not a git
repository, a rejected change, an unreadable case file, a recorded call the harness cannot make again;
**3** the command could not finish the work it was asked to do because a model or the infrastructure failed
(server errors and timeouts after retries, unusable answers, missing or refused credentials): nothing was
found, nothing can be concluded, try again.

An error reaches the user as one line on stderr, ``error: <message>`` (``change rejected: <message>`` for a
:class:`~tracemend.errors.ChangeRejected`), never as a traceback. Two places apply the mapping:

- :func:`reports_errors` wraps a command: a :class:`~tracemend.errors.TracemendError` raised inside it
  becomes the line and the code. Commands carry it so that in-process runs (``build_app()`` or a command
  module's ``register(app)`` under typer's ``CliRunner``) print and exit exactly as the console script does.
- ``tracemend.cli.main`` catches what still escapes a command and does the same, so no command can end in
  a traceback for one of tracemend's own errors.

A command therefore raises instead of printing and exiting: a stage's error propagates untouched; a usage
problem the command finds itself is raised as the matching class (``ConfigError("give trace ids or
--signature")``, ``SelectionError(f"no trace with id {tid!r}")``). Only a message or code that depends on
the command's context is written with :func:`fail`.

How the flow commands adopt it (``diagnose.py``, ``heal.py``, ``regress.py``, ``demo.py``):

1. Put ``@reports_errors`` under ``@app.command(...)`` (or on the function passed to ``app.command``).
2. Delete each ``except <TracemendError subclass>: print "error: {exc}"; raise typer.Exit(2)`` whose code
   is the mapped one: ``TriageError``, ``DiagnoseError``, ``HealError``, ``VcsError`` when opening the
   repository, ``StoreError`` from ``get_trace`` (``regress lock``), and ``open_store_or_exit`` (open the
   ``Store`` directly). Their output and code stay as they are.
3. Keep a local ``except`` only where the context changes the code or the words, and write it as
   ``raise fail(f"...: {exc}", 1) from None``: diagnose's model failure during triage ("triage needs a model
   verdict and did not get one", 1), the sandbox failing during diagnosis ("the sandbox could not run", 1),
   applying the approved fix (1); ``regress lock`` with an unknown trace id exits 1 today, not 2.
4. Usage checks the command makes itself (``--yes`` with ``--no-input``, no ``--assert`` or ``--check``, no
   regression folder, ``demo --dir`` not empty) raise ``ConfigError(message)``: same line, code 2.
5. ``diagnose._fail`` becomes :func:`fail`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.text import Text

from tracemend import errors
from tracemend.cli._common import err_console

__all__ = [
    "EXIT_CODES",
    "EXIT_FOUND",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_USAGE",
    "exit_code",
    "fail",
    "label",
    "report",
    "reports_errors",
]

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3

# Every class of tracemend.errors resolves here through its MRO; the base is the last resort.
EXIT_CODES: dict[type[errors.TracemendError], int] = {
    errors.ConfigError: EXIT_USAGE,
    errors.StoreError: EXIT_USAGE,
    errors.VcsError: EXIT_USAGE,
    errors.ReplayError: EXIT_USAGE,
    errors.ModelError: EXIT_INCOMPLETE,
    errors.CouldNotFinish: EXIT_INCOMPLETE,
    errors.AnalyzeError: EXIT_USAGE,
    errors.TriageError: EXIT_USAGE,
    errors.DiagnoseError: EXIT_USAGE,
    errors.ToolRefused: EXIT_USAGE,
    errors.SandboxError: EXIT_USAGE,
    errors.ChangeRejected: EXIT_USAGE,
    errors.SelectionError: EXIT_USAGE,
    errors.CaseFileError: EXIT_USAGE,
    errors.JudgeCacheMiss: EXIT_FOUND,
    errors.HealError: EXIT_USAGE,
    errors.MissingExtra: EXIT_USAGE,
    errors.TracemendError: EXIT_FOUND,
}
LABELS: dict[type[errors.TracemendError], str] = {errors.ChangeRejected: "change rejected"}


def exit_code(exc: errors.TracemendError) -> int:
    """The code the CLI exits with for ``exc``: its class's, else its nearest base class's."""
    return next(EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES)


def label(exc: errors.TracemendError) -> str:
    """The word in front of the message: ``error`` unless the class says otherwise."""
    return next((LABELS[cls] for cls in type(exc).__mro__ if cls in LABELS), "error")


def _say(word: str, message: str) -> None:
    # One line whatever the width: a message often ends in a path or an id someone will copy.
    err_console.print(Text.assemble((f"{word}:", "red"), " ", message), soft_wrap=True)


def report(exc: errors.TracemendError) -> int:
    """Print ``exc`` as one ``error: …`` line on stderr; return its exit code."""
    _say(label(exc), str(exc))
    return exit_code(exc)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: <message>`` on stderr; return the Exit to raise (for messages that need context)."""
    _say("error", message)
    return typer.Exit(code)


def _command_path() -> str | None:
    import click

    context = click.get_current_context(silent=True)
    names = []
    while context is not None and context.parent is not None:  # the root's name is however it was run
        names.append(context.info_name)
        context = context.parent
    return " ".join(["tracemend", *reversed(names)]) if names else None


P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command so that a TracemendError ends it with its line and exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except errors.TracemendError as exc:
            raise typer.Exit(report(exc)) from None
        except ImportError as exc:  # a library of an extra that is not installed: say which extra
            missing = errors.missing_extra(exc, _command_path())
            if missing is None:
                raise
            raise typer.Exit(report(missing)) from None

    return run
