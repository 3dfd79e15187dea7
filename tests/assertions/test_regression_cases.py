"""Regression-case YAML files: round trip, schema errors with file and line, building from a trace."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from tracemend.assertions.case import CaseFileError, iter_case_files, load_case, write_case
from tracemend.assertions.lock import case_from_trace
from tracemend.records import Check, Provenance, RegressionCase, Trace


def _write(tmp_path, text, name="case.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_round_trip(tmp_path):
    case = RegressionCase(
        name="Refund window: old orders",
        entry_point="support_agent.agent:answer",
        input={"question": "Can I return a 45-day-old order?\nIt was a gift.", "order_age_days": 45},
        config={"model": "openai/gpt-4o-mini", "temperature": 0.2},
        config_class="support_agent.agent:AgentConfig",
        config_param="config",
        assertions=["The reply states the refund window in days", "It never promises a refund"],
        checks=[
            Check(kind="not_contains", value="refund approved"),
            Check(kind="max_latency_ms", value=5000),
        ],
        provenance=Provenance(
            source_trace_id="ab" * 16,
            signature_id="sig1",
            fixed_in_commit="c0ffee",
            locked_at=datetime(2026, 1, 2, tzinfo=UTC),
        ),
        marks=["refunds"],
    )
    path = write_case(case, tmp_path / "regressions")
    assert path.name == "refund_window_old_orders.yaml"
    text = path.read_text()
    assert text.startswith("# tracemend regression case")
    assert "question: |-" in text or "question: |" in text  # multi-line strings stay readable
    assert load_case(path) == case
    # Names are never overwritten silently.
    assert write_case(case, tmp_path / "regressions").name == "refund_window_old_orders_2.yaml"
    assert len(iter_case_files(tmp_path / "regressions")) == 2


def test_unknown_check_kind_names_file_and_line(tmp_path):
    path = _write(
        tmp_path,
        """
        name: x
        entry_point: mod:fn
        assertions: [a]
        checks:
          - kind: contains
            value: ok
          - kind: containz
            value: nope
        """,
    )
    with pytest.raises(CaseFileError) as info:
        load_case(path)
    assert info.value.line == 7
    assert str(info.value).startswith(f"{path}:7: checks.1.kind")


def test_missing_field_and_unknown_field(tmp_path):
    with pytest.raises(CaseFileError, match="entry_point: Field required"):
        load_case(_write(tmp_path, "name: x\nassertions: [a]\n"))
    with pytest.raises(CaseFileError) as info:
        load_case(_write(tmp_path, "name: x\nentry_point: m:f\nassertions: [a]\nasserts: [b]\n", "b.yaml"))
    assert info.value.line == 4 and "asserts" in info.value.reason


def test_yaml_syntax_error_has_a_line(tmp_path):
    with pytest.raises(CaseFileError) as info:
        load_case(_write(tmp_path, "name: x\nentry_point: m:f\nassertions: [a\n  b: c\n"))
    assert info.value.line is not None and "invalid YAML" in info.value.reason


def test_semantic_errors(tmp_path):
    with pytest.raises(CaseFileError, match="module:qualname"):
        load_case(_write(tmp_path, "name: x\nentry_point: just_a_name\nassertions: [a]\n"))
    with pytest.raises(CaseFileError, match=r":4: checks.0 \(regex\): invalid regular expression"):
        load_case(
            _write(tmp_path, "name: x\nentry_point: m:f\nchecks:\n  - {kind: regex, value: '('}\n", "r.yaml")
        )
    with pytest.raises(CaseFileError, match="at least one assertion or check"):
        load_case(_write(tmp_path, "name: x\nentry_point: m:f\n", "e.yaml"))
    with pytest.raises(CaseFileError, match="must be a mapping"):
        load_case(_write(tmp_path, "- a\n- b\n", "l.yaml"))


def test_case_from_trace():
    trace = Trace(
        trace_id="f" * 32,
        entry_point="support_agent.agent:answer",
        name="answer",
        input={"question": "refund?", "config": {"model": "m"}},
        config={"model": "m"},
        config_class="support_agent.agent:AgentConfig",
        config_param="config",
        start_time=datetime.now(UTC),
        status="error",
    )
    case = case_from_trace(
        trace, assertions=["Says 30 days"], checks=[Check(kind="not_raises")], fixed_in_commit="abc"
    )
    # The config is stored once, under `config`, not again inside the input.
    assert case.entry_point == trace.entry_point and case.input == {"question": "refund?"}
    assert case.config == {"model": "m"}
    assert case.config_param == "config" and case.provenance.source_trace_id == trace.trace_id
    assert case.provenance.fixed_in_commit == "abc" and case.provenance.locked_at is not None
    assert case.name == "answer ffffffff"
