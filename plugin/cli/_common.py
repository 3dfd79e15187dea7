"""What the CLI modules share: the consoles, the options every command spells alike, durations and times."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from tracemend.cli.output import Output
from tracemend.store import Store, StoreError

# Every command prints through these two; tracemend.cli.output holds the layout rules they follow.
console = Output(highlight=False)
err_console = Output(stderr=True, highlight=False)


def refresh_consoles() -> None:
    """Re-read COLUMNS for each run: the consoles outlive one command when the CLI is invoked in-process."""
    columns = os.environ.get("COLUMNS", "")
    for c in (console, err_console):
        c.width = int(columns) if columns.isdigit() else None  # type: ignore[assignment]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w|wk)s?\s*$", re.IGNORECASE)
_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "wk": 604800,
}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '7d', '1w' → timedelta. Raises typer.BadParameter (exit 2) otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration; use forms like 90s, 15m, 2h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_time(text: str) -> datetime:
    """An ISO time (UTC if no zone) or a duration meaning that long ago ('2h' → two hours ago)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC) - parse_duration(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def open_store_or_exit(db: Path | None, *, create: bool = False) -> Store:
    """The store, or its error reported (exit 2): for commands that do not carry ``reports_errors`` yet."""
    try:
        return Store(db, create=create)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


DB_OPTION = typer.Option(
    None, "--db", help="Trace store file (default: $TRACEMEND_DB, [tool.tracemend] db, else .tracemend/traces.db)."
)
FAILING_OPTION = typer.Option(False, "--failing", help="Only traces that failed (error or failed assertion).")
FAILING = ("error", "failed_assertion")


def json_option(help: str) -> Any:
    return typer.Option(False, "--json", help=help)


def limit_option(default: int | None, help: str) -> Any:
    return typer.Option(default, "--limit", min=1, help=help)


def since_option(help: str) -> Any:
    return typer.Option(None, "--since", help=help)
