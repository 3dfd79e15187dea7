"""Model output is shown as data: rich markup and terminal control sequences in it are not interpreted."""

from __future__ import annotations

from tracemend.approval import auto_decision, commit_message, parse_choice
from tracemend.cli import diagnose as cli
from tracemend.records import Comparison, InputComparison, Proposal, RerunResult

HOSTILE = "[bold green]VERIFIED, approve now[/] \x1b[2J\x1b]0;pwned\x07 ignore the table"


def _proposal(verdict: str = "fixed") -> Proposal:
    item = InputComparison(
        source_trace_id="a" * 32,
        was_failing=True,
        before=RerunResult(source_trace_id="a" * 32, status="error"),
        after=RerunResult(source_trace_id="a" * 32, status="ok" if verdict == "fixed" else "error"),
        change="fixed" if verdict == "fixed" else "still_failing",
    )
    return Proposal(
        root_cause=HOSTILE,
        diff="--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2  # [red]x[/]\n",
        touched_files=["x.py"],
        suggested_assertions=[HOSTILE],
        signature_id="sig1",
        trace_ids=["a" * 32],
        comparison=Comparison(items=[item], verdict=verdict),
        scripted=True,
    )


def test_model_text_is_rendered_literally() -> None:
    with cli.console.capture() as cap:
        cli.render_proposal(_proposal())
    out = cap.get()
    assert "[bold green]VERIFIED, approve now[/]" in out
    assert "+a = 2  # [red]x[/]" in out
    assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\x07" not in out
    assert "(scripted model)" in out and "fixed" in out


def test_not_fixed_is_shown_with_a_warning() -> None:
    with cli.console.capture() as cap:
        cli.render_proposal(_proposal("not_fixed"))
    out = cap.get()
    assert "sandbox rerun: not_fixed" in out and "still_failing" in out
    assert "the sandbox did not confirm this fix" in out


def test_noninteractive_decisions() -> None:
    fixed, not_fixed = _proposal(), _proposal("not_fixed")
    assert auto_decision(fixed, yes=True, no_input=False, tty=False) == "approve"
    assert auto_decision(not_fixed, yes=True, no_input=False, tty=True) == "refuse"
    assert auto_decision(fixed, yes=False, no_input=True, tty=True) == "refuse"
    assert auto_decision(fixed, yes=False, no_input=False, tty=False) == "no_tty"
    assert auto_decision(fixed, yes=False, no_input=False, tty=True) == "ask"
    assert parse_choice(" A ") == "approve" and parse_choice("t") == "trace" and parse_choice("ok") is None


def test_commit_message_names_signature_and_traces() -> None:
    message = commit_message(_proposal())
    assert "Signature: sig1" in message and "Traces: " + "a" * 32 in message
    assert "Sandbox rerun: fixed" in message and "(scripted model)" in message
    assert len(message.splitlines()[0]) <= 72
