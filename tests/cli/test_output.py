"""The layout policy of tracemend.cli.output: nothing cut, verbatim text whole, tables sized by destination."""

from __future__ import annotations

import io
import time

from rich.panel import Panel
from rich.text import Text

from tracemend.cli.output import Column, Output, Table, Verbatim

TEMPLATE = (
    "Rate limit reached for gpt-4o in organization <*> on tokens per min (TPM): Limit 30000, Used <*>, "
    "Requested <*>. Please try again in <*>."
)
DIFF = (
    "--- a/agent/tools.py\n+++ b/agent/tools.py\n@@ -26,7 +26,7 @@\n"
    "-    window = REFUND_WINDOWS[region]  # a long line that goes well past eighty columns of any terminal\n"
    "+    window = REFUND_WINDOWS[LEGACY_REGIONS.get(region, region)]  # so does this one, on purpose\n"
    " \n"
    "+\tindented with a tab\n"
)


def console(*, terminal: bool, width: int = 80) -> tuple[Output, io.StringIO]:
    out = io.StringIO()
    return Output(file=out, force_terminal=terminal, width=width, color_system=None, highlight=False), out


def findings_table() -> Table:
    table = Table(
        Column("verdict", nowrap=True),
        "signature",
        Column("baseline /h", nowrap=True, justify="right"),
        Column("p", nowrap=True, justify="right"),
        Column("examples", nowrap=True),
    )
    table.add_row("regression", Text(f"RateLimitError @ agent.llm:complete\n{TEMPLATE}"), "0.00", "4.7e-10", "4f2a9c01b7de")
    table.add_row("noise", Text("KeyError @ agent.tools:refund_policy\n'<*>'"), "1.08", "0.813", "77207fd10151")
    return table


def words(text: str) -> str:
    return " ".join(text.split())


def test_in_a_pipe_a_table_keeps_its_natural_width() -> None:
    c, out = console(terminal=False)
    c.print(findings_table())
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["verdict", "signature", "baseline", "/h", "p", "examples"]
    assert any(TEMPLATE in line for line in lines)  # one line, whole
    assert max(len(line) for line in lines) > 80  # wider than COLUMNS rather than squeezed
    assert all(line == line.rstrip() for line in lines)  # no padding after the last cell
    row = next(line for line in lines if line.startswith("regression"))
    assert "4.7e-10" in row.split() and "4f2a9c01b7de" in row.split()


def test_in_a_terminal_text_columns_wrap_between_words_and_numbers_stay_whole() -> None:
    c, out = console(terminal=True, width=120)
    c.print(findings_table())
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert "baseline /h" in lines[0]  # headers whole
    assert "4.7e-10" in text.split() and "4f2a9c01b7de" in text.split()
    assert words(TEMPLATE) in words(text)  # every word, in order, none folded
    for word in TEMPLATE.split():
        assert any(word in line.split() for line in lines), word


def test_a_terminal_narrower_than_the_columns_gets_one_block_per_row() -> None:
    c, out = console(terminal=True, width=60)
    c.print(findings_table())
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[0].split() == ["verdict", "regression"]
    assert any(line.split() == ["p", "4.7e-10"] for line in lines)
    assert any(line.split() == ["baseline", "/h", "0.00"] for line in lines)
    assert words(TEMPLATE) in words(out.getvalue())


def test_table_widths_never_go_below_the_longest_word() -> None:
    c, _ = console(terminal=True, width=50)
    table = Table("a", "b")
    table.add_row("x " * 40, "supercalifragilistic " * 3)
    widths = table.widths(c, 50)
    assert widths[1] >= len("supercalifragilistic") and sum(widths) + 2 <= 50


def test_verbatim_text_is_never_wrapped_in_a_pipe_or_a_terminal() -> None:
    for terminal in (False, True):
        c, out = console(terminal=terminal, width=80)
        c.print(Verbatim(DIFF, "diff"))
        c.line("undo  ", "git apply -R .tracemend/applied/20261201T183029-dfe1d45b5bfd3dbe.diff --and-more-words")
        printed = out.getvalue()
        assert printed.startswith(DIFF)  # byte for byte: the context line " " and the tab kept
        assert "git apply -R .tracemend/applied/20261201T183029-dfe1d45b5bfd3dbe.diff --and-more-words\n" in printed


def test_verbatim_in_a_table_cell_widens_its_column() -> None:
    c, out = console(terminal=True, width=60)
    grid = Table(Column("", nowrap=True), Column(""), show_header=False)
    command = "git apply -R .tracemend/applied/20261201T183029-dfe1d45b5bfd3dbe.diff"
    grid.add_row("undo", Verbatim(command))
    grid.add_row("found", Text("a message of many words that may wrap between them when the line is narrow"))
    c.print(grid)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("undo ") and lines[0][len("undo") :].strip() == command
    assert max(len(line) for line in lines[1:]) <= len(lines[0])  # prose wraps within the column


def test_prose_in_a_panel_still_wraps_at_the_console_width() -> None:
    c, out = console(terminal=False, width=60)
    c.print(Panel("a root cause in prose " * 8))
    assert max(len(line) for line in out.getvalue().splitlines()) == 60


def test_progress_in_a_log_is_a_line_per_step_and_throttles_when_asked() -> None:
    c, out = console(terminal=False)
    with c.progress("rerunning", total=3) as bar:
        for name in ("a", "b", "c"):
            bar.step(f"{name} ok")
    assert out.getvalue().splitlines() == ["rerunning 1/3: a ok", "rerunning 2/3: b ok", "rerunning 3/3: c ok"]

    c, out = console(terminal=False)
    with c.progress("exporting", total=1000, every=60.0) as bar:
        for done in range(100, 1001, 100):
            bar.update(done, f"{done * 3} spans")
    # The first line at once, then none for a minute, but always the last.
    assert out.getvalue().splitlines() == ["exporting 100/1000: 300 spans", "exporting 1000/1000: 3000 spans"]


def test_progress_in_a_terminal_is_transient() -> None:
    c, out = console(terminal=True)
    with c.progress("rerunning", total=2) as bar:
        bar.step("a ok")
        time.sleep(0.05)
        bar.step("b ok")
    c.line("after")
    assert out.getvalue().rstrip().endswith("after")
    assert "rerunning 1/2: a ok" not in out.getvalue()  # the bar, not log lines
