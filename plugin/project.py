"""Where the user's project is, its ``[tool.tracemend]`` settings, and which version of its code is running.

The code version is read once per process, off the decorator's hot path (the background writer asks for
it). The commit comes from the files under ``.git`` directly, so no git subprocess is needed for it; only
the dirty flag runs ``git status`` once.
"""

from __future__ import annotations

import functools
import os
import subprocess
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
