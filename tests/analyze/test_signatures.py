"""Signatures: parameterization of messages, fingerprints of traces, and the corpus pass."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracemend.analyze import signatures
from tracemend.analyze.signatures import (
    ERROR_STATUS_TYPE,
    FAILED_ASSERTION_TYPE,
    SIGNATURE_VERSION,
    merge_templates,
    signature_of,
    template,
    template_uncached,
)
from tracemend.records import ErrorInfo, Frame, Trace

CORPUS = Path(__file__).parent / "agent_errors.jsonl"


def _corpus() -> list[dict[str, str]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_corpus_groups_exactly_by_type_and_template() -> None:
    """Every labelled group of realistic agent errors maps to one key, and no two groups share one."""
    keys_of_group: dict[str, set[tuple[str, str]]] = defaultdict(set)
    groups_of_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in _corpus():
        key = (row["type"], template(row["message"]))
        keys_of_group[row["group"]].add(key)
        groups_of_key[key].add(row["group"])
    split = {g: k for g, k in keys_of_group.items() if len(k) > 1}
    merged = {k: g for k, g in groups_of_key.items() if len(g) > 1}
    assert not split, split
    assert not merged, merged
    assert len(keys_of_group) >= 25


def test_templates_of_same_type_still_differ_by_message() -> None:
    rows = _corpus()
    json_groups = {template(r["message"]) for r in rows if r["type"] == "json.decoder.JSONDecodeError"}
    assert len(json_groups) == 3


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("tool call call_Xk92LmQ0aZ failed", "tool call call_1 failed"),
        ("request req_011CUjQ3x9 rejected", "request req_7 rejected"),
        ("Deleting block blk_-6952295868487656571", "Deleting block blk_38865049064139660"),
        ("user 3f2b8c1e-9d4a-4b6e-8f1a-2c3d4e5f6a7b missing", "user 42 missing"),
        (
            "digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 bad",
            "digest 0xdeadbeef bad",
        ),
        ("took 1.5e-3 s", "took 12,000 s"),
        ("connect to 10.0.0.1:5432 failed", "connect to db.prod.internal:5432 failed"),
        ("connect to 10.0.0.1:5432 failed", "connect to [2001:db8::1]:5432 failed"),
        ("GET https://a.example.com/x?y=1 failed", "GET http://localhost:8080/ failed"),
        ("open /var/log/app/x.log", "open C:\\logs\\app.log"),
        ("mail to jane@example.com bounced", "mail to bob+x@corp.example.org bounced"),
        ("at 2026-11-02T10:15:42Z", "at 1762078542"),
        ("slept 250ms", "slept 3 s"),
        ("value 'abc' rejected", 'value "a longer quoted value, with commas" rejected'),
        ('payload {"a": 1, "b": [1, 2]} invalid', "payload {'x': {'y': None}} invalid"),
        ("<Foo object at 0x7f3a2c1d9e50>", "<Foo object at 0x10a4b3f70>"),
        ("flag=true", "flag=7"),
        ("retry in 2m", "retry in 45s"),
        ("Nov 21 10:00:01 failed", "Jan 3 23:59:59 failed"),
    ],
)
def test_same_slot_same_placeholder_whatever_the_shape(a: str, b: str) -> None:
    assert template(a) == template(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("AirPort: Link Up on en0", "AirPort: Link Down on en0"),
        ("connection refused", "connection reset"),
        ("Expecting ',' delimiter: line 1 column 5 (char 4)", "Extra data: line 1 column 5 (char 4)"),
    ],
)
def test_different_events_stay_apart(a: str, b: str) -> None:
    assert template(a) != template(b)


def test_truncation_happens_after_parameterizing() -> None:
    prefix = "refused: " + "policy text " * 30
    a = prefix + "reason one " + "1" * 5
    b = prefix + "reason two " + "2" * 900
    c = prefix + "reason one " + "7" * 900
    assert len(prefix) > 200
    assert template(a) != template(b)
    assert template(a) == template(c)
    huge = "x " * 5000
    assert len(template(huge)) <= signatures.MAX_TEMPLATE_CHARS + 1


def test_multiline_messages_are_normalised() -> None:
    a = "1 validation error for Order\nqty\n  Input should be a valid integer [type=int_parsing, input_value='x', input_type=str]"
    b = "1 validation error for Order\r\nqty\n\n  Input should be a valid integer [type=int_parsing, input_value='yy', input_type=str]"
    assert template(a) == template(b)
    assert "\n" not in template(a)


def test_cache_is_exact() -> None:
    messages = [r["message"] for r in _corpus()]
    cached = [template(m) for m in messages]
    signatures.clear_caches()
    assert [template_uncached(m) for m in messages] == cached
    assert template("") == ""


def test_template_is_readable() -> None:
    out = template(
        "Rate limit reached for gpt-4o in organization org-123 on tokens per min: Limit 30000, Used 29876"
    )
    assert out.startswith("Rate limit reached for <*> in organization <*> on tokens per min: Limit <*>")


def _trace(**kw) -> Trace:
    base = dict(
        trace_id="ab" * 16,
        entry_point="app.agent:run",
        name="run",
        status="error",
        start_time=datetime(2026, 11, 2, tzinfo=UTC),
    )
    base.update(kw)
    return Trace(**base)


def _error(message: str, line: int, *, cause: ErrorInfo | None = None, etype: str = "KeyError") -> ErrorInfo:
    return ErrorInfo(
        type=etype,
        message=message,
        frames=[
            Frame(file="/usr/lib/python3/json/decoder.py", line=3, function="decode", module="json.decoder"),
            Frame(file="app/tools.py", line=line, function="refund_policy", module="app.tools", in_app=True),
            Frame(file="/site-packages/lib.py", line=9, function="inner", module="lib"),
        ],
        cause=cause,
        cause_kind="cause" if cause else None,
    )


def test_signature_ignores_line_numbers_and_parameters() -> None:
    a = signature_of(_trace(error=_error("'uk'", 12)))
    b = signature_of(_trace(error=_error("'gb'", 99)))
    assert a.signature_id == b.signature_id
    assert a.signature_version == SIGNATURE_VERSION
    assert a.frame == "app.tools:refund_policy"
    assert a.exception_types == ["KeyError"]
    assert a.kind == "exception"


def test_signature_includes_the_cause_chain() -> None:
    cause = _error("Expecting value: line 1 column 1 (char 0)", 5, etype="json.decoder.JSONDecodeError")
    a = signature_of(_trace(error=_error("bad tool output", 12, cause=cause, etype="agent.ToolError")))
    b = signature_of(_trace(error=_error("bad tool output", 12, etype="agent.ToolError")))
    assert a.exception_types == ["agent.ToolError", "json.decoder.JSONDecodeError"]
    assert a.signature_id != b.signature_id


def test_non_exception_failures_have_signatures() -> None:
    fa = signature_of(
        _trace(status="failed_assertion", metadata={"assertion": "answer cites order 1234"}, error=None)
    )
    fa2 = signature_of(
        _trace(status="failed_assertion", metadata={"assertion": "answer cites order 98"}, error=None)
    )
    st = signature_of(_trace(status="error", error=None, output={"error": "upstream said 503"}))
    assert fa.kind == "failed_assertion" and fa.exception_types == [FAILED_ASSERTION_TYPE]
    assert fa.signature_id == fa2.signature_id
    assert fa.template == "answer cites order <*>"
    assert st.kind == "error_status" and st.exception_types == [ERROR_STATUS_TYPE]
    assert st.signature_id != fa.signature_id
    assert fa.frame == "app.agent:run"


def test_status_failures_stored_by_the_writer_match_bare_statuses() -> None:
    """@track stores a failed assertion as an error of type tracemend.FailedAssertion without frames."""
    bare = signature_of(
        _trace(status="failed_assertion", error=None, metadata={"assertion": "cites order 12"})
    )
    stored = signature_of(
        _trace(
            status="failed_assertion", error=ErrorInfo(type=FAILED_ASSERTION_TYPE, message="cites order 7")
        )
    )
    assert stored.signature_id == bare.signature_id
    assert stored.kind == "failed_assertion" and stored.frame == "app.agent:run"
    status = signature_of(
        _trace(status="error", error=ErrorInfo(type=ERROR_STATUS_TYPE, message="quota hit"))
    )
    assert status.kind == "error_status" and status.template == "quota hit"


def test_version_is_part_of_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = _trace(error=_error("'uk'", 12))
    before = signature_of(trace).signature_id
    monkeypatch.setattr(signatures, "SIGNATURE_VERSION", SIGNATURE_VERSION + 1)
    assert signature_of(trace).signature_id != before


def test_merge_templates_finds_word_slots_but_keeps_small_enumerations() -> None:
    users = ["admin", "oracle", "pi", "guest", "test"]
    templates = [template(f"Invalid user {u} from 10.0.0.{i} port 22") for i, u in enumerate(users)]
    templates += [template("AirPort: Link Up on en0"), template("AirPort: Link Down on en0")]
    mapping = merge_templates(templates)
    assert {mapping[t] for t in templates[:5]} == {"Invalid user <*> from <*> port <*>"}
    assert mapping[template("AirPort: Link Up on en0")] != mapping[template("AirPort: Link Down on en0")]
    # Too few variants: not merged.
    few = [template(f"Invalid user {u} from 10.0.0.1 port 22") for u in users[:3]]
    assert len(set(merge_templates(few).values())) == 3


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, tracemend.analyze.signatures; print('pydantic' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
