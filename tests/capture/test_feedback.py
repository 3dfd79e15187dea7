"""``tracemend.feedback``: a person's judgment of a trace, from the app, stored as a score; never raises."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tracemend
from tracemend.capture.feedback import feedback_stats
from tracemend.store import Store


def test_feedback_on_the_running_trace_is_stored_as_a_score(spine_store: Path) -> None:
    @tracemend.track
    def answer(ticket: str) -> str:
        # A UI would hand this id to the browser, and post it back with the thumbs-down.
        tracemend.feedback(
            tracemend.current_trace_id(), 0.2, reason="it promised a refund", category="wrong promise"
        )
        return "refund approved"

    answer("45 days")
    tracemend.flush()
    with Store(spine_store) as store:
        (trace,) = list(store.iter_traces())
        (score,) = store.scores_of(trace.trace_id)
        assert list(store.iter_traces(score=("user", "fail"))) == [trace]
        assert list(store.iter_traces(score=(None, "pass"))) == []
    assert score.source == "feedback" and score.name == "user" and score.verdict == "fail"
    assert score.value == 0.2 and score.reason == "it promised a refund" and score.category == "wrong promise"


def test_bad_arguments_are_dropped_with_one_warning_and_never_raise(
    spine_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = feedback_stats()["rejected"]
    with caplog.at_level(logging.WARNING, logger="tracemend"):
        tracemend.feedback(None, False)  # called outside a trace: current_trace_id() was None
        tracemend.feedback("not-an-id", False)
        tracemend.feedback("a" * 32, 7)  # out of range
        tracemend.feedback("a" * 32, float("nan"))
        tracemend.feedback("a" * 32, "bad")  # type: ignore[arg-type]
        tracemend.feedback("a" * 32, True, name="  ")
        tracemend.feedback(None, False)
    assert feedback_stats()["rejected"] - before == 7
    messages = [r.getMessage() for r in caplog.records if "tracemend.feedback" in r.getMessage()]
    assert len(messages) == 6  # the same mistake twice is logged once
    tracemend.flush()
    with Store(spine_store) as store:
        assert list(store.iter_scores()) == []


def test_secrets_in_the_reason_are_redacted(spine_store: Path) -> None:
    tracemend.feedback("b" * 32, False, reason="my key sk-proj-abcdefghijklmnopqrstuvwx leaked")
    tracemend.flush()
    with Store(spine_store) as store:
        (score,) = list(store.iter_scores())
    assert "sk-proj" not in score.reason and "[REDACTED]" in score.reason


def test_an_app_that_exits_without_flushing_keeps_its_feedback(tmp_path: Path) -> None:
    # A process that never traced anything (a feedback endpoint) and ends without flush: written at exit.
    db = tmp_path / "t.db"
    script = textwrap.dedent(
        """
        import tracemend
        for i in range(50):
            tracemend.feedback(f"{i:032x}", i % 2 == 0, name="thumbs", reason=f"try {i}")
        """
    )
    env = {**os.environ, "TRACEMEND_DB": str(db)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=60)
    with Store(db) as store:
        scores = list(store.iter_scores(source="feedback", name="thumbs"))
    assert len(scores) == 50
    assert sum(s.verdict == "fail" for s in scores) == 25
    assert {s.reason for s in scores} == {f"try {i}" for i in range(50)}


def test_with_recording_off_feedback_does_nothing(spine_store: Path) -> None:
    tracemend.configure(enabled=False)
    tracemend.feedback("c" * 32, False)
    tracemend.configure(enabled=True)
    tracemend.feedback("d" * 32, True)
    tracemend.flush()
    with Store(spine_store) as store:
        assert [s.trace_id for s in store.iter_scores()] == ["d" * 32]
