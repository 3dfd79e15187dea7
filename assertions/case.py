"""Regression cases as YAML files (default folder ``tests/regressions/``), one case per file.

Reading validates the file against ``records.RegressionCase`` and the checks' values; a bad file raises
:class:`CaseFileError` naming the file and the line of the offending field, so a suite can report it and go on
with the other cases. Writing produces a stable, readable file that diffs well in review.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tracemend.assertions.checks import validate_check
from tracemend.assertions.discovery import SCHEMA_KEY, SCHEMA_VERSION
from tracemend.errors import CaseFileError
from tracemend.records import RegressionCase

DEFAULT_DIR = Path("tests") / "regressions"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUFFIXES = (".yaml", ".yml")


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (for its line number)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if nxt is None:
                # The key is missing or unknown: point at the key itself when it exists, else the mapping.
                key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
                return key or node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


# Bounds on what a case file may ask of the parser: its size, how deep it nests, and how many values it holds
# once aliases are expanded (a few lines of nested aliases can stand for billions of values).
MAX_CASE_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 100_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_bounds(root: yaml.Node, path: Path) -> None:
    """Refuse a document that refers to itself, nests past MAX_DEPTH or expands past MAX_VALUES.

    Walks the composed node tree, where an alias is the very node it names, so each node is sized once.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        kids = _children(node)
        if finished:
            active.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            if size[key] > MAX_VALUES:
                raise CaseFileError(
                    path, _line(node), f"expands to more than {MAX_VALUES} values (aliases); refused"
                )
            if height[key] > MAX_DEPTH:
                raise CaseFileError(path, _line(node), f"nests deeper than {MAX_DEPTH} levels; refused")
            continue
        if key in size:
            continue
        active.add(key)
        stack.append((node, True))
        for kid in kids:
            if id(kid) in active:
                raise CaseFileError(path, _line(kid), "an alias refers to a value that contains it; refused")
            if id(kid) not in size:
                stack.append((kid, False))


def read_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """One YAML document from ``path``, bounded (size, depth, aliases): (its node tree, its data)."""
    try:
        size = path.stat().st_size
        if size > MAX_CASE_BYTES:
            raise CaseFileError(path, None, f"{size} bytes; a case file may hold at most {MAX_CASE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CaseFileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        # One parse (libyaml when available): the node tree gives line numbers for errors and is checked
        # against the bounds; the data is constructed from it.
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None:
                _check_bounds(root, path)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseFileError(path, line, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise CaseFileError(path, None, f"nests deeper than {MAX_DEPTH} levels; refused") from None
    return root, data


def load_case(path: Path | str) -> RegressionCase:
    path = Path(path)
    root, data = read_yaml(path)
    if not isinstance(data, dict):
        raise CaseFileError(path, 1, "a regression case must be a mapping (name, entry_point, input, ...)")
    data = dict(data)
    problem = _schema_problem(data.pop(SCHEMA_KEY, None))
    if problem:
        raise CaseFileError(path, _line(_node_at(root, (SCHEMA_KEY,))), problem)
    try:
        case = RegressionCase.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        node = _node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else None
        where = ".".join(str(p) for p in loc) or "(file)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CaseFileError(path, line, f"{where}: {first['msg']}{more}") from None
    if ":" not in case.entry_point:
        node = _node_at(root, ("entry_point",))
        raise CaseFileError(path, _line(node), f"entry_point {case.entry_point!r} must be module:qualname")
    for index, check in enumerate(case.checks):
        problem = validate_check(check)
        if problem:
            node = _node_at(root, ("checks", index))
            raise CaseFileError(path, _line(node), f"checks.{index} ({check.kind}): {problem}")
    if not case.assertions and not case.checks:
        raise CaseFileError(path, 1, "a case needs at least one assertion or check")
    return case


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def slug(name: str) -> str:
    text = re.sub(r"[^a-zA-Z0-9]+", "_", name).strip("_").lower()
    return text[:80] or "case"


def case_filename(case: RegressionCase) -> str:
    """``<slug of the name>.yaml``: where a case is written in its folder (unless the name is taken)."""
    return f"{slug(case.name)}.yaml"


def _schema_problem(version: Any) -> str | None:
    """Why a file's ``tracemend_case`` value cannot be read (None: a known version, or a file from
    before the key, which is accepted)."""
    is_int = isinstance(version, int) and not isinstance(version, bool)
    if version is None or (is_int and version == SCHEMA_VERSION):
        return None
    if is_int and version > SCHEMA_VERSION:
        return f"{SCHEMA_KEY}: {version} is from a newer tracemend (this one reads {SCHEMA_VERSION}); upgrade"
    return f"{SCHEMA_KEY}: {version!r} is not a case format version (expected {SCHEMA_VERSION})"


def case_to_data(case: RegressionCase) -> dict[str, Any]:
    data = {SCHEMA_KEY: SCHEMA_VERSION, **case.model_dump(mode="json", exclude_defaults=False)}
    # Leave out empty optional sections so files stay short; keep the order of the record.
    for key in ("config", "config_class", "config_param", "samples"):
        if data.get(key) is None:
            data.pop(key, None)
    for key in ("marks", "checks", "assertions"):
        if not data.get(key):
            data.pop(key, None)
    data["provenance"] = {
        k: ({a: b for a, b in v.items() if b is not None} if isinstance(v, dict) else v)
        for k, v in data.get("provenance", {}).items()
        if v is not None
    }
    if not data["provenance"]:
        data.pop("provenance")
    return data


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # files we write never use aliases (readers of them may refuse aliases)


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_case(case: RegressionCase) -> str:
    header = f"# tracemend regression case: {case.name}\n"
    return header + yaml.dump(
        case_to_data(case), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


def write_case(case: RegressionCase, directory: Path | str = DEFAULT_DIR, *, overwrite: bool = False) -> Path:
    """Write ``<directory>/<slug of name>.yaml`` (``_2``, ``_3`` … when taken, unless ``overwrite``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base = slug(case.name)
    path = directory / case_filename(case)
    counter = 2
    while path.exists() and not overwrite:
        path = directory / f"{base}_{counter}.yaml"
        counter += 1
    path.write_text(dump_case(case), encoding="utf-8")
    load_case(path)  # what we write must read back
    return path


def iter_case_files(directory: Path | str) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(("_", "."))
    )


# --- several cases per file, for `tracemend export cases` ------------------------------------------------
# Appended for the export stage (its own reader went): a file may hold one case, a list of cases or
# {"cases": [...]}, and errors name the case's position in the file.


def load_cases(path: Path | str) -> list[tuple[Path, RegressionCase]]:
    """Every case under ``path`` (a case file, or a folder listed by :func:`iter_case_files`), in file order."""
    path = Path(path)
    if not path.exists():
        raise CaseFileError(path, None, "no such file or folder")
    out: list[tuple[Path, RegressionCase]] = []
    for file in [path] if path.is_file() else iter_case_files(path):
        _, data = read_yaml(file)
        if isinstance(data, dict) and isinstance(data.get("cases"), list):
            data = data["cases"]
        entries = [] if data is None else data if isinstance(data, list) else [data]
        for index, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                raise CaseFileError(file, None, f"case {index} is a {type(entry).__name__}, not a mapping")
            problem = _schema_problem(entry.get(SCHEMA_KEY))
            if problem:
                raise CaseFileError(file, None, f"case {index}: {problem}")
            entry = {k: v for k, v in entry.items() if k != SCHEMA_KEY}
            try:
                out.append((file, RegressionCase.model_validate(entry)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "case"
                raise CaseFileError(file, None, f"case {index}: {where}: {first['msg']}") from exc
    return out
