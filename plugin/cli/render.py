"""Renderings of trace records (tables, span trees, errors, token and cost totals). Display only: no
queries, no logic. Layout follows :mod:`tracemend.cli.output` (nothing cut, verbatim text never wrapped)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from tracemend.cli.output import Column, Table, Verbatim
from tracemend.records import ErrorInfo, Span, Trace
from tracemend.store import UsageRow

STATUS_STYLE = {"ok": "green", "error": "red", "failed_assertion": "yellow"}
# Span attributes shown in their own words (model, tokens, cost), or not at all (bookkeeping).
_SHOWN_ATTRIBUTES = {"model", "usage", "cost", "config_hash", "__name__"}


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """A duration for people: µs below a millisecond, ms below a second, then seconds."""
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def tokens(n: int) -> str:
    return f"{n:,}"


def cost(value: float | None) -> str:
    """USD with enough digits to tell cheap calls apart; '—' when nothing recorded a cost."""
    if value is None:
        return "—"
    return f"${value:.4f}" if value < 100 else f"${value:,.2f}"


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_table(columns: Iterable[str], *, wrap: Collection[str] = (), right: Collection[str] = ()) -> Table:
    """A borderless :class:`~tracemend.cli.output.Table`: cells of the ``wrap`` columns wrap between words
    (in a terminal too narrow for them), every other column stays on one line; ``right`` columns align
    right (numbers)."""
    return Table(
        *(
            Column(c, nowrap=c not in wrap, justify="right" if c in right else "left")
            for c in columns
        )
    )


def trace_table(traces: list[Trace], usage: Mapping[str, UsageRow] | None = None) -> Table:
    """One row per trace; with ``usage`` (per trace id), its model calls' tokens and cost too."""
    usage = usage or {}
    with_usage = any(u.total_tokens or u.cost for u in usage.values())
    with_session = any(t.session_id or t.user_id for t in traces)
    columns = ["trace", "time (UTC)", "entry", "status", "duration", "revision"]
    if with_session:
        columns += ["session", "user"]
    if with_usage:
        columns += ["tokens", "cost"]
    # The time may break between date and time, and the error between words; nothing else breaks.
    table = plain_table([*columns, "error"], wrap=("time (UTC)", "error"), right=("duration", "tokens", "cost"))
    for t in traces:
        error = Text(f"{t.error.type.rsplit('.', 1)[-1]}: {short(t.error.message, 60)}") if t.error else ""
        row: list[Any] = [
            t.trace_id[:12],
            when(t.start_time),
            Text(t.name),
            Text(t.status, style=STATUS_STYLE.get(t.status, "")),
            duration(t.duration_ms),
            t.code_version.short,
        ]
        if with_session:
            row += [Text(t.session_id or "—"), Text(t.user_id or "—")]
        if with_usage:
            u = usage.get(t.trace_id)
            row += [tokens(u.total_tokens) if u else "—", cost(u.cost) if u else "—"]
        table.add_row(*row, error)
    return table


def usage_table(rows: list[UsageRow], by: str) -> Table:
    """Totals of tokens and cost, one row per model (``by="model"``) or entry point, and a total row."""
    if by == "model":
        table = plain_table(
            ("model", "calls", "prompt", "completion", "tokens", "cost"),
            right=("calls", "prompt", "completion", "tokens", "cost"),
        )
    else:
        table = plain_table(
            ("entry point", "traces", "model calls", "tokens", "cost"),
            right=("traces", "model calls", "tokens", "cost"),
        )
    for r in rows:
        name = Text(r.key if r.key is not None else "(no model named)")
        if by == "model":
            table.add_row(
                name, str(r.calls), tokens(r.prompt_tokens), tokens(r.completion_tokens),
                tokens(r.total_tokens), cost(r.cost),
            )
        else:
            table.add_row(name, str(r.traces), str(r.calls), tokens(r.total_tokens), cost(r.cost))
    if len(rows) > 1:
        total_cost = sum(r.cost for r in rows if r.cost is not None) if any(r.cost is not None for r in rows) else None
        total = Text("total", style="bold")
        if by == "model":
            table.add_row(
                total, str(sum(r.calls for r in rows)), tokens(sum(r.prompt_tokens for r in rows)),
                tokens(sum(r.completion_tokens for r in rows)), tokens(sum(r.total_tokens for r in rows)),
                cost(total_cost),
            )
        else:
            table.add_row(
                total, str(sum(r.traces for r in rows)), str(sum(r.calls for r in rows)),
                tokens(sum(r.total_tokens for r in rows)), cost(total_cost),
            )
    return table


def print_usage(console: Console, by_model: list[UsageRow], by_entry: list[UsageRow], what: str) -> None:
    """Token and cost totals by model and by entry point under one heading; one line when there are none."""
    if not any(r.calls for r in by_entry):
        console.print(Text(f"tokens and cost: no model calls recorded in {what}", style="dim"))
        return
    console.print(Text(f"\ntokens and cost of {what}, by model", style="bold"))
    console.print(usage_table(by_model, "model"))
    console.print(Text("\nby entry point", style="bold"))
    console.print(usage_table(by_entry, "entry_point"))


def span_usage(span: Span) -> tuple[int | None, int | None, float | None]:
    """A span's prompt and completion tokens and its cost, as update_current_span recorded them."""
    usage = span.attributes.get("usage")
    prompt = completion = None
    if isinstance(usage, dict):
        prompt = _number(usage.get("prompt_tokens", usage.get("input_tokens")))
        completion = _number(usage.get("completion_tokens", usage.get("output_tokens")))
    spent = span.attributes.get("cost")
    return prompt, completion, float(spent) if isinstance(spent, int | float) and not isinstance(spent, bool) else None


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _span_label(span: Span) -> Text:
    label = Text()
    label.append(span.name, style="bold red" if span.error else "bold")
    label.append(f" [{span.kind}]", style="dim")
    label.append(f" {duration(span.duration_ms)}", style="cyan")
    model = span.attributes.get("model")
    if model:
        label.append(f" model={model}", style="magenta")
    prompt, completion, spent = span_usage(span)
    if prompt is not None or completion is not None:
        label.append(f" tokens={prompt or 0}→{completion or 0}", style="magenta")
    if spent is not None:
        label.append(f" cost={cost(spent)}", style="magenta")
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


def error_lines(error: ErrorInfo) -> Text:
    """The error chain with its frames, one frame a line (in-app frames bright, library frames dim)."""
    lines = Text()
    chain = error.chain()
    for index, err in enumerate(chain):
        if index:
            link = "caused by" if chain[index - 1].cause_kind == "cause" else "while handling"
            lines.append(f"{link}:\n", style="dim")
        lines.append(f"{err.type}: ", style="bold red")
        lines.append(err.message + "\n")
        for frame in err.frames:
            lines.append(f"  {frame.file}:{frame.line} in {frame.function}\n", style="" if frame.in_app else "dim")
    lines.rstrip()
    return lines


def _heading(console: Console, title: str) -> None:
    console.print(Text(f"\n{title}", style="bold"))


def print_trace(console: Console, trace: Trace) -> None:
    """``tracemend show``: the facts, the input (the config once, below it), output, spans and error."""
    head = Table(Column("", nowrap=True, style="bold"), Column(""), show_header=False)
    head.add_row("trace", Verbatim(trace.trace_id))
    head.add_row("entry point", Verbatim(trace.entry_point))
    head.add_row("status", Text(trace.status, style=STATUS_STYLE.get(trace.status, "")))
    head.add_row("started", f"{when(trace.start_time)} UTC  ({duration(trace.duration_ms)})")
    head.add_row(
        "revision",
        trace.code_version.short + (f"  ({trace.code_version.branch})" if trace.code_version.branch else ""),
    )
    head.add_row("project / env", Text(f"{trace.project} / {trace.environment}"))
    if trace.session_id:
        head.add_row("session", Verbatim(trace.session_id))
    if trace.user_id:
        head.add_row("user", Verbatim(trace.user_id))
    if trace.tags:
        head.add_row("tags", Text(", ".join(trace.tags)))
    if trace.metadata:
        head.add_row("metadata", Verbatim(json.dumps(trace.metadata, default=repr, ensure_ascii=False)))
    calls = [s for s in trace.spans if s.attributes.keys() & {"model", "usage", "cost"}]
    if calls:
        usage = [span_usage(s) for s in calls]
        prompt = sum(u[0] or 0 for u in usage)
        completion = sum(u[1] or 0 for u in usage)
        spent = [u[2] for u in usage if u[2] is not None]
        head.add_row(
            "model calls",
            f"{len(calls)}; {tokens(prompt + completion)} tokens ({tokens(prompt)} prompt, "
            f"{tokens(completion)} completion); cost {cost(sum(spent) if spent else None)}",
        )
    console.print(head)
    inputs = dict(trace.input)
    if trace.config_param and trace.config is not None:
        inputs.pop(trace.config_param, None)  # the config is shown once, in its own block
    _heading(console, "input")
    console.print(Verbatim(json.dumps(inputs, indent=2, default=repr, ensure_ascii=False), "json"))
    if trace.config is not None:
        where = f", passed as {trace.config_param}" if trace.config_param else ""
        _heading(console, f"config {trace.config_hash or ''} ({trace.config_class or 'dict'}{where})")
        console.print(Verbatim(json.dumps(trace.config, indent=2, default=repr, ensure_ascii=False), "json"))
    if trace.output is not None:
        _heading(console, "output")
        console.print(Text(short(trace.output, 2000)))
    if trace.spans:
        console.print()
        console.print(span_tree(trace))
    if trace.error is not None:
        _heading(console, "error")
        console.print(error_lines(trace.error))
