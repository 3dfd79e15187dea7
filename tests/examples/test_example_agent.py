"""The bundled support agent runs offline and records complete, rerunnable traces."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracemend
from tracemend.examples.support_agent import SupportConfig, handle_ticket
from tracemend.examples.support_agent.tools import OrderNotFound
from tracemend.replay import call, prepare_call
from tracemend.store import Store


def test_answers_tickets_and_records_spans(store_path: Path) -> None:
    reply = handle_ticket("Refund for A1005 please, wrong size", "c-31", SupportConfig())
    assert "within the refund window (30 days)" in reply
    with pytest.raises(OrderNotFound):
        handle_ticket("Where is my order A4242?", "c-1", SupportConfig())
    tracemend.flush()
    with Store(store_path) as store:
        traces = list(store.iter_traces(with_spans=True))
    ok, failed = traces
    assert ok.status == "ok" and failed.status == "error"
    assert ok.entry_point == "tracemend.examples.support_agent.agent:handle_ticket"
    assert [s.name for s in ok.spans] == ["handle_ticket", "plan", "lookup_order", "refund_policy", "compose"]
    assert {s.kind for s in ok.spans} == {"agent", "llm", "tool"}
    assert ok.config is not None and ok.config["model"] == "offline"
    assert ok.config_class == "tracemend.examples.support_agent.config:SupportConfig"
    assert ok.config_param == "config" and ok.tags == ["support"]
    assert failed.error is not None and failed.error.type.endswith("OrderNotFound")
    top = failed.error.top_in_app_frame()
    assert top is not None and top.function == "lookup_order"


def test_recorded_trace_replays_to_the_same_output(store_path: Path) -> None:
    handle_ticket("Can I return order A1006?", "c-40", SupportConfig(temperature=0.3))
    tracemend.flush()
    with Store(store_path) as store:
        trace = next(store.iter_traces())
    fn, args, kwargs = prepare_call(
        trace.entry_point,
        trace.input,
        config=trace.config,
        config_class=trace.config_class,
        config_param=trace.config_param,
    )
    assert isinstance(kwargs["config"], SupportConfig) and kwargs["config"].temperature == 0.3
    assert call(fn, args, kwargs) == trace.output
