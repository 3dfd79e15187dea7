"""Exit codes in one place: every tracemend error has a code, and both ways in print one `error:` line."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

import tracemend.cli
from tracemend import errors
from tracemend.cli.errors import EXIT_CODES, exit_code, label, reports_errors

ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.TracemendError) and cls is not errors.TracemendError
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_is_mapped_on_purpose(cls: type[errors.TracemendError]) -> None:
    # Its own entry or a base's, never only the last-resort base: a new class must be placed deliberately.
    mapped = next(c for c in cls.__mro__ if c in EXIT_CODES)
    assert mapped is not errors.TracemendError
    assert EXIT_CODES[mapped] in (1, 2, 3)


def test_codes_and_labels() -> None:
    assert exit_code(errors.StoreError("x")) == 2
    assert exit_code(errors.SelectionError("x")) == 2
    assert exit_code(errors.StructuredOutputError("x")) == 3  # through ModelError: could not finish
    assert exit_code(errors.ModelAuthError("x", hint="set K")) == 3
    assert exit_code(errors.CouldNotFinish("x")) == 3
    assert exit_code(errors.CaseFileError("a.yaml", 3, "bad")) == 2
    assert label(errors.ChangeRejected("x")) == "change rejected"
    assert label(errors.SandboxError("x")) == "error"


def _app(command) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    app.command("go")(command)
    return app


def test_a_decorated_command_prints_one_line_and_exits_with_the_mapped_code() -> None:
    long_path = "/very/long/path/" + "segment/" * 30 + "traces.db"

    @reports_errors
    def go(name: str = typer.Option("x", "--name")) -> None:
        """Fails."""
        raise errors.StoreError(f"No trace store at {long_path}. Record traces with @tracemend.track first.")

    result = CliRunner().invoke(_app(go), ["go", "--name", "y"], env={"COLUMNS": "80"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: No trace store at {long_path}. Record traces with @tracemend.track first."
    ]
    assert "--name" in CliRunner().invoke(_app(go), ["go", "--help"]).stdout  # typer still sees the options


def test_main_reports_what_a_command_lets_escape(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def go() -> None:
        raise errors.ChangeRejected("a/../x.py: '..' in a path would leave the repository")

    monkeypatch.setattr(tracemend.cli, "build_app", lambda: _app(go))
    monkeypatch.setattr("sys.argv", ["tracemend", "go"])
    with pytest.raises(SystemExit) as stopped:
        tracemend.cli.main()
    assert stopped.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == "change rejected: a/../x.py: '..' in a path would leave the repository"
    )
