"""The layout's rules, checked on the source (docs/architecture.md states them).

Every ``import`` in tracemend's own modules counts, function-level ones included; imports under
``if TYPE_CHECKING:`` are exempt (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"plugin": "tracemend", "assertions": "tracemend.assertions", "sandbox": "tracemend.sandbox"}
MAX_LINES = 500

# A module may import its own package and the packages before it, never one after it.
LAYERS: list[tuple[str, ...]] = [
    ("tracemend.records", "tracemend.errors"),
    ("tracemend.project", "tracemend.settings"),
    ("tracemend.llm", "tracemend.vcs", "tracemend.replay"),
    ("tracemend.store",),
    ("tracemend.capture", "tracemend"),
    ("tracemend.assertions",),
    ("tracemend.analyze", "tracemend.signatures", "tracemend.gating"),
    ("tracemend.triage",),
    ("tracemend.sandbox",),
    ("tracemend.diagnose",),
    ("tracemend.approval",),
    ("tracemend.heal",),
    ("tracemend.export",),
    ("tracemend.demo", "tracemend.testing", "tracemend.cli", "tracemend.__main__"),
]


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (the deepest tracemend module the statement names)
    name: str | None  # the imported name, for ``from target import name`` of a non-module
    path: Path
    line: int


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _statements(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _statements(child)


def _deepest(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(source: str, path: Path, package: str | None) -> list[Import]:
    out: list[Import] = []
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        else:
            if node.level:
                assert package is not None, f"{path}: relative import outside a package"
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            pairs = [
                (f"{module}.{a.name}", None) if f"{module}.{a.name}" in MODULES else (module, a.name)
                for a in node.names
            ]
        for module, name in pairs:
            target = _deepest(module) if module.startswith("tracemend") else None
            if target is not None and target != source:
                out.append(Import(source, target, name, path, node.lineno))
    return out


def private_attributes(path: Path) -> list[str]:
    """``module._name`` uses of private names through an imported tracemend module."""
    bound: dict[str, str] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _statements(tree):
        for alias in node.names:
            full = f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) and node.module else alias.name
            if full in MODULES:
                bound[alias.asname or alias.name.split(".")[0]] = full
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and _private(node.attr)
        ):
            out.append(f"{path.relative_to(REPO)}:{node.lineno}: {bound[node.value.id]} {node.attr}")
    return out


def _all_imports() -> list[Import]:
    return [imp for mod, path in MODULES.items() for imp in imports_of(mod, path, _package_of(mod))]


def _layer(module: str) -> tuple[int, str]:
    best: tuple[int, str] | None = None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (index, name)
    assert best is not None, f"{module} is in no layer of docs/architecture.md"
    return best


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in _all_imports():
        edges[imp.source].add(imp.target)
    assert _cycles(edges) == []


def test_a_stage_imports_only_the_stages_before_it() -> None:
    wrong = {
        f"{imp.path.relative_to(REPO)}:{imp.line}: {imp.source} imports {imp.target}"
        for imp in _all_imports()
        if _layer(imp.target)[0] > _layer(imp.source)[0]
    }
    assert sorted(wrong) == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("where", ["tracemend", "tests"])
def test_no_private_name_is_imported_from_another_package(where: str) -> None:
    if where == "tracemend":
        sources = [(m, p, _package_of(m)) for m, p in MODULES.items()]
    else:
        sources = [(f"tests.{p.stem}", p, None) for p in (REPO / "tests").rglob("*.py")]
    wrong = []
    for source, path, package in sources:
        for imp in imports_of(source, path, package):
            if package is not None and _package_of(imp.target) == package:
                continue
            if (imp.name and _private(imp.name)) or any(_private(p) for p in imp.target.split(".")):
                wrong.append(f"{path.relative_to(REPO)}:{imp.line}: {imp.target} {imp.name or ''}".strip())
        if package is None or not source.startswith("tracemend"):
            wrong += private_attributes(path)
    assert wrong == []


def test_every_package_folder_is_in_the_packages_list() -> None:
    # The folders map to import names (package-dir), so setuptools cannot find subpackages itself: a
    # subpackage missing from pyproject's list works in an editable install and is absent from a wheel.
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    folders = {**FOLDERS, "examples": "tracemend.examples"}
    found = set()
    for folder, package in folders.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            if "shopbot" in relative.parts:  # a project of its own, shipped as files
                continue
            found.add(".".join((package, *relative.parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
