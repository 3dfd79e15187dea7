"""Errors inside the recorder never reach user code: logged once, counted, and the call happens once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import tracemend
from tracemend.capture.state import STATE
from tracemend.store import Store

from helpers.spine import only_trace, read_traces


def _internal_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tracemend" and "internal error" in r.getMessage()]


class Unreadable:
    """A field of the recorder's state that raises when read."""

    def __bool__(self) -> bool:
        raise RuntimeError("recorder bug")


def test_span_start_failure_is_logged_once_and_call_happens(
    spine_store: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        return x + 1

    @tracemend.track
    def fails() -> None:
        raise ValueError("user error")

    with monkeypatch.context() as broken, caplog.at_level(logging.WARNING, logger="tracemend"):
        # Every root span start reads whether the writer is running: make that read fail.
        broken.setattr(STATE, "started", Unreadable())
        assert [work(i) for i in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(ValueError, match="user error"):
            fails()
    assert calls == [0, 1, 2, 3, 4]
    assert len(_internal_warnings(caplog)) == 1
    assert tracemend.stats()["internal_errors"] == 6
    assert read_traces(spine_store) == []


def test_span_end_failure_is_swallowed(spine_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ExplodingQueue(list):
        def append(self, item: Any) -> None:
            raise MemoryError("queue bug")

    monkeypatch.setattr(STATE, "queue", ExplodingQueue())
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        return x

    assert work(4) == 4 and calls == [4]
    assert tracemend.stats()["internal_errors"] == 1


class Unmeasurable(str):
    """A str subclass whose len() raises: the encoder copies it to a plain str and records it."""

    def __len__(self) -> int:
        raise RuntimeError("no len for you")


_ENCODER_BUG = "trigger an encoder bug"


def test_encoder_failure_loses_the_trace_not_the_call(
    spine_store: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracemend.capture.encode import Encoder

    real = Encoder.encode

    def buggy(self: Encoder, value: Any) -> Any:
        if isinstance(value, dict) and value.get("note") == _ENCODER_BUG:
            raise RuntimeError("encoder bug")
        return real(self, value)

    monkeypatch.setattr(Encoder, "encode", buggy)
    calls: list[int] = []

    @tracemend.track
    def work(x: int) -> int:
        calls.append(x)
        tracemend.update_current_span(note=_ENCODER_BUG)
        return x * 3

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        assert [work(i) for i in range(4)] == [0, 3, 6, 9]
        tracemend.flush()
    assert calls == [0, 1, 2, 3]
    assert len(_internal_warnings(caplog)) == 1
    # Nothing vanishes silently: the lost spans are counted as failed, apart from queue-full drops.
    stats = tracemend.stats()
    assert stats["failed"] == 4 and stats["dropped"] == 0 and stats["lost"] == 0
    with Store(spine_store) as store:
        assert store.count() == 0


def test_str_subclass_with_broken_len_is_recorded(spine_store: Path) -> None:
    @tracemend.track
    def work(x: int) -> int:
        tracemend.update_current_span(note=Unmeasurable("kept"))
        return x

    work(1)
    assert only_trace(spine_store).spans[0].attributes["note"] == "kept"


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_object_with_raising_repr_is_recorded(spine_store: Path) -> None:
    @tracemend.track
    def takes(obj: Any, items: set[Any]) -> Any:
        return obj

    bad = BadRepr()
    assert takes(bad, {BadRepr(), BadRepr()}) is bad
    trace = read_traces(spine_store)[0]
    assert trace.input["obj"]["__repr__"] == "<unrepresentable: RuntimeError>"
    assert trace.input["obj"]["__type__"].endswith("BadRepr")
    assert len(trace.input["items"]) == 2
    assert trace.output["__repr__"] == "<unrepresentable: RuntimeError>"


def test_broken_config_keeps_the_trace(spine_store: Path, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenConfig(tracemend.Config):
        model: str = "m"

        def model_dump(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("config bug")

    calls: list[str] = []

    @tracemend.track
    def run(question: str, config: BrokenConfig) -> str:
        calls.append(question)
        return "answer"

    with caplog.at_level(logging.WARNING, logger="tracemend"):
        assert run("q", BrokenConfig()) == "answer"
        assert run("q2", config=BrokenConfig()) == "answer"
        traces = read_traces(spine_store)
    assert calls == ["q", "q2"]
    assert [t.output for t in traces] == ["answer", "answer"]
    assert all(t.config is None for t in traces)
    assert len(_internal_warnings(caplog)) == 1


def test_unusable_store_never_reaches_user_code(
    tmp_path: Path, spine_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = tmp_path / "not-a-store.db"
    foreign.write_bytes(b"hello, I am a text file\n")
    tracemend.configure(db_path=foreign)

    @tracemend.track
    def work(x: int) -> int:
        return -x

    with caplog.at_level(logging.ERROR, logger="tracemend"):
        assert [work(i) for i in range(3)] == [0, -1, -2]
        tracemend.flush()
    assert foreign.read_bytes() == b"hello, I am a text file\n"
    # Lost to an unusable store: counted as lost, not as queue-full drops.
    assert tracemend.stats()["lost"] == 3 and tracemend.stats()["dropped"] == 0
    assert "not a tracemend store" in (tracemend.stats()["store_error"] or "")
