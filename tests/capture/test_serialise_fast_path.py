"""The writer's short path for plain calls (``Encoder.flat``) gives what the general path gives, or steps
aside: every input below is encoded both ways and compared, texts collected for the redaction scan included.
And the recorder's trace ids carry the time in their top 16 bits."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracemend
from tracemend.capture.encode import Encoder
from tracemend.capture.redact import Redactor
from tracemend.capture.serialise import bind, flat_input
from tracemend.capture.spec import make_spec
from tracemend.capture.state import SpanRecord

from helpers.spine import read_traces


def _record(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> SpanRecord:
    rec = SpanRecord()
    rec.spec = make_spec(
        fn, name=None, kind="tool", capture_input=True, capture_output=True, config=None, tags=None
    )
    rec.args, rec.kwargs = args, kwargs or {}
    return rec


def _encoder(redactor: Redactor | None, **limits: int) -> Encoder:
    return Encoder(redactor=redactor, scrub=False, **limits)


def _both_ways(rec: SpanRecord, redactor: Redactor | None, **limits: int) -> tuple[Any, Any]:
    """(short path's result and texts, or None; the general path's result and texts)."""
    short, general = _encoder(redactor, **limits), _encoder(redactor, **limits)
    fast = flat_input(rec, short)
    return (None if fast is None else (fast, short.texts)), (general.encode(bind(rec)), general.texts)


def two(question: Any, n: Any) -> None:
    return None


class Agent:
    def run(self, question: Any, n: Any) -> None:
        return None


PLAIN = [
    ("q", 1),
    ("", 0),
    ("x" * 50, -(2**63)),
    (None, True),
    ("tab\tand\nnewline", 2.5),
    ("q", -0.0),
    ("q", 2**200),
]


@pytest.mark.parametrize("args", PLAIN)
@pytest.mark.parametrize("redactor", [Redactor(), None], ids=["redacting", "no-redaction"])
def test_plain_calls_take_the_short_path_and_match_the_general_one(
    args: tuple[Any, ...], redactor: Redactor | None
) -> None:
    fast, general = _both_ways(_record(two, args), redactor)
    assert fast is not None
    assert fast == general


@pytest.mark.parametrize(
    "args",
    [
        ("é", 1),  # non-ASCII text is checked for lone surrogates
        ("q", float("nan")),
        ("q", math.inf),
        ("q", 2**13000),  # past the int limit: marked, not printed
        ("x" * 101, 1),  # past the string limit: cut
        (["a"], 1),
        ({"k": "v"}, 1),
        (b"bytes", 1),
        (type("S", (str,), {})("sub"), 1),  # a str subclass
    ],
    ids=["non-ascii", "nan", "inf", "huge-int", "long", "list", "dict", "bytes", "str-subclass"],
)
def test_anything_but_a_plain_scalar_takes_the_general_path(args: tuple[Any, ...]) -> None:
    fast, general = _both_ways(_record(two, args), Redactor(), max_string_chars=100)
    assert fast is None
    assert general[0]["question"] is not None


def test_secret_parameter_names_keyword_calls_and_scrubbing_take_the_general_path() -> None:
    def login(user: str, password: str) -> None:
        return None

    fast, general = _both_ways(_record(login, ("ada", "hunter2")), Redactor())
    assert fast is None and general[0] == {"user": "ada", "password": "[REDACTED]"}
    assert _both_ways(_record(two, ("q",), {"n": 1}), Redactor())[0] is None
    scrubbing = Encoder(redactor=Redactor(), scrub=True)
    assert flat_input(_record(two, ("q", 1)), scrubbing) is None
    # The user's own key names count as secret names too.
    assert _both_ways(_record(two, ("q", 1)), Redactor(keys=["question"]))[0] is None


def test_methods_leave_self_out_on_both_paths() -> None:
    rec = _record(Agent.run, (Agent(), "q", 3))
    fast, general = _both_ways(rec, Redactor())
    assert fast == general and fast is not None and fast[0] == {"question": "q", "n": 3}


def test_limits_that_a_flat_call_could_break_send_it_the_general_way() -> None:
    fast, general = _both_ways(_record(two, ("q", 1)), Redactor(), max_items=1)
    assert fast is None and general[0] == {"question": "q", "…": "[+1 more items]"}
    fast, general = _both_ways(_record(two, ("q", 1)), Redactor(), max_depth=0)
    assert fast is None and "__repr__" in general[0]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.tuples(scalars, scalars))
def test_short_path_never_differs_from_the_general_one(args: tuple[Any, Any]) -> None:
    fast, general = _both_ways(_record(two, args), Redactor(), max_string_chars=20)
    if fast is not None:
        assert fast == general


def test_trace_ids_carry_the_time_in_their_top_16_bits_and_are_random_below(spine_store: Path) -> None:
    @tracemend.track
    def f(i: int) -> int:
        return i

    before = time.time_ns() >> 30
    for i in range(50):
        f(i)
    after = time.time_ns() >> 30
    ids = [int(t.trace_id, 16) for t in read_traces(spine_store)]
    assert len(ids) == 50
    assert {i >> 112 for i in ids} <= {t & 0xFFFF for t in range(before, after + 1)}
    # Below the prefix: 112 random bits, so the 12 hex digits the CLI prints still tell traces apart.
    assert len({f"{i:032x}"[:12] for i in ids}) == 50
