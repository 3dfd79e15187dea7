"""The terminal approval: the proposal as rich output, the prompt on the console.

Everything shown here is untrusted (model output, traces): it is printed as text, never as rich markup,
and stripped of terminal control characters.
"""

from __future__ import annotations

import re

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracemend.records import Comparison, Proposal, RerunResult, Tally, Trace

_VERDICT_STYLE = {
    "fixed": "bold green",
    "partially_fixed": "yellow",
    "not_fixed": "bold red",
    "regressed_elsewhere": "bold red",
    "unchanged": "dim",
    "not_reproduced": "yellow",
}
_CHANGE_STYLE = {
    "fixed": "green",
    "still_failing": "red",
    "new_error": "red",
    "broke": "red",
    "unchanged_ok": "dim",
    "changed_ok": "yellow",
    "pre_existing": "dim",
    "not_reproduced": "yellow",
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


def _cell(result: RerunResult | None, tally: Tally | None, runs: int) -> Text:
    """``ok`` or ``fails`` (``absent``: no such entry point there), with the pass count when inputs ran
    more than once. Error types are listed under the table, so the columns stay narrow."""
    if result is None or tally is None:
        return Text("-", style="dim")
    word = "absent" if result.status == "setup_error" else "ok" if tally.passes else "fails"
    if runs > 1:
        word += f" {tally.passed}/{tally.runs}"
    return Text(word, style="green" if tally.passes else "red")


def _errors(comparison: Comparison) -> Text | None:
    """``errors: at head PageOutOfRange ×6; with fix none``: what the failing cells raised."""
    columns = [("before change", "prior", "prior_runs")] if comparison.three_way else []
    columns += [("at head" if comparison.three_way else "before", "before", "before_runs")]
    columns += [("with fix" if comparison.three_way else "after", "after", "after_runs")]
    parts = []
    for label, side, runs in columns:
        counts: dict[str, int] = {}
        for item in comparison.items:
            result, tally = getattr(item, side), getattr(item, runs)
            if result is None or tally is None or tally.passes or result.status == "setup_error":
                continue
            if result.error:
                kind = result.error.type.rsplit(".", 1)[-1]
            elif comparison.judged_by and result.status == "ok":
                kind = "judged fail"
            else:
                kind = result.status
            counts[kind] = counts.get(kind, 0) + 1
        shown = ", ".join(f"{k} ×{n}" for k, n in sorted(counts.items())) or "none"
        parts.append(f"{label} {shown}")
    return Text(clean("errors: " + "; ".join(parts)), style="dim")


def rate_text(tally: Tally) -> str:
    """``0/15 (0–20%)``: a pass count and its 95 % Wilson interval."""
    from tracemend.sandbox.compare import wilson

    low, high = wilson(tally.passed, tally.runs)
    return f"{tally.passed}/{tally.runs} ({low * 100:.0f}–{high * 100:.0f}%)"


def judged_rate_rows(comparison: Comparison) -> list[tuple[str, Tally]]:
    """The regression's judged runs in each tree, the failing inputs' runs pooled: (tree, tally)."""
    from tracemend.sandbox.compare import pooled

    items = comparison.regression or [i for i in comparison.items if i.was_failing]
    columns = [("before change", "prior_runs")] if comparison.three_way else []
    columns += [("at head" if comparison.three_way else "before", "before_runs")]
    columns += [("with fix" if comparison.three_way else "after", "after_runs")]
    return [(label, pooled([getattr(i, side) for i in items])) for label, side in columns]


def judged_rates(comparison: Comparison) -> str:
    """``judged pass rate: before change 15/15 (80–100%), at head 0/15 (0–20%), with fix 15/15 (80–100%)``."""
    rows = judged_rate_rows(comparison)
    return "judged pass rate: " + ", ".join(f"{label} {rate_text(tally)}" for label, tally in rows)


def _rates_table(comparison: Comparison) -> Table:
    """One line per tree, so a log at 80 columns never splits a rate from its interval."""
    from tracemend.sandbox.compare import wilson

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    for label, tally in judged_rate_rows(comparison):
        low, high = wilson(tally.passed, tally.runs)
        good = tally.passes
        table.add_row(
            "  ", label, Text(f"{tally.passed}/{tally.runs}", style="green" if good else "red"), "pass",
            f"95% interval {low * 100:.0f}–{high * 100:.0f}%",
        )  # fmt: skip
    return table


def render_comparison(comparison: Comparison | None) -> Table | Text | Group:
    """The inputs rerun in each tree, one row each: the regression first, then failures that predate
    the suspect change (set apart), then the passing sample."""
    if comparison is None:
        return Text("not rerun (build failure: the change applies and compiles)", style="dim")
    three = comparison.three_way
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("trace", no_wrap=True)
    table.add_column("input", no_wrap=True)
    if three:
        table.add_column("before change", no_wrap=True)
    table.add_column("at head" if three else "before", no_wrap=True)
    table.add_column("with fix" if three else "after", no_wrap=True)
    table.add_column("result", no_wrap=True)
    rank = {"pre_existing": 1, "not_reproduced": 1}
    items = sorted(comparison.items, key=lambda i: (not i.was_failing, rank.get(i.change, 0)))
    runs = comparison.runs
    for item in items:
        cells = [_cell(item.before, item.before_runs, runs), _cell(item.after, item.after_runs, runs)]
        if three:
            cells.insert(0, _cell(item.prior, item.prior_runs, runs))
        table.add_row(
            item.source_trace_id[:12],
            "failing" if item.was_failing else "passing",
            *cells,
            Text(item.change, style=_CHANGE_STYLE.get(item.change, "")),
        )
    notes: list[Text | Table] = []
    errors = _errors(comparison)
    if errors is not None:
        notes.append(errors)
    if three:
        prior = comparison.prior_revision[:10] if comparison.prior_revision else "?"
        head = comparison.head_revision[:10] if comparison.head_revision else "?"
        varied = f"; inputs whose outputs vary ran {runs} times in each" if runs > 1 else ""
        if comparison.judged_by:
            varied = f"; failing inputs ran {runs} times each"
        notes.append(Text(f"before change = {prior}, at head = {head}{varied}", style="dim"))
    if comparison.judged_by:
        notes.append(Text(f"judged pass rate (the failing inputs' runs, by {clean(comparison.judged_by)}):"))
        notes.append(_rates_table(comparison))
        notes.append(
            Text(
                f"judging the reruns: {comparison.judge_calls} judge call(s), {comparison.judge_cache_hits} "
                "cache hit(s); Wilson score intervals",
                style="dim",
            )
        )
    old = comparison.pre_existing
    if old:
        notes.append(
            Text(
                f"{len(old)} pre-existing failure(s): they fail before the suspect change too; not counted "
                "as fixed and not held against the fix",
                style="dim",
            )
        )
    return Group(table, *notes)


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
