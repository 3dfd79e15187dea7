"""Which files a proposed change may touch: relative paths inside the root, never ``.git``, never binary.

A proposed change is untrusted text. Before a byte is written, every path it names is checked: no absolute
paths, no ``..``, nothing under ``.git``, no symlink that leads out of the root or into ``.git``, no binary
content. Each refusal is a :class:`ChangeRejected` saying why: the change is hostile or malformed and no
retry will help.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from tracemend.errors import ChangeRejected

__all__ = ["normalise", "read_text", "safe_path"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_path(root: Path, rel: str) -> Path:
    """The absolute path ``rel`` names inside ``root``, or ChangeRejected saying why it is not allowed."""
    if not rel or not rel.strip():
        raise ChangeRejected("empty file path")
    if "\x00" in rel:
        raise ChangeRejected(f"{rel!r}: NUL byte in file path")
    if rel.startswith(("/", "\\")) or _DRIVE.match(rel):
        raise ChangeRejected(
            f"{rel}: absolute paths are not allowed; paths must be relative to the repository"
        )
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    if not parts:
        raise ChangeRejected(f"{rel!r}: names the repository itself, not a file")
    if ".." in parts:
        raise ChangeRejected(f"{rel}: '..' in a path would leave the repository")
    if any(p.lower() == ".git" for p in parts):
        raise ChangeRejected(f"{rel}: edits to .git are not allowed")
    root_real = root.resolve()
    target = root_real.joinpath(*parts)
    # resolve() follows every symlink on the way, the last component's included.
    real = target.resolve()
    try:
        inside = real.relative_to(root_real)
    except ValueError:
        raise ChangeRejected(f"{rel}: resolves to {real}, outside the repository (symlink escape)") from None
    if inside.parts and inside.parts[0].lower() == ".git":
        raise ChangeRejected(f"{rel}: resolves into .git (symlink); edits to .git are not allowed")
    return real


def normalise(rel: str) -> str:
    """One spelling per file (``./a//b.py`` → ``a/b.py``), so that edits to it accumulate."""
    if not rel.strip():
        return rel  # left for safe_path to reject
    return PurePosixPath(rel.replace("\\", "/")).as_posix()


def read_text(path: Path, rel: str) -> str:
    """The file's text, or ChangeRejected for a binary or non-UTF-8 file."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise ChangeRejected(f"{rel}: binary file; binary changes are not allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ChangeRejected(f"{rel}: not UTF-8 text; binary changes are not allowed") from None
