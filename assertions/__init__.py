"""Plain-English assertions, deterministic checks, the LLM judge and the pytest regression suite.

``tracemend.assertions.judge(output, ["The reply states the refund window in days"], input=...)`` returns a
``JudgeVerdict`` and works in any test. Everything loads lazily: this package is imported by the pytest
plugin in every pytest run where tracemend is installed, so it must cost nothing until used.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Check",
    "JudgeCacheMiss",
    "JudgeStats",
    "JudgeVerdict",
    "RegressionCase",
    "VerdictCache",
    "ajudge",
    "judge",
    "load_case",
    "run_checks",
    "write_case",
]

# The judge lives in ``judging``, so that ``tracemend.assertions.judge`` is the function, never a submodule.
_LAZY = {
    "judge": ("judging", "judge"),
    "ajudge": ("judging", "ajudge"),
    "JudgeStats": ("judging", "JudgeStats"),
    "VerdictCache": ("cache", "VerdictCache"),
    "run_checks": ("checks", "run_checks"),
    "load_case": ("case", "load_case"),
    "write_case": ("case", "write_case"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    if name in ("Check", "RegressionCase", "JudgeVerdict"):
        from tracemend import records

        return getattr(records, name)
    if name == "JudgeCacheMiss":
        from tracemend.errors import JudgeCacheMiss

        return JudgeCacheMiss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
