"""Deterministic checks: each kind passes and fails for the right reason."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from tracemend.assertions.checks import CallOutcome, output_text, parse_check, run_check, validate_check
from tracemend.records import Check


class RefundError(ValueError):
    pass


class Reply(BaseModel):
    text: str
    days: int


def ok(output, latency=10.0):
    return CallOutcome(output=output, latency_ms=latency)


def raised(exc):
    return CallOutcome(error=exc, latency_ms=5.0)


def test_raises_matches_by_name_and_subclass():
    assert run_check(Check(kind="raises", value="RefundError"), raised(RefundError("late"))).passed
    assert run_check(Check(kind="raises", value="ValueError"), raised(RefundError("late"))).passed
    qualified = f"{RefundError.__module__}.RefundError"
    assert run_check(Check(kind="raises", value=qualified), raised(RefundError("late"))).passed
    result = run_check(Check(kind="raises", value="KeyError"), raised(RefundError("late")))
    assert not result.passed and "RefundError" in result.message
    assert not run_check(Check(kind="raises", value="ValueError"), ok("fine")).passed


def test_not_raises():
    assert run_check(Check(kind="not_raises"), ok("fine")).passed
    assert not run_check(Check(kind="not_raises"), raised(KeyError("k"))).passed
    assert run_check(Check(kind="not_raises", value="ValueError"), raised(KeyError("k"))).passed
    assert not run_check(Check(kind="not_raises", value="ValueError"), raised(RefundError("x"))).passed


def test_contains_and_not_contains():
    out = ok("Refunds within 30 days.")
    assert run_check(Check(kind="contains", value="30 days"), out).passed
    assert run_check(Check(kind="contains", value=["Refunds", "30 days"]), out).passed
    missing = run_check(Check(kind="contains", value=["30 days", "receipt"]), out)
    assert not missing.passed and "receipt" in missing.message
    assert run_check(Check(kind="not_contains", value="refund approved"), out).passed
    assert not run_check(Check(kind="not_contains", value="30 days"), out).passed


def test_output_checks_fail_when_the_call_raised():
    result = run_check(Check(kind="contains", value="x"), raised(RuntimeError("boom")))
    assert not result.passed and "RuntimeError" in result.message


def test_regex_equals_and_structured_outputs():
    assert run_check(Check(kind="regex", value=r"\b\d+ days\b"), ok("within 30 days")).passed
    assert not run_check(Check(kind="regex", value=r"^\d+$"), ok("within 30 days")).passed
    assert run_check(
        Check(kind="equals", value={"text": "hi", "days": 30}), ok(Reply(text="hi", days=30))
    ).passed
    assert run_check(Check(kind="equals", value=[1, 2]), ok((1, 2))).passed
    assert not run_check(Check(kind="equals", value="a"), ok("b")).passed
    assert '"days": 30' in output_text(Reply(text="hi", days=30))


def test_json_schema():
    schema = {
        "type": "object",
        "required": ["days"],
        "properties": {"days": {"type": "integer", "maximum": 30}},
    }
    assert run_check(Check(kind="json_schema", value=schema), ok('{"days": 30}')).passed
    assert run_check(Check(kind="json_schema", value=schema), ok(Reply(text="x", days=14))).passed
    bad = run_check(Check(kind="json_schema", value=schema), ok({"days": 45}))
    assert not bad.passed and "days" in bad.message
    assert not run_check(Check(kind="json_schema", value=schema), ok("not json")).passed


def test_max_latency():
    assert run_check(Check(kind="max_latency_ms", value=100), ok("x", latency=99.0)).passed
    assert not run_check(Check(kind="max_latency_ms", value=100), ok("x", latency=101.0)).passed


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        (Check(kind="regex", value="(unclosed"), "invalid regular expression"),
        (Check(kind="json_schema", value={"type": "nonsense"}), "invalid JSON schema"),
        (Check(kind="max_latency_ms", value=-1), "positive number"),
        (Check(kind="contains", value=""), "non-empty"),
        (Check(kind="raises"), "exception type"),
    ],
)
def test_bad_values_are_named(check, problem):
    assert problem in (validate_check(check) or "")
    assert not run_check(check, ok("x")).passed


def test_parse_check_from_command_line(tmp_path):
    assert parse_check("contains=30 days") == Check(kind="contains", value="30 days")
    assert parse_check("max_latency_ms=2000") == Check(kind="max_latency_ms", value=2000)
    assert parse_check("not_raises") == Check(kind="not_raises", value=None)
    assert parse_check('json_schema={"type": "object"}').value == {"type": "object"}
    assert parse_check("equals=42").value == 42
    assert parse_check("equals=plain text").value == "plain text"
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "string"}')
    assert parse_check(f"json_schema=@{schema}").value == {"type": "string"}
    with pytest.raises(ValueError, match="regular expression"):
        parse_check("regex=(")
    with pytest.raises(ValueError):
        parse_check("containz=x")


@pytest.mark.parametrize("word", ["true", "false", "yes", "1", "not a name", "Key-Error"])
def test_a_raises_value_must_name_an_exception_type(word):
    with pytest.raises(ValueError, match="is not an exception type name"):
        parse_check(f"not_raises={word}")
    with pytest.raises(ValueError, match="is not an exception type name"):
        parse_check(f"raises={word}")
    # A case file holding such a value fails its check instead of passing while the call raises.
    result = run_check(Check(kind="not_raises", value=word), raised(RefundError("late")))
    assert not result.passed and "not an exception type name" in result.message


def test_unknown_check_kinds_are_named_with_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown check kind 'containz'; did you mean 'contains'\? kinds: raises,"
    ):
        parse_check("containz=x")
    assert parse_check("not_raises") == Check(kind="not_raises", value=None)
    assert parse_check("not_raises=pkg.errors.RefundError").value == "pkg.errors.RefundError"


def test_lock_help_lists_every_check_kind():
    from typer.testing import CliRunner

    from tracemend.assertions.checks import KINDS
    from tracemend.cli import build_app

    result = CliRunner().invoke(build_app(), ["lock", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for kind in KINDS:
        assert f"{kind}:" in text
