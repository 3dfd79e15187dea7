"""The terminal approval: the proposal as rich output, the prompt on the console.

Everything shown here is untrusted (model output, traces): it is printed as text, never as rich markup,
and stripped of terminal control characters.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracemend.records import Comparison, Proposal, Trace

_VERDICT_STYLE = {
    "fixed": "bold green",
    "partially_fixed": "yellow",
    "not_fixed": "bold red",
    "regressed_elsewhere": "bold red",
    "unchanged": "dim",
}
_CHANGE_STYLE = {
    "fixed": "green",
    "still_failing": "red",
    "new_error": "red",
    "broke": "red",
    "unchanged_ok": "dim",
    "changed_ok": "yellow",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """Untrusted text (model output, traces) without terminal control characters (ESC, BEL, ...)."""
    return _CONTROL.sub("", text)


_DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def diff_text(diff: str) -> Text:
    """A unified diff coloured line by line (trailing blanks kept: a context line of one space stays)."""
    lines = diff.rstrip("\n").split("\n")
    text = Text()
    for index, line in enumerate(lines):
        style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), "")
        text.append(line, style=style)
        if index < len(lines) - 1:
            text.append("\n")
    return text


def render_comparison(comparison: Comparison | None) -> Table | Text:
    if comparison is None:
        return Text("not rerun (build failure: the change applies and compiles)", style="dim")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("trace", "input was", "before", "after", "result"):
        table.add_column(col)
    for item in comparison.items:
        before = item.before.status + (
            f" {item.before.error.type.rsplit('.', 1)[-1]}" if item.before.error else ""
        )
        after = item.after.status + (
            f" {item.after.error.type.rsplit('.', 1)[-1]}" if item.after.error else ""
        )
        table.add_row(
            item.source_trace_id[:12],
            "failing" if item.was_failing else "passing",
            Text(clean(before)),
            Text(clean(after)),
            Text(item.change, style=_CHANGE_STYLE.get(item.change, "")),
        )
    return table


def render_proposal(proposal: Proposal, console: Console) -> None:
    label = "  [yellow](scripted model)[/]" if proposal.scripted else ""
    body = Text(clean(proposal.root_cause))
    if proposal.locations:
        body.append(clean("\nat " + ", ".join(proposal.locations)), style="cyan")
    console.print(
        Panel(
            body, title="root cause" + (" (scripted model)" if proposal.scripted else ""), title_align="left"
        )
    )
    if proposal.explanation:
        console.print(Text(clean(proposal.explanation), style="dim"))
    # soft_wrap: the diff's lines go out whole at any width, so the diff can be copied and applied.
    console.print(diff_text(clean(proposal.diff)), soft_wrap=True)
    if proposal.comparison is not None:
        verdict = proposal.comparison.verdict
    else:  # a build-log diagnosis has nothing to rerun; for traces, the rerun itself failed
        verdict = "not verified (the rerun failed)" if proposal.trace_ids else "applies and compiles"
    console.print(f"[bold]sandbox rerun:[/] [{_VERDICT_STYLE.get(verdict, 'bold')}]{verdict}[/]{label}")
    console.print(render_comparison(proposal.comparison))
    if proposal.trace_ids and (proposal.comparison is None or proposal.comparison.verdict != "fixed"):
        console.print(
            "[bold red]warning:[/] the sandbox did not confirm this fix; approving applies it anyway."
        )
    if proposal.suggested_assertions:
        console.print("[bold]assertions for the regression case:[/]")
        for a in proposal.suggested_assertions:
            console.print(Text(clean("  - " + a)))


class TerminalUI:
    """:class:`~tracemend.approval.protocol.ApprovalUI` on a rich console."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def show_proposal(self, proposal: Proposal) -> None:
        render_proposal(proposal, self.console)

    def show_trace(self, trace: Trace) -> None:
        from tracemend.diagnose import render_trace

        self.console.print(
            Panel(Text(clean(render_trace(trace))), title=f"trace {trace.trace_id[:12]}", title_align="left")
        )

    def ask(self, prompt: str) -> str | None:
        try:
            return self.console.input(Text(prompt, style="bold"))
        except EOFError:
            return None

    def info(self, message: str) -> None:
        self.console.print(Text(clean(message), style="italic"))
