"""The class of each changed file, by rules: runtime, prompt_config, test, docs or ci.

A file's class comes from its path, its extension and what the agent's entry points import (read from
the source at the suspect revision); prompt and config files the runtime reads count as runtime. The
rules place most files; :func:`classify_path` returns None for the rest, which the model is asked about.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tracemend.records import ChangedFile

_CI_DIRS = (".github/", ".gitlab/", ".circleci/", ".buildkite/", ".ci/", ".devcontainer/")
_CI_FILES = {
    ".gitlab-ci.yml",
    "jenkinsfile",
    "azure-pipelines.yml",
    ".pre-commit-config.yaml",
    "tox.ini",
    "noxfile.py",
    ".travis.yml",
    "makefile",
    "justfile",
    "codecov.yml",
    ".coveragerc",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".flake8",
}
_TEST_DIRS = {"tests", "test", "testing", "regressions"}
_TOOL_DIRS = {"scripts", "script", "bin", "tools", "bench", "benchmarks"}
_DOC_DIRS = {"docs", "doc", "documentation"}
_DOC_SUFFIXES = {".md", ".rst", ".adoc", ".png", ".jpg", ".jpeg", ".gif", ".svg"}
_DOC_NAMES = (
    "license",
    "changelog",
    "authors",
    "contributing",
    "notice",
    "readme",
    "mkdocs.yml",
    ".gitignore",
)
_DEPENDENCY_FILES = {
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "poetry.lock",
    "uv.lock",
    "pipfile",
    "pipfile.lock",
    "dockerfile",
    "requirements.txt",
}
_PROMPT_CONFIG_SUFFIXES = {
    ".yaml",
    ".yml",
    ".json",
    ".toml",
    ".j2",
    ".jinja",
    ".jinja2",
    ".prompt",
    ".txt",
    ".tmpl",
    ".ini",
    ".cfg",
    ".env",
    ".md",
}
_PROMPT_CONFIG_DIRS = {"prompts", "prompt", "config", "configs", "settings", "templates"}


@dataclass
class RuntimeMap:
    """What the agent's runtime consists of, read from the source at the suspect revision."""

    entry_modules: list[str] = field(default_factory=list)
    # Repository paths of Python modules the entry points import (transitively, inside the repository).
    imported: set[str] = field(default_factory=set)
    # Top-level package folders of the entry points.
    packages: set[str] = field(default_factory=set)
    # String literals found in imported modules (file names the runtime may read).
    literals: set[str] = field(default_factory=set)

    def references(self, path: str) -> bool:
        name = PurePosixPath(path).name
        if not name:
            return False
        return any(
            path == lit or lit.endswith("/" + path) or lit == name or lit.endswith("/" + name)
            for lit in self.literals
        )

    def in_package(self, path: str) -> bool:
        return any(path.startswith(pkg + "/") for pkg in self.packages)


def classify_path(path: str, runtime: RuntimeMap | None = None) -> ChangedFile | None:
    """The class of one changed file by rules, or None when the rules cannot place it."""
    p = PurePosixPath(path)
    parts = [x.lower() for x in p.parts]
    name = p.name.lower()
    suffix = p.suffix.lower()
    runtime = runtime or RuntimeMap()
    known_runtime = bool(runtime.entry_modules)

    if path.startswith(_CI_DIRS) or name in _CI_FILES:
        return ChangedFile(path=path, file_class="ci", reason="CI / tooling configuration")
    # ``*_test.py`` is a test by pytest's default pattern, but not among scripts and tools
    # (``scripts/load_test.py`` drives load; it tests nothing).
    in_tools = any(x in _TOOL_DIRS for x in parts[:-1])
    if (
        any(x in _TEST_DIRS for x in parts[:-1])
        or (suffix == ".py" and (name.startswith("test_") or (name.endswith("_test.py") and not in_tools)))
        or name == "conftest.py"
    ):
        return ChangedFile(path=path, file_class="test", reason="test code or regression case")
    if suffix == ".py" or suffix == ".pyi":
        if path in runtime.imported:
            return ChangedFile(path=path, file_class="runtime", reason="imported by the agent's entry point")
        if runtime.in_package(path):
            return ChangedFile(path=path, file_class="runtime", reason="in the agent's package")
        if not known_runtime:
            return ChangedFile(path=path, file_class="runtime", reason="Python source (entry point unknown)")
        return None  # Python outside what the agent imports: a script, a benchmark... ask the model
    if name in _DEPENDENCY_FILES or re.fullmatch(r"requirements[-_.\w]*\.(txt|in)", name):
        return ChangedFile(path=path, file_class="runtime", reason="dependencies / deployment")
    # Prompt and config files are runtime when the runtime reads them: referenced by name in an imported
    # module, or shipped inside the agent's package.
    if suffix in _PROMPT_CONFIG_SUFFIXES or any(x in _PROMPT_CONFIG_DIRS for x in parts[:-1]):
        if runtime.references(path):
            return ChangedFile(path=path, file_class="runtime", reason="prompt/config read by the runtime")
        if runtime.in_package(path):
            return ChangedFile(
                path=path, file_class="runtime", reason="prompt/config inside the agent's package"
            )
    if parts and parts[0] in _DOC_DIRS or suffix in _DOC_SUFFIXES or name.startswith(_DOC_NAMES):
        return ChangedFile(path=path, file_class="docs", reason="documentation")
    if any(x in _PROMPT_CONFIG_DIRS for x in parts[:-1]):
        return ChangedFile(
            path=path, file_class="prompt_config", reason="prompt/config not read by the agent's entry point"
        )
    return None


def _module_paths(module: str, files: set[str]) -> list[str]:
    rel = module.replace(".", "/")
    out = []
    for prefix in ("", "src/"):
        for cand in (f"{prefix}{rel}.py", f"{prefix}{rel}/__init__.py"):
            if cand in files:
                out.append(cand)
    return out


def build_runtime_map(entry_points: list[str], read: Any, files: list[str]) -> RuntimeMap:
    """Follow the imports of the entry points' modules through the repository's Python files.

    ``read(path) -> str | None`` gives a file's text at the suspect revision; ``files`` lists its paths.
    """
    file_set = set(files)
    rmap = RuntimeMap()
    queue: list[str] = []
    for ep in entry_points:
        module = ep.partition(":")[0]
        if not module:
            continue
        rmap.entry_modules.append(module)
        pkg_parts = module.split(".")
        for i in range(1, len(pkg_parts) + 1):
            queue.extend(_module_paths(".".join(pkg_parts[:i]), file_set))
        top = _module_paths(pkg_parts[0], file_set)
        if top and top[0].endswith("__init__.py"):
            rmap.packages.add(str(PurePosixPath(top[0]).parent))
    seen: set[str] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        text = read(path)
        if text is None:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        base_pkg = str(PurePosixPath(path).parent).removeprefix("src/").replace("/", ".")
        if base_pkg == ".":
            base_pkg = ""
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base_pkg.split(".") if base_pkg else []
                    anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                    mod = ".".join([*anchor, node.module] if node.module else anchor)
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and 0 < len(node.value) < 200
                and "\n" not in node.value
            ):
                rmap.literals.add(node.value.strip())
            for target in targets:
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    for cand in _module_paths(".".join(parts[:i]), file_set):
                        if cand not in seen:
                            queue.append(cand)
    rmap.imported = seen & file_set
    return rmap
