"""Locked regression cases as Opik Test Suite items: the recorded input to rerun and the plain-English
assertions an LLM judge checks.

Cases are the YAML files ``tracemend lock`` writes (one :class:`~tracemend.records.RegressionCase` per
file, or a list of them, or ``{"cases": [...]}``), read by :func:`tracemend.assertions.case.load_cases`. Each becomes one suite item whose ``data`` holds the
entry point, input, config, deterministic checks and provenance, and whose ``assertions`` are the
case's plain-English assertions. Item ids are derived from the case name, so exporting again updates
the items instead of adding copies. SDKs without test suites get a dataset with the same items.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend.assertions.case import load_cases
from tracemend.errors import CaseFileError
from tracemend.export.opik import DEFAULT_OPIK_URL, opik_client
from tracemend.export.opik_delivery import Deliveries, preflight
from tracemend.export.otel import timed
from tracemend.records import RegressionCase

__all__ = [
    "DEFAULT_SUITE",
    "CaseFileError",
    "CasesExportResult",
    "export_cases",
    "item_id",
    "load_cases",
    "suite_item",
]

DEFAULT_SUITE = "tracemend-regressions"


@dataclass
class CasesExportResult:
    suite: str
    items: int = 0
    files: int = 0
    kind: str = "test_suite"
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)


def item_id(case: RegressionCase) -> str:
    """A stable UUIDv7-shaped id for a case (Opik wants v7), from its name and entry point."""
    digest = int.from_bytes(hashlib.sha256(f"{case.entry_point}\n{case.name}".encode()).digest()[:16], "big")
    # Keep the layout of a v7 UUID: version nibble 7, variant bits 10.
    digest &= ~(0xF << 76)
    digest |= 0x7 << 76
    digest &= ~(0x3 << 62)
    digest |= 0x2 << 62
    return str(uuid.UUID(int=digest))


def suite_item(case: RegressionCase, source: Path | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "case": case.name,
        "entry_point": case.entry_point,
        "input": case.input,
        "config": case.config,
        "checks": [c.model_dump(mode="json") for c in case.checks],
        "provenance": case.provenance.model_dump(mode="json"),
    }
    if source is not None:
        data["file"] = str(source)
    return {"id": item_id(case), "data": data, "assertions": list(case.assertions), "description": case.name}


def export_cases(
    cases: Iterable[tuple[Path | None, RegressionCase]],
    *,
    suite: str = DEFAULT_SUITE,
    project: str | None = None,
    client: Any = None,
) -> CasesExportResult:
    """Insert the cases into the Opik test suite ``suite`` (created if missing)."""
    pairs = list(cases)
    items = [suite_item(case, source) for source, case in pairs]
    result = CasesExportResult(
        suite=suite, items=len(items), files=len({s for s, _ in pairs if s is not None})
    )
    result.names = [case.name for _, case in pairs]
    with timed(result), opik_client(client, project=project) as opik:
        if client is None:  # our own client: a dead server or refused credentials fail at once
            check = Deliveries()
            if not preflight(opik, check, os.environ.get("OPIK_URL_OVERRIDE") or DEFAULT_OPIK_URL):
                raise ConnectionError(check.errors[0])
        if hasattr(opik, "get_or_create_test_suite"):
            target = opik.get_or_create_test_suite(
                name=suite,
                project_name=project,
                description="Regression cases locked by tracemend: each item reruns a fixed failure.",
            )
            if items:
                target.insert(items)
        else:  # an opik SDK from before test suites: a dataset with the same items
            result.kind = "dataset"
            dataset = opik.get_or_create_dataset(
                name=suite, description="Regression cases locked by tracemend"
            )
            if items:
                dataset.insert([{"id": i["id"], **i["data"], "assertions": i["assertions"]} for i in items])
    return result
