"""How ``tracemend rerun`` shows sandbox results: the applied diff, "did you mean" misses, before/after side
by side. Display only: the sandbox (``tracemend.sandbox``) computes, this module prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from tracemend.records import Comparison, InputComparison, RerunResult
from tracemend.sandbox import ApplyResult, Verification
from tracemend.sandbox.compare import span_tree

__all__ = ["render_apply", "render_comparison", "render_verification"]

VERDICT_STYLE = {
    "fixed": "bold green",
    "partially_fixed": "bold yellow",
    "not_fixed": "bold red",
    "regressed_elsewhere": "bold red",
    "unchanged": "bold",
}
CHANGE_STYLE = {
    "fixed": "green",
    "still_failing": "red",
    "new_error": "red",
    "broke": "bold red",
    "unchanged_ok": "dim",
    "changed_ok": "yellow",
}
_MAX_OUTPUT = 1200


def render_apply(result: ApplyResult, console: Console) -> None:
    if result.diff:
        title = "change applied" if result.ok else "change (not applied)"
        console.print(Panel(Syntax(result.diff, "diff", word_wrap=True), title=title, expand=False))
    for miss in result.misses:
        body: list[Any] = [Text(miss.reason, style="red")]
        if miss.closest:
            where = f" at line {miss.closest_start_line}" if miss.closest_start_line else ""
            body.append(Text(f"did you mean{where}:", style="bold"))
            body.append(
                Syntax(miss.closest, "python", line_numbers=True, start_line=miss.closest_start_line or 1)
            )
        console.print(Panel(Group(*body), title=f"[red]miss[/] {miss.path}", expand=False))
    for error in result.errors:
        console.print(f"[red]error:[/] {error}")


def _status(result: RerunResult) -> Text:
    style = "green" if result.status == "ok" else "red"
    label = result.status
    if result.error is not None and result.status != "ok":
        label += f" {result.error.type}"
    return Text(label, style=style)


def _input_label(item: InputComparison) -> str:
    trace = item.before.trace or item.after.trace
    text = ""
    if trace is not None and trace.input:
        text = ", ".join(f"{k}={v!r}" for k, v in trace.input.items() if k != (trace.config_param or ""))
    text = text if len(text) <= 40 else text[:39] + "…"
    return f"{item.source_trace_id[:8]} {text}".strip()


def _side(result: RerunResult) -> Group:
    parts: list[Any] = [_status(result)]
    tree = span_tree(result.trace)
    if tree:
        parts.append(Text("\n".join(tree), style="cyan"))
    if result.error is not None and result.status != "ok":
        parts.append(Text(f"{result.error.type}: {result.error.message}"[:400], style="red"))
    elif result.output is not None:
        import json

        text = json.dumps(result.output, indent=2, default=repr, ensure_ascii=False)
        parts.append(Text(text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "…"))
    if result.status in ("timeout", "crashed") and result.stderr_tail:
        parts.append(Text(result.stderr_tail[-400:], style="dim"))
    return Group(*parts)


def render_comparison(comparison: Comparison, console: Console, *, details: bool = True) -> None:
    summary = Table(title="before → after", title_justify="left")
    summary.add_column("input")
    summary.add_column("was")
    summary.add_column("before")
    summary.add_column("after")
    summary.add_column("change")
    summary.add_column("ms", justify="right")
    for item in comparison.items:
        summary.add_row(
            _input_label(item),
            "failing" if item.was_failing else "passing",
            _status(item.before),
            _status(item.after),
            Text(item.change, style=CHANGE_STYLE.get(item.change, "")),
            f"{item.before.duration_ms:.1f} → {item.after.duration_ms:.1f}",
        )
    console.print(summary)
    if details:
        for item in comparison.items:
            if item.change == "unchanged_ok":
                continue
            side = Table(title=_input_label(item), title_justify="left", expand=True, show_lines=False)
            side.add_column("before", ratio=1)
            side.add_column("after", ratio=1)
            side.add_row(_side(item.before), _side(item.after))
            console.print(side)
    style = VERDICT_STYLE.get(comparison.verdict, "bold")
    counts: dict[str, int] = {}
    for item in comparison.items:
        counts[item.change] = counts.get(item.change, 0) + 1
    detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    console.print(Text.assemble(("verdict: ", "bold"), (comparison.verdict, style), f"  ({detail})"))


def render_verification(verification: Verification, console: Console) -> None:
    if verification.base_commit:
        console.print(f"[dim]base commit {verification.base_commit[:12]}[/]")
    render_apply(verification.apply, console)
    if verification.comparison is not None:
        render_comparison(verification.comparison, console)
