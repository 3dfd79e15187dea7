"""Hypothesis strategies and settings shared by the ``@track`` transparency tests (tests/capture)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import tracemend

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
options = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=10),
        "kind": st.sampled_from(["agent", "llm", "tool", "retrieval", "general"]),
        "capture_input": st.booleans(),
        "capture_output": st.booleans(),
        "tags": st.lists(st.text(max_size=5), max_size=3),
    },
)


def decorate(fn: Any, opts: dict[str, Any] | None) -> Any:
    """``@track`` bare when opts is None, else ``@track(**opts)``."""
    return tracemend.track(fn) if opts is None else tracemend.track(**opts)(fn)


maybe_options = st.none() | options
