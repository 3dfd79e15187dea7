"""Where the user's project is, its ``[tool.tracemend]`` settings, and which version of its code is running.

The code version is read once per process, off the decorator's hot path (the background writer asks for
it). The commit comes from the files under ``.git`` directly, so no git subprocess is needed for it; only
the dirty flag runs ``git status`` once.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracemend.records import CodeVersion

_MARKERS = ("pyproject.toml", ".git", "setup.py", "setup.cfg")


@functools.cache
def _root_for(start: str) -> Path:
    here = Path(start).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in _MARKERS):
            return candidate
    return here


def project_root() -> Path:
    """``TRACEMEND_PROJECT_ROOT``, else the nearest folder above the working directory with a project marker."""
    explicit = os.environ.get("TRACEMEND_PROJECT_ROOT")
    if explicit:
        return Path(explicit).resolve()
    return _root_for(os.getcwd())


_tables: dict[Path, tuple[float, dict[str, Any]]] = {}


def tool_table(root: Path | None = None) -> dict[str, Any]:
    """``[tool.tracemend]`` in ``<root>/pyproject.toml`` (root: :func:`project_root`); ``{}`` without one.

    Read again only when the file changes. A file that is not valid TOML raises :class:`ConfigError`.
    """
    import tomllib

    from tracemend.errors import ConfigError

    path = (root or project_root()) / "pyproject.toml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    cached = _tables.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read [tool.tracemend]: {exc}") from exc
    table = data.get("tool", {}).get("tracemend", {}) or {}
    _tables[path] = (mtime, table)
    return table


def _git_dir(root: Path) -> Path | None:
    for candidate in (root, *root.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a worktree: ".git" holds "gitdir: <path>"
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                path = Path(text[len("gitdir:") :].strip())
                return path if path.is_absolute() else (candidate / path).resolve()
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    # Refs live in the common dir for worktrees; loose files first, then packed-refs.
    common = git_dir
    commondir = git_dir / "commondir"
    if commondir.is_file():
        common = (git_dir / commondir.read_text().strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref) and not line.startswith(("#", "^")):
                return line.split(" ", 1)[0]
    return None


def read_code_version(root: Path | None = None, *, check_dirty: bool = True) -> CodeVersion:
    """The commit checked out at ``root`` (and whether tracked files differ from it).

    ``TRACEMEND_CODE_VERSION`` overrides the commit, for deployments that ship without ``.git``.
    """
    from tracemend.records import CodeVersion

    explicit = os.environ.get("TRACEMEND_CODE_VERSION")
    if explicit:
        return CodeVersion(commit=explicit, dirty=False)
    root = root or project_root()
    try:
        git_dir = _git_dir(root)
        if git_dir is None:
            return CodeVersion()
        head = (git_dir / "HEAD").read_text().strip()
        branch = None
        if head.startswith("ref:"):
            ref = head[4:].strip()
            branch = ref.removeprefix("refs/heads/")
            commit = _resolve_ref(git_dir, ref)
        else:
            commit = head or None
    except OSError:
        return CodeVersion()
    dirty = _is_dirty(root) if (check_dirty and commit) else False
    return CodeVersion(commit=commit, dirty=dirty, branch=branch)


def _is_dirty(root: Path) -> bool:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


# --- import roots -------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _configured_roots(data: dict[str, Any]) -> list[str]:
    """Folders a ``pyproject.toml`` says its importable code lives in (setuptools, hatch, poetry, pdm,
    pytest's ``pythonpath``), relative to the project."""
    tool = data.get("tool", {}) if isinstance(data.get("tool"), dict) else {}
    found: list[str] = []
    setuptools = tool.get("setuptools", {}) if isinstance(tool.get("setuptools"), dict) else {}
    package_dir = setuptools.get("package-dir")
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        found.append(package_dir[""])
    packages = setuptools.get("packages")
    if isinstance(packages, dict) and isinstance(packages.get("find"), dict):
        found += _as_list(packages["find"].get("where"))
    hatch = tool.get("hatch", {}) if isinstance(tool.get("hatch"), dict) else {}
    build = hatch.get("build", {}) if isinstance(hatch.get("build"), dict) else {}
    wheel = build.get("targets", {}).get("wheel", {}) if isinstance(build.get("targets"), dict) else {}
    if isinstance(wheel, dict):
        found += [str(Path(package).parent) for package in _as_list(wheel.get("packages"))]
        if isinstance(wheel.get("sources"), dict):  # {"src" = ""}: the keys are source folders
            found += [key for key in wheel["sources"] if isinstance(key, str)]
    poetry = tool.get("poetry", {}) if isinstance(tool.get("poetry"), dict) else {}
    for package in poetry.get("packages", []) if isinstance(poetry.get("packages"), list) else []:
        if isinstance(package, dict) and isinstance(package.get("from"), str):
            found.append(package["from"])
    pdm = tool.get("pdm", {}) if isinstance(tool.get("pdm"), dict) else {}
    if isinstance(pdm.get("build"), dict) and isinstance(pdm["build"].get("package-dir"), str):
        found.append(pdm["build"]["package-dir"])
    pytest_ini = tool.get("pytest", {}).get("ini_options", {}) if isinstance(tool.get("pytest"), dict) else {}
    if isinstance(pytest_ini, dict):
        found += _as_list(pytest_ini.get("pythonpath"))
    return found


def _holds_python(folder: Path) -> bool:
    """Whether ``folder`` holds Python code at any depth (a namespace package has no ``__init__.py``)."""
    try:
        return next(folder.rglob("*.py"), None) is not None
    except OSError:
        return False


def import_roots(root: Path) -> list[Path]:
    """The folders to put first on ``sys.path`` so that the project at ``root`` imports its own code.

    From the project's ``pyproject.toml`` (setuptools ``package-dir``/``packages.find.where``, hatch,
    poetry, pdm, pytest's ``pythonpath``), the ``src/`` convention, and the project folder itself (flat
    layouts), in that order and each once. Paths are absolute and inside ``root`` (a configured folder
    outside it is ignored: it would not come from the tree being checked). Namespace packages need nothing
    more: a folder on the path holds their portions.
    """
    import tomllib

    root = Path(root).resolve()
    candidates: list[str] = []
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    candidates += _configured_roots(data)
    if (root / "src").is_dir() and _holds_python(root / "src"):
        candidates.append("src")
    out: list[Path] = []
    for rel in [*candidates, "."]:
        path = (root / rel).resolve()
        if path.is_dir() and path.is_relative_to(root) and path not in out:
            out.append(path)
    return out


def strip_live_roots(live: Path, tree: Path, path: list[str] | None = None) -> list[str]:
    """Remove from ``path`` (default ``sys.path``, in place) the entries inside the live checkout ``live``
    that are not inside ``tree``; returns the removed entries."""
    target = sys.path if path is None else path
    live, tree = Path(live).resolve(), Path(tree).resolve()
    if live == tree:
        return []
    removed = []
    for entry in list(target):
        try:
            resolved = Path(entry or ".").resolve()
        except OSError:
            continue
        if resolved.is_relative_to(live) and not resolved.is_relative_to(tree):
            target.remove(entry)
            removed.append(entry)
    return removed
