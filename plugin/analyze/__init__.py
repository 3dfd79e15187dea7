"""The analyzer: failing traces → signatures → gated findings for a deploy.

``signatures`` turns one failure into its fingerprint, ``gating`` decides from counts (numpy/scipy, loaded
only when a gate runs), ``findings`` scans the store and builds :class:`~tracemend.records.Finding`
records, ``listing`` the signature list. Failures that raise nothing: ``rules`` (online judging rules), ``evaluation`` (judge sampled
traces, store the verdicts as scores), ``judged`` (failed scores as signatures, gated by the traces
judged). Names are loaded on first use so that ``tracemend.analyze.signatures`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_ALPHA": "findings",
    "DEFAULT_BASELINE": "findings",
    "DEFAULT_LOOKBACK": "findings",
    "DEFAULT_WINDOW": "findings",
    "Analysis": "findings",
    "AnalyzeError": "findings",
    "SignatureSummary": "listing",
    "analyze": "findings",
    "find_deploy": "findings",
    "list_signatures": "listing",
    "planned_looks": "findings",
    "Rule": "rules",
    "load_rules": "rules",
    "select_rules": "rules",
    "Evaluation": "evaluation",
    "RuleReport": "evaluation",
    "aevaluate": "evaluation",
    "evaluate": "evaluation",
    "ajudge_trace": "evaluation",
    "judge_trace": "evaluation",
    "category_template": "judged",
    "judged_signature": "judged",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
