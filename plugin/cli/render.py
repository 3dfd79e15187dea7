"""Rich renderings of trace records (tables, span trees, errors). Display only: no queries, no logic."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tracemend.records import ErrorInfo, Span, Trace

STATUS_STYLE = {"ok": "green", "error": "red", "failed_assertion": "yellow"}


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_table(columns: Iterable[str], *, wrap: Collection[str] = ()) -> Table:
    """A borderless table with bold headers; long cells fold, and those of ``wrap`` columns wrap too."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column not in wrap)
    return table


def trace_table(traces: list[Trace]) -> Table:
    columns = ("trace", "time (UTC)", "entry", "status", "duration", "revision", "error")
    table = plain_table(columns, wrap=("error",))
    for t in traces:
        error = f"{t.error.type}: {short(t.error.message, 60)}" if t.error else ""
        table.add_row(
            t.trace_id[:12],
            when(t.start_time),
            t.name,
            Text(t.status, style=STATUS_STYLE.get(t.status, "")),
            duration(t.duration_ms),
            t.code_version.short,
            error,
        )
    return table


def _span_label(span: Span) -> Text:
    label = Text()
    label.append(span.name, style="bold red" if span.error else "bold")
    label.append(f" [{span.kind}]", style="dim")
    label.append(f" {duration(span.duration_ms)}", style="cyan")
    model = span.attributes.get("model")
    if model:
        label.append(f" model={model}", style="magenta")
    if span.error:
        label.append(f"  {span.error.type}: {short(span.error.message, 70)}", style="red")
    elif span.output is not None:
        label.append(f"  → {short(span.output, 70)}", style="dim")
    return label


def span_tree(trace: Trace) -> Tree:
    by_parent: dict[str | None, list[Span]] = {}
    ids = {s.span_id for s in trace.spans}
    for s in trace.spans:
        # A span whose parent was not recorded (dropped) hangs from the root rather than vanishing.
        parent = s.parent_id if s.parent_id in ids else None
        by_parent.setdefault(parent, []).append(s)
    tree = Tree(Text("spans", style="bold"))

    def add(node: Tree, parent: str | None, depth: int) -> None:
        for span in sorted(by_parent.get(parent, []), key=lambda s: s.start_time):
            child = node.add(_span_label(span))
            if depth < 50:
                add(child, span.span_id, depth + 1)

    add(tree, None, 0)
    return tree


def error_panel(error: ErrorInfo) -> Panel:
    lines = Text()
    for index, err in enumerate(error.chain()):
        if index:
            link = (
                "caused by"
                if err is not None and error.chain()[index - 1].cause_kind == "cause"
                else "while handling"
            )
            lines.append(f"\n{link}:\n", style="dim")
        lines.append(f"{err.type}: ", style="bold red")
        lines.append(err.message + "\n")
        for frame in err.frames:
            style = "" if frame.in_app else "dim"
            lines.append(f"  {frame.file}:{frame.line} in {frame.function}\n", style=style)
    return Panel(lines, title="error", border_style="red", expand=False)


def print_trace(console: Console, trace: Trace) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("trace", trace.trace_id)
    head.add_row("entry point", trace.entry_point)
    head.add_row("status", Text(trace.status, style=STATUS_STYLE.get(trace.status, "")))
    head.add_row("started", f"{when(trace.start_time)} UTC  ({duration(trace.duration_ms)})")
    head.add_row(
        "revision",
        trace.code_version.short + (f"  ({trace.code_version.branch})" if trace.code_version.branch else ""),
    )
    head.add_row("project / env", f"{trace.project} / {trace.environment}")
    if trace.tags:
        head.add_row("tags", ", ".join(trace.tags))
    if trace.config is not None:
        head.add_row("config", f"{trace.config_hash}  {trace.config_class or 'dict'}")
    console.print(head)
    parts: list[Any] = []
    if trace.config is not None:
        parts.append(
            Panel(
                Syntax(json.dumps(trace.config, indent=2), "json", word_wrap=True),
                title="config",
                expand=False,
            )
        )
    parts.append(
        Panel(
            Syntax(json.dumps(trace.input, indent=2, default=repr), "json", word_wrap=True),
            title="input",
            expand=False,
        )
    )
    if trace.output is not None:
        parts.append(Panel(Text(short(trace.output, 2000)), title="output", expand=False))
    console.print(Group(*parts))
    if trace.spans:
        console.print(span_tree(trace))
    if trace.error is not None:
        console.print(error_panel(trace.error))
