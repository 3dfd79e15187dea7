"""Plain-English assertions, deterministic checks, the LLM judge and the pytest regression suite.

``tracemend.assertions.judge(output, ["The reply states the refund window in days"], input=...)`` returns a
``JudgeVerdict`` and works in any test. Everything loads lazily: this package is imported by the pytest
plugin in every pytest run where tracemend is installed, so it must cost nothing until used.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracemend.assertions.cache import VerdictCache
    from tracemend.assertions.judge import JudgeStats
    from tracemend.records import JudgeVerdict

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

_LAZY = {
    "ajudge": ("judge", "ajudge"),
    "JudgeStats": ("judge", "JudgeStats"),
    "VerdictCache": ("cache", "VerdictCache"),
    "run_checks": ("checks", "run_checks"),
    "load_case": ("case", "load_case"),
    "write_case": ("case", "write_case"),
}


def judge(
    output: Any,
    assertions: Sequence[str] | str,
    *,
    input: Any = None,
    model: str | None = None,
    samples: int = 1,
    cache: VerdictCache | str | None = "default",
    stats: JudgeStats | None = None,
) -> JudgeVerdict:
    """Judge ``output`` against plain-English assertions (see :func:`tracemend.assertions.judge.judge`)."""
    from tracemend.assertions.judge import judge as _judge

    return _judge(output, assertions, input=input, model=model, samples=samples, cache=cache, stats=stats)  # type: ignore[arg-type]


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


class _Package(types.ModuleType):
    # The submodule ``judge`` shares its name with the public function. Importing a submodule sets it as an
    # attribute of the package; this keeps ``tracemend.assertions.judge`` the function whatever the import order.
    @property
    def judge(self):  # type: ignore[no-untyped-def]
        return _judge_function

    @judge.setter
    def judge(self, value: Any) -> None:
        if callable(value) and not isinstance(value, types.ModuleType):
            global _judge_function
            _judge_function = value


_judge_function = judge
sys.modules[__name__].__class__ = _Package
