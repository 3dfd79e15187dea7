"""Deterministic checks on a rerun's outcome: no model needed, so they run first and cost nothing.

Kinds (``records.Check.kind``) and their ``value``:

- ``raises``: an exception type name (``ValueError``, ``pkg.errors.RefundError``); the call must raise it
  (or a subclass). ``not_raises``: the call must not raise that type; with no value, must not raise at all.
- ``contains`` / ``not_contains``: a string or a list of strings, searched in the output's text.
- ``regex``: a Python regular expression searched in the output's text.
- ``equals``: the output equals the value (compared as JSON data).
- ``json_schema``: the output (or the JSON in it, when it is a string) validates against the schema.
- ``max_latency_ms``: the call took at most this many milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tracemend.records import Check

OUTPUT_KINDS = ("contains", "not_contains", "regex", "equals", "json_schema")
# Every kind, with what its value is (shown by `tracemend lock --help` and in errors).
KINDS = {
    "raises": "the call raises this exception type (or a subclass): raises=KeyError",
    "not_raises": "the call does not raise this type (not_raises=KeyError), or nothing at all (not_raises)",
    "contains": "the output's text contains this string: contains='30 days'",
    "not_contains": "the output's text does not contain this string",
    "regex": "a Python regular expression found in the output's text",
    "equals": "the output equals this JSON value (or @file.json)",
    "json_schema": "the output validates against this JSON schema (or @schema.json)",
    "max_latency_ms": "the call takes at most this many milliseconds",
}
_TYPE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# Values a person means as "yes"/"no", never as an exception type's name.
_NOT_TYPE_NAMES = {"true", "false", "yes", "no", "on", "off", "none", "null", "1", "0"}


def _type_name_problem(kind: str, value: Any) -> str | None:
    usage = f"{kind} takes an exception type name ({kind}=KeyError)"
    if kind == "not_raises":
        usage += " or nothing (not_raises: the call must not raise at all)"
    if not isinstance(value, str) or not value.strip():
        return usage
    if value.strip().lower() in _NOT_TYPE_NAMES or not _TYPE_NAME.fullmatch(value.strip()):
        return f"{value!r} is not an exception type name; {usage}"
    return None


@dataclass
class CheckResult:
    check: Check
    passed: bool
    message: str

    def describe(self) -> str:
        return f"{self.check.kind}={_short(self.check.value)}"


@dataclass
class CallOutcome:
    """What a call produced: its output, or the exception it raised, and how long it took."""

    output: Any = None
    error: BaseException | None = None
    latency_ms: float = 0.0


def to_data(value: Any) -> Any:
    """JSON-ready data for outputs that are pydantic models, dataclasses, tuples, sets."""
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value)


def output_text(output: Any) -> str:
    """The text checks search and the judge reads: strings as they are, anything else as sorted JSON."""
    if isinstance(output, str):
        return output
    if output is None:
        return ""
    return json.dumps(to_data(output), indent=2, sort_keys=True, ensure_ascii=False)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_matches(exc: BaseException, name: str) -> bool:
    for cls in type(exc).__mro__:
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if name in (cls.__name__, cls.__qualname__, qualified):
            return True
    return False


def validate_check(check: Check) -> str | None:
    """Why a check's value cannot work (checked when a case is loaded), or None."""
    kind, value = check.kind, check.value
    if kind == "raises" or (kind == "not_raises" and value is not None):
        problem = _type_name_problem(kind, value)
        if problem:
            return problem
    if kind in ("contains", "not_contains"):
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i for i in items):
            return f"{kind} needs a non-empty string or a list of them"
    if kind == "regex":
        if not isinstance(value, str):
            return "regex needs a pattern string"
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression: {exc}"
    if kind == "json_schema":
        if not isinstance(value, dict):
            return "json_schema needs a JSON schema mapping"
        import jsonschema

        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            return f"invalid JSON schema: {exc.message}"
    if kind == "max_latency_ms" and (
        isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
    ):
        return "max_latency_ms needs a positive number"
    return None


def run_check(check: Check, outcome: CallOutcome) -> CheckResult:
    kind, value = check.kind, check.value
    error = outcome.error
    problem = validate_check(check)
    if problem:
        return CheckResult(check, False, problem)
    if kind == "raises":
        if error is None:
            return CheckResult(check, False, f"expected {value} to be raised; the call returned normally")
        ok = _type_matches(error, value)
        raised = f"{type(error).__name__}: {error}"
        return CheckResult(
            check, ok, f"raised {raised}" if ok else f"expected {value}, but it raised {raised}"
        )
    if kind == "not_raises":
        if error is None:
            return CheckResult(check, True, "did not raise")
        if value is None or _type_matches(error, value):
            return CheckResult(check, False, f"raised {type(error).__name__}: {error}")
        return CheckResult(check, True, f"raised {type(error).__name__}, not {value}")
    if kind == "max_latency_ms":
        ok = outcome.latency_ms <= float(value)
        return CheckResult(check, ok, f"took {outcome.latency_ms:.0f} ms (limit {value} ms)")
    if error is not None:
        return CheckResult(
            check, False, f"no output to check: the call raised {type(error).__name__}: {error}"
        )
    text = output_text(outcome.output)
    if kind in ("contains", "not_contains"):
        needles = value if isinstance(value, list) else [value]
        missing = [n for n in needles if n not in text]
        present = [n for n in needles if n in text]
        if kind == "contains":
            return CheckResult(check, not missing, "all present" if not missing else f"missing {missing}")
        return CheckResult(check, not present, "none present" if not present else f"found {present}")
    if kind == "regex":
        match = re.search(value, text)
        return CheckResult(check, match is not None, f"matched {match.group(0)!r}" if match else "no match")
    if kind == "equals":
        actual = to_data(outcome.output)
        ok = actual == value
        return CheckResult(check, ok, "equal" if ok else f"got {_short(actual, 200)}")
    if kind == "json_schema":
        import jsonschema

        data = outcome.output
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                return CheckResult(check, False, "output is not JSON")
        else:
            data = to_data(data)
        validator = jsonschema.validators.validator_for(value)(value)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if not errors:
            return CheckResult(check, True, "valid")
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return CheckResult(check, False, f"{where}: {first.message}")
    return CheckResult(check, False, f"unknown check kind {kind!r}")


def run_checks(checks: list[Check], outcome: CallOutcome) -> list[CheckResult]:
    return [run_check(check, outcome) for check in checks]


def parse_check(text: str) -> Check:
    """``kind=value`` from the command line: ``contains=30 days``, ``raises=ValueError``,
    ``max_latency_ms=2000``, ``json_schema={"type": "object"}``, ``equals=@expected.json``, ``not_raises``."""
    kind, sep, raw = text.partition("=")
    kind = kind.strip()
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, list(KINDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{text!r}: unknown check kind {kind!r}; {hint}kinds: {', '.join(KINDS)}")
    value: Any = raw if sep else None
    if isinstance(value, str) and value.startswith("@"):
        from pathlib import Path

        value = Path(value[1:]).read_text(encoding="utf-8")
        if kind in ("equals", "json_schema"):
            value = json.loads(value)
    elif kind in ("equals", "json_schema") and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            if kind == "json_schema":
                raise ValueError(f"{text!r}: the schema is not JSON") from None
    elif kind == "max_latency_ms" and isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            raise ValueError(f"{text!r}: max_latency_ms needs a number") from None
    check = Check(kind=kind, value=value)  # type: ignore[arg-type]
    problem = validate_check(check)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    return check
