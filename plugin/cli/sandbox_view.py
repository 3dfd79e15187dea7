"""How ``tracemend rerun`` shows sandbox results: the applied diff, "did you mean" misses, the details of
each input that changed (with ``--verbose``), and last one summary table with the verdict. Display only:
the sandbox (``tracemend.sandbox``) computes, this module prints."""

from __future__ import annotations

import json

from rich.console import Console
from rich.text import Text

from tracemend.cli.output import Column, Table, Verbatim
from tracemend.cli.render import duration
from tracemend.records import Comparison, InputComparison, RerunResult
from tracemend.sandbox import ApplyResult, Verification
from tracemend.sandbox.compare import span_tree

__all__ = ["render_apply", "render_comparison", "render_details", "render_verification"]

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
    """The change as a diff (verbatim: it can be copied and applied), then what did not apply and why."""
    if result.diff:
        console.print(Text("change applied" if result.ok else "change (not applied)", style="bold"))
        console.print(Verbatim(result.diff, "diff"))
    for miss in result.misses:
        console.print(Text.assemble(("miss ", "bold red"), miss.path, ": ", (miss.reason, "red")))
        if miss.closest:
            start = miss.closest_start_line or 1
            where = f" at line {start}" if miss.closest_start_line else ""
            console.print(Text(f"did you mean{where}:", style="bold"))
            lines = miss.closest.rstrip("\n").split("\n")
            width = len(str(start + len(lines) - 1))
            numbered = "\n".join(f"{start + i:>{width}} │ {line}" for i, line in enumerate(lines))
            console.print(Verbatim(numbered))
    for error in result.errors:
        console.print(Text.assemble(("error: ", "red"), error))


def _status(result: RerunResult) -> Text:
    style = "green" if result.status == "ok" else "red"
    label = result.status
    if result.error is not None and result.status != "ok":
        label += f" {result.error.type.rsplit('.', 1)[-1]}"
    return Text(label, style=style)


def _input_text(item: InputComparison) -> str:
    trace = item.before.trace or item.after.trace
    if trace is None or not trace.input:
        return ""
    text = ", ".join(f"{k}={v!r}" for k, v in trace.input.items() if k != (trace.config_param or ""))
    return text if len(text) <= 60 else text[:59] + "…"


def _side(name: str, result: RerunResult, console: Console) -> None:
    console.print(Text.assemble(f"  {name}: ", _status(result), f"  ({duration(result.duration_ms)})"))
    tree = span_tree(result.trace)
    if tree:
        console.print(Verbatim("\n".join("    " + line for line in tree), style="cyan"))
    if result.error is not None and result.status != "ok":
        console.print(Text(f"    {result.error.type}: {result.error.message}"[:400], style="red"))
    elif result.output is not None:
        text = json.dumps(result.output, ensure_ascii=False, default=repr)
        console.print(Text("    → " + (text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "…")))
    if result.status in ("timeout", "crashed") and result.stderr_tail:
        console.print(Verbatim(result.stderr_tail[-400:], style="dim"))


def render_details(comparison: Comparison, console: Console) -> None:
    """Each input whose result changed: before and after (spans, error or output) and their diffs."""
    for item in comparison.items:
        if item.change == "unchanged_ok":
            continue
        console.print(
            Text.assemble(
                (item.source_trace_id[:12], "bold"), " ", _input_text(item), "  ",
                (item.change, CHANGE_STYLE.get(item.change, "")),
            )
        )
        _side("before", item.before, console)
        _side("after ", item.after, console)
        for title, diff in (("spans", item.span_diff), ("output", item.output_diff)):
            if diff:
                console.print(Text(f"  {title} before → after", style="bold"))
                console.print(Verbatim(diff, "diff"))
        console.print()


def comparison_table(comparison: Comparison) -> Table:
    """One row per input rerun: was it failing, before, after, what changed, durations."""
    table = Table(
        Column("trace", nowrap=True),
        Column("input"),
        Column("was", nowrap=True),
        Column("before", nowrap=True),
        Column("after", nowrap=True),
        Column("change", nowrap=True),
        Column("before → after", nowrap=True, justify="right"),
    )
    for item in comparison.items:
        table.add_row(
            item.source_trace_id[:12],
            Text(_input_text(item)),
            "failing" if item.was_failing else "passing",
            _status(item.before),
            _status(item.after),
            Text(item.change, style=CHANGE_STYLE.get(item.change, "")),
            f"{duration(item.before.duration_ms)} → {duration(item.after.duration_ms)}",
        )
    return table


def render_comparison(comparison: Comparison, console: Console, *, details: bool = False) -> None:
    """The details of changed inputs (``details``), then the summary table and the verdict line."""
    if details:
        render_details(comparison, console)
    console.print(comparison_table(comparison))
    style = VERDICT_STYLE.get(comparison.verdict, "bold")
    counts: dict[str, int] = {}
    for item in comparison.items:
        counts[item.change] = counts.get(item.change, 0) + 1
    detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    console.print(Text.assemble(("verdict: ", "bold"), (comparison.verdict, style), f"  ({detail})"))


def render_verification(verification: Verification, console: Console, *, details: bool = False) -> None:
    """``tracemend rerun``'s report: base commit, the change, (details), the summary table, the verdict."""
    if verification.base_commit:
        console.print(Text(f"base commit {verification.base_commit[:12]}", style="dim"))
    render_apply(verification.apply, console)
    if verification.comparison is not None:
        render_comparison(verification.comparison, console, details=details)
