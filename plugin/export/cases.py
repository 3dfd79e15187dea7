"""Locked regression cases as Opik Test Suite items: the recorded input to rerun and the plain-English
assertions an LLM judge checks.

Cases are the YAML files ``tracemend lock`` writes (one :class:`~tracemend.records.RegressionCase` per
file, or a list of them, or ``{"cases": [...]}``). Each becomes one suite item whose ``data`` holds the
entry point, input, config, deterministic checks and provenance, and whose ``assertions`` are the
case's plain-English assertions. Item ids are derived from the case name, so exporting again updates
the items instead of adding copies. SDKs without test suites get a dataset with the same items.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend.errors import CaseFileError
from tracemend.records import RegressionCase

DEFAULT_SUITE = "tracemend-regressions"


@dataclass
class CasesExportResult:
    suite: str
    items: int = 0
    files: int = 0
    kind: str = "test_suite"
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)


def load_cases(path: Path) -> list[tuple[Path, RegressionCase]]:
    """Every case under ``path`` (a YAML file or a folder searched recursively), in file-name order."""
    import yaml
    from pydantic import ValidationError

    if not path.exists():
        raise CaseFileError(path, None, "no such file or folder")
    files = [path] if path.is_file() else sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    out: list[tuple[Path, RegressionCase]] = []
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CaseFileError(file, None, f"not readable YAML ({exc})") from exc
        if data is None:
            continue
        if isinstance(data, dict) and isinstance(data.get("cases"), list):
            data = data["cases"]
        entries = data if isinstance(data, list) else [data]
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise CaseFileError(file, None, f"case {index + 1} is a {type(entry).__name__}, not a mapping")
            try:
                out.append((file, RegressionCase.model_validate(entry)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "case"
                raise CaseFileError(file, None, f"case {index + 1}: {where}: {first['msg']}") from exc
    return out


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
    import opik

    own = client is None
    if own:
        client = opik.Opik(project_name=project)
    started = time.perf_counter()
    pairs = list(cases)
    items = [suite_item(case, source) for source, case in pairs]
    result = CasesExportResult(
        suite=suite, items=len(items), files=len({s for s, _ in pairs if s is not None})
    )
    result.names = [case.name for _, case in pairs]
    try:
        if hasattr(client, "get_or_create_test_suite"):
            target = client.get_or_create_test_suite(
                name=suite,
                project_name=project,
                description="Regression cases locked by tracemend: each item reruns a fixed failure.",
            )
            if items:
                target.insert(items)
        else:  # an opik SDK from before test suites: a dataset with the same items
            result.kind = "dataset"
            dataset = client.get_or_create_dataset(
                name=suite, description="Regression cases locked by tracemend"
            )
            if items:
                dataset.insert([{"id": i["id"], **i["data"], "assertions": i["assertions"]} for i in items])
        client.flush()
    finally:
        if own:
            client.end()
    result.seconds = time.perf_counter() - started
    return result
