"""The trace view: sessions, users, tags and metadata recorded by a real @track'ed agent and filtered on by
`tracemend traces`; `show` with model, tokens, cost and µs durations and the config once; token and cost
totals by model and by entry point in `traces` and `status`. The CLI runs in a subprocess, piped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tracemend
from tracemend.store import Store

PROMPT = "You answer billing questions only; quote the invoice number back to the customer."


class BotConfig(tracemend.Config):
    model: str = "gpt-4o-mini"
    system_prompt: str = PROMPT


@tracemend.track(kind="llm")
def complete(prompt: str, model: str) -> str:
    if model == "gpt-4o":
        tracemend.update_current_span(
            model=model, usage={"prompt_tokens": 100, "completion_tokens": 20}, cost=0.0030
        )
    else:
        tracemend.update_current_span(
            model=model, usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}, cost=0.0002
        )
    return f"answer to {prompt}"


@tracemend.track(kind="tool")
def lookup(invoice: str) -> str:
    return invoice.upper()


@tracemend.track(kind="agent")
def chat(message: str, config: BotConfig, session: str, user: str, tags: list[str], meta: dict) -> str:
    tracemend.update_current_trace(session_id=session, user_id=user, tags=tags, metadata=meta)
    lookup("inv-7")
    return complete(message, config.model)


@tracemend.track(kind="agent")
def summarize(text: str) -> str:
    return complete(f"summarize {text}", "gpt-4o")


def tm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemend", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )


def ids(*args: str) -> list[str]:
    done = tm("traces", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["trace_id"] for line in done.stdout.splitlines()]


@pytest.fixture
def recorded(store_path: Path) -> dict[str, str]:
    config = BotConfig()
    chat("where is my invoice?", config, "s-1", "u-1", ["web"], {"tier": "gold", "seats": 7, "beta": True})
    chat("and the refund?", config, "s-1", "u-2", ["web", "vip"], {"tier": "free", "seats": 2})
    chat("hello", config, "s-2", "u-1", ["mobile"], {"tier": "gold"})
    summarize("the thread")
    tracemend.flush()
    with Store(store_path) as store:
        traces = list(store.iter_traces())
    return {t.input.get("message") or t.input.get("text"): t.trace_id for t in traces}


def test_session_user_tags_and_metadata_are_recorded_and_filtered(recorded: dict[str, str], store_path: Path) -> None:
    db = ("--db", str(store_path))
    first, second, third = recorded["where is my invoice?"], recorded["and the refund?"], recorded["hello"]
    assert set(ids("--session", "s-1", *db)) == {first, second}
    assert set(ids("--user", "u-1", *db)) == {first, third}
    assert set(ids("--session", "s-1", "--user", "u-1", *db)) == {first}
    assert set(ids("--tag", "web", *db)) == {first, second}
    assert set(ids("--tag", "web", "--tag", "vip", *db)) == {second}
    assert set(ids("--meta", "tier=gold", *db)) == {first, third}
    assert set(ids("--meta", "seats=7", *db)) == {first}  # a number matches its JSON value
    assert set(ids("--meta", "beta=true", *db)) == {first}
    assert ids("--session", "s-9", *db) == []

    stored = json.loads(tm("show", first, "--json", *db).stdout)
    assert stored["session_id"] == "s-1" and stored["user_id"] == "u-1"

    table = tm("traces", "--session", "s-1", *db).stdout
    assert "session" in table.splitlines()[0] and "u-2" in table


@pytest.mark.parametrize("bad", ["tier", "=gold", 'ti"er=gold'])
def test_bad_meta_filters_are_usage_errors(recorded: dict[str, str], store_path: Path, bad: str) -> None:
    done = tm("traces", "--meta", bad, "--db", str(store_path))
    assert done.returncode == 2 and "--meta" in done.stderr


def test_show_has_model_tokens_cost_microseconds_and_the_config_once(
    recorded: dict[str, str], store_path: Path
) -> None:
    done = tm("show", recorded["where is my invoice?"], "--db", str(store_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count(PROMPT) == 1  # the config is printed once, not again inside the input
    assert "model=gpt-4o-mini tokens=12→5 cost=$0.0002" in out
    assert "model calls    1; 17 tokens (12 prompt, 5 completion); cost $0.0002" in out
    assert "session        s-1" in out and "user           u-1" in out
    lookup_line = next(line for line in out.splitlines() if "lookup [tool]" in line)
    assert " µs" in lookup_line and "0.0 ms" not in out  # a microsecond call shows its microseconds


def _rows(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the totals table whose header line starts with ``header``, by first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    rows: dict[str, list[str]] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


def test_status_and_traces_total_tokens_and_cost_by_model_and_entry_point(
    recorded: dict[str, str], store_path: Path
) -> None:
    status = tm("status", "--db", str(store_path))
    assert status.returncode == 0, status.stderr
    by_model = _rows(status.stdout, "model ")
    # model: calls, prompt, completion, tokens, cost
    assert by_model["gpt-4o-mini"] == ["3", "36", "15", "51", "$0.0006"]
    assert by_model["gpt-4o"] == ["1", "100", "20", "120", "$0.0030"]
    assert by_model["total"] == ["4", "136", "35", "171", "$0.0036"]
    by_entry = _rows(status.stdout, "entry point")
    chat_entry = next(k for k in by_entry if k.endswith(":chat"))
    summarize_entry = next(k for k in by_entry if k.endswith(":summarize"))
    assert by_entry[chat_entry] == ["3", "3", "51", "$0.0006"]  # traces, model calls, tokens, cost
    assert by_entry[summarize_entry] == ["1", "1", "120", "$0.0030"]

    # traces: the totals are over every matching trace, not only the rows shown.
    listed = tm("traces", "--session", "s-1", "--limit", "1", "--db", str(store_path)).stdout
    assert "1 of 2 matching traces shown" in listed
    assert _rows(listed, "model ")["gpt-4o-mini"] == ["2", "24", "10", "34", "$0.0004"]
    header = listed.splitlines()[0].split()
    assert "tokens" in header and "cost" in header  # per trace, too

    quiet = tm("status", "--no-totals", "--db", str(store_path)).stdout
    assert "by model" not in quiet


def test_totals_over_many_traces_are_asked_for_not_assumed(
    recorded: dict[str, str], store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tracemend.cli import build_app
    from tracemend.cli import traces as traces_cli

    monkeypatch.setattr(traces_cli, "AUTO_TOTALS", 2)  # as if the store held more than the default bound
    run = CliRunner().invoke
    listed = run(build_app(), ["traces", "--db", str(store_path)], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert "not added up for 4 traces" in listed.stdout and "by model" not in listed.stdout
    asked = run(build_app(), ["traces", "--totals", "--db", str(store_path)], env={"COLUMNS": "80"})
    assert "tokens and cost of all 4 matching traces, by model" in asked.stdout
    narrowed = run(build_app(), ["traces", "--session", "s-1", "--db", str(store_path)], env={"COLUMNS": "80"})
    assert "by model" in narrowed.stdout  # two traces match: within the bound
    status = run(build_app(), ["status", "--db", str(store_path)], env={"COLUMNS": "80"})
    assert "not added up for 4 traces" in status.stdout
