"""How every command lays out what it prints: one policy, decided by where the output goes.

The rules (the README's "Output" section states them for users):

- **Nothing is cut.** Words, ids, paths and numbers are never folded or truncated by the layout; a table
  cell wraps only between words.
- **Verbatim text is never wrapped.** Diffs, YAML, JSON, commands and ids are printed as :class:`Verbatim`:
  each line goes out whole, whatever the width, so it can be copied (a terminal wraps long lines visually
  without breaking them; a log keeps them as they are).
- **In a terminal**, tables fit the terminal's width by wrapping their text columns between words (and
  closing the gap between columns to one space if that is what it takes); when even that cannot fit (the
  unbreakable parts are wider than the terminal), each row is printed as a block of "header  value" lines.
- **In a pipe or a file** (a CI log), tables are never squeezed: each is printed at its natural width as plain
  aligned text, one row per line. Prose still wraps between words at the width rich reports (``COLUMNS``,
  else 80); no colour codes are written.

The pieces, generic enough for any command:

- :class:`Output`, the console every command prints through (``tracemend.cli._common.console`` and
  ``err_console``). Its ``print`` widens the line for anything that cannot be laid out in the width
  without cutting; :meth:`Output.line` prints one line never wrapped; :meth:`Output.code` prints a
  :class:`Verbatim` block; :meth:`Output.progress` reports long work.
- :class:`Table`, a borderless table whose columns fit as above. Cells are strings (rich markup), ``Text``,
  :class:`Verbatim` (never wrapped) or any renderable; ``Column(nowrap=True)`` keeps every cell of a column on
  one line (ids, numbers, times). Headers are never broken.
- :class:`Verbatim`, a block printed line for line (syntax-coloured in a terminal for ``diff``, ``yaml``,
  ``json`` and ``python``), tabs and all.
- :class:`Progress`: a rich progress bar in a terminal, one line per step in a log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table as RichTable
from rich.text import Text

__all__ = ["Column", "Output", "Progress", "Table", "Verbatim", "required_width"]

# Measuring happens against this width, so that nothing is clamped by the terminal while measuring.
_UNBOUNDED = 100_000
# Terminal control characters (ESC, BEL, …) other than tab and newline: never written out verbatim.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


# --- verbatim blocks ------------------------------------------------------------------------------


class Verbatim:
    """Text printed line for line: never wrapped, never cut, tabs kept (diffs, YAML, commands, ids).

    ``lexer`` ("diff", "yaml", "json", "python", …) colours it in a terminal; in a pipe it is plain. Its
    width is its longest line, so a table column or a console line holding it is at least that wide.
    """

    def __init__(self, text: str, lexer: str | None = None, style: str = "") -> None:
        self.text = _CONTROL.sub("", text.rstrip("\n"))
        self.lexer = lexer
        self.style = style
        self.lines = self.text.split("\n")

    @property
    def width(self) -> int:
        return max((cell_len(line.expandtabs(8)) for line in self.lines), default=0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def _styled_lines(self, console: Console) -> list[Text]:
        if self.lexer == "diff":
            out = []
            for line in self.lines:
                style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), self.style)
                out.append(Text(line, style=style))
            return out
        if self.lexer and console.color_system is not None and "\t" not in self.text:
            # Syntax.highlight expands tabs; only code without tabs is coloured, so the bytes stay the same.
            from rich.syntax import Syntax

            highlighted = Syntax(
                self.text, self.lexer, theme="ansi_dark", background_color="default"
            ).highlight(self.text)
            lines = list(highlighted.split("\n", allow_blank=True))
            if len(lines) == len(self.lines):
                return lines
        return [Text(line, style=self.style) for line in self.lines]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Segments, not a wrapped Text: the lines reach the output exactly as given.
        for line in self._styled_lines(console):
            yield from line.render(console)
            yield Segment.line()


# --- tables ---------------------------------------------------------------------------------------


@dataclass
class Column:
    """A table column: its header (never broken), alignment, and whether its cells stay on one line."""

    header: str
    nowrap: bool = False
    justify: str = "left"
    style: str = ""


class Table:
    """A borderless table that is never squeezed into cutting anything (see the module's rules).

    Give columns as header strings or :class:`Column`; add rows of cells (strings with rich markup,
    ``Text``, :class:`Verbatim`, or any renderable). The widest text columns give up width first, down to
    their longest word.
    """

    def __init__(
        self,
        *columns: str | Column,
        title: str | None = None,
        gap: int = 2,
        show_header: bool = True,
        stack: bool = True,
    ) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.title = title
        self.gap = gap
        self.show_header = show_header
        # In a terminal too narrow for the columns, print each row as "header  value" lines instead.
        self.stack = stack and show_header
        self.rows: list[list[RenderableType]] = []

    def add_row(self, *cells: RenderableType | None) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(["" if c is None else c for c in cells])

    def __len__(self) -> int:
        return len(self.rows)

    def _ranges(self, console: Console) -> tuple[list[int], list[int]]:
        """Per column: the narrowest width that cuts nothing, and the natural (unwrapped) width."""
        options = console.options.update(width=_UNBOUNDED)
        minimums, naturals = [], []
        for index, column in enumerate(self.columns):
            header = cell_len(column.header) if self.show_header else 0
            low, high = header, header
            for row in self.rows:
                measured = Measurement.get(console, options, row[index])
                high = max(high, measured.maximum)
                low = max(low, measured.maximum if column.nowrap else measured.minimum)
            minimums.append(low)
            naturals.append(high)
        return minimums, naturals

    def _gap_for(self, minimums: list[int], width: int) -> int:
        """The gap between columns: ours, or one space when that is what lets the columns fit."""
        spaces = len(self.columns) - 1
        if self.gap > 1 and sum(minimums) + self.gap * spaces > width >= sum(minimums) + spaces:
            return 1
        return self.gap

    def widths(self, console: Console, width: int, gap: int | None = None) -> list[int]:
        """Column widths for ``width`` characters: natural if they fit; else the text columns wrap,
        widest first, never below their longest word (the table is then wider than ``width``)."""
        minimums, naturals = self._ranges(console)
        gap = self.gap if gap is None else gap
        budget = width - gap * (len(self.columns) - 1)
        if sum(naturals) <= budget or not console.is_terminal:
            return naturals
        if sum(minimums) >= budget:
            return minimums

        def at(level: int) -> list[int]:
            return [max(lo, min(hi, level)) for lo, hi in zip(minimums, naturals, strict=True)]

        low, high = 0, max(naturals)  # the highest level whose widths fit the budget
        while low < high:
            mid = (low + high + 1) // 2
            if sum(at(mid)) <= budget:
                low = mid
            else:
                high = mid - 1
        return at(low)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        minimums, naturals = self._ranges(console)
        gaps = self.gap * (len(self.columns) - 1)
        natural = sum(naturals) + gaps
        if not console.is_terminal:  # in a pipe the table is never squeezed: its natural width is its least
            return Measurement(natural, natural)
        least = sum(minimums) + len(self.columns) - 1
        if self.stack:
            least = min(least, self._stacked(console).__rich_measure__(console, options).minimum)
        return Measurement(least, natural)

    def _stacked(self, console: Console) -> Table:
        """The rows as blocks of "header  value" lines (for a terminal narrower than the columns)."""
        stacked = Table(Column("", nowrap=True, style="bold"), Column(""), show_header=False, stack=False)
        for index, row in enumerate(self.rows):
            if index:
                stacked.add_row("", "")
            for column, cell in zip(self.columns, row, strict=True):
                if column.nowrap and isinstance(cell, str):
                    cell = console.render_str(cell)
                    cell.no_wrap = True
                stacked.add_row(column.header, cell)
        return stacked

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        minimums, naturals = self._ranges(console)
        gap = self._gap_for(minimums, options.max_width) if console.is_terminal else self.gap
        too_narrow = sum(minimums) + gap * (len(self.columns) - 1) > options.max_width
        if self.stack and console.is_terminal and too_narrow and self.rows:
            if self.title:
                yield Text(self.title, style="bold")
            yield from self._stacked(console).__rich_console__(console, options)
            return
        widths = self.widths(console, options.max_width, gap)
        table = RichTable(
            box=None,
            header_style="bold",
            pad_edge=False,
            padding=(0, gap // 2, 0, gap - gap // 2),
            collapse_padding=False,
            show_edge=False,
            show_header=self.show_header,
            title=self.title,
            title_justify="left",
            title_style="bold",
        )
        for column, width in zip(self.columns, widths, strict=True):
            table.add_column(
                column.header,
                width=width,
                no_wrap=column.nowrap,
                overflow="fold",
                justify=column.justify,  # type: ignore[arg-type]
                style=column.style,
            )
        for row in self.rows:
            table.add_row(*row)
        # Never narrower than the columns need (a table wider than the terminal is printed wider, not cut).
        need = sum(widths) + gap * (len(widths) - 1)
        lines = console.render_lines(table, options.update(width=max(options.max_width, need)), pad=False)
        for line in lines:
            yield from _rstrip(line)
            yield Segment.line()


def _rstrip(line: list[Segment]) -> list[Segment]:
    """A rendered line without the padding after its last cell (logs keep no trailing blanks)."""
    line = list(line)
    while line and not line[-1].control and not line[-1].text.strip():
        line.pop()
    if line and not line[-1].control:
        last = line[-1]
        line[-1] = Segment(last.text.rstrip(), last.style)
    return line


# --- the console ------------------------------------------------------------------------------------


def required_width(console: Console, renderable: Any) -> int:
    """The fewest columns ``renderable`` needs to be printed without cutting anything.

    Panels and padding need what their content needs plus their frame (rich measures a panel at its
    natural width, which would stop prose inside it from wrapping).
    """
    if isinstance(renderable, Panel):
        _, right, _, left = Padding.unpack(renderable.padding)
        return required_width(console, renderable.renderable) + left + right + 2
    if isinstance(renderable, Padding):
        return required_width(console, renderable.renderable) + renderable.left + renderable.right
    if isinstance(renderable, Group):
        return max((required_width(console, r) for r in renderable.renderables), default=0)
    options = console.options.update(width=_UNBOUNDED)
    return Measurement.get(console, options, renderable).minimum


class Output(Console):
    """The console every command prints through: rich, with the layout rules of this module.

    ``print`` widens the line, for that call only, to what its content needs when the width rich reports
    (the terminal's, or ``COLUMNS``, else 80) would cut it.
    """

    @property
    def pipe(self) -> bool:
        """True when writing to a pipe or a file (a log), not a terminal."""
        return not self.is_terminal

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if kwargs.get("soft_wrap") or kwargs.get("width") is not None or not objects:
            super().print(*objects, **kwargs)
            return
        need = max(required_width(self, obj) for obj in objects)
        base = self.width
        if need <= base:
            super().print(*objects, **kwargs)
            return
        saved = self._width
        self._width = need
        try:
            super().print(*objects, **kwargs)
        finally:
            self._width = saved

    def line(self, *parts: str | Text, style: str = "") -> None:
        """One line, never wrapped: a status line that holds a path, an id or a command. ``parts`` are
        joined with no separator; strings are plain text (no markup)."""
        text = Text(style=style)
        for part in parts:
            text.append(part if isinstance(part, Text) else Text(part))
        super().print(text, soft_wrap=True)

    def code(self, text: str, lexer: str | None = None, *, title: str | None = None) -> None:
        """A block of verbatim text (a diff, a YAML file, a command), optionally under a bold title line."""
        if title:
            self.line(Text(title, style="bold"))
        self.print(Verbatim(text, lexer))

    def progress(
        self, label: str, total: int | None = None, *, every: float = 0.0
    ) -> Progress:
        """Report long work: a progress bar in a terminal, a line per step in a log (at most one each
        ``every`` seconds, and always the last). Use as a context manager."""
        return Progress(self, label, total, every=every)


# --- progress ---------------------------------------------------------------------------------------


class Progress:
    """Progress of one piece of long work. ``step(what)`` counts one step done; ``update`` sets the count.

    In a terminal: a transient rich bar (spinner, label, bar, n/total, elapsed, the last step's words).
    In a log: ``label n/total: what`` per step, so a CI log shows where a slow run is.
    """

    def __init__(self, console: Output, label: str, total: int | None, *, every: float = 0.0) -> None:
        self.console = console
        self.label = label
        self.total = total
        self.every = every
        self.done = 0
        self._bar: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._pending: str | None = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns += [TimeElapsedColumn(), TextColumn("{task.fields[what]}", style="dim")]
            self._bar = RichProgress(*columns, console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, what="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._pending is not None:
            self.console.line(self._pending)

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def update(self, done: int, what: str = "") -> None:
        """Set how many steps are done (for work that reports a running count)."""
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=done, what=what)
            return
        line = f"{self.label} {self._count()}" + (f": {what}" if what else "")
        now = time.monotonic()
        if now - self._last_line >= self.every or (self.total is not None and done >= self.total):
            self.console.line(line)
            self._last_line, self._pending = now, None
        else:
            self._pending = line  # printed at the end if no later line replaces it

    def step(self, what: str = "", advance: int = 1) -> None:
        """One more step done; ``what`` says which."""
        self.update(self.done + advance, what)


def iter_lines(renderables: Iterable[RenderableType], console: Console) -> Iterator[str]:
    """The plain lines ``renderables`` print as (for tests and for logs that must not hold styles)."""
    with console.capture() as capture:
        for item in renderables:
            console.print(item)
    yield from capture.get().splitlines()


def columns(headers: Sequence[str], *, nowrap: Iterable[str] = (), right: Iterable[str] = ()) -> list[Column]:
    """Columns from headers: those in ``nowrap`` stay on one line, those in ``right`` align right."""
    keep, align = set(nowrap), set(right)
    return [Column(h, nowrap=h in keep or h in align, justify="right" if h in align else "left") for h in headers]
