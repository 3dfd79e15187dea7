"""Exceptions read back from text: a Python traceback (``exception.stacktrace`` of an OTel span event,
Opik's ``error_info.traceback``) becomes an :class:`~tracemend.records.ErrorInfo` with frames and causes.

Tracebacks recorded on another host name files by that host's paths (``/app/src/shop/tools.py``). A
frame is matched to this checkout by the longest tail of its path that exists under the project root
(``src/shop/tools.py``), so it is "in app" here as it was there, and its module is found the way Python
finds it (the folders with an ``__init__.py`` above the file). Library code (``site-packages``, the
standard library) is never in app.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Protocol

from tracemend.records import ErrorInfo, Frame

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+?)\s*$')
_CHAIN = {
    "The above exception was the direct cause of the following exception:": "cause",
    "During handling of the above exception, another exception occurred:": "context",
}
_LIBRARY = ("site-packages", "dist-packages", "/lib/python", "/lib64/python", "<frozen")
MAX_FRAMES = 64


class MapsFrames(Protocol):
    def map(self, filename: str) -> tuple[str, bool, str | None]:
        """A recorded frame's file → (path as shown, in app?, module or None)."""
        ...


class FrameMapper:
    """A recorded frame's file → (path relative to this checkout, in app?, module), cached per file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, tuple[str, bool, str | None]] = {}

    def map(self, filename: str) -> tuple[str, bool, str | None]:
        hit = self._cache.get(filename)
        if hit is None:
            hit = self._map(filename)
            if len(self._cache) < 8192:
                self._cache[filename] = hit
        return hit

    def _map(self, filename: str) -> tuple[str, bool, str | None]:
        if filename.startswith("<"):
            return filename, False, None
        posix = filename.replace("\\", "/")
        if any(marker in posix.lower() for marker in _LIBRARY):
            return filename, False, None
        path = PurePosixPath(posix)
        if not path.is_absolute() and not re.match(r"^[A-Za-z]:/", posix):
            return posix, True, self._module(posix)
        root = self.root.as_posix().rstrip("/") + "/"
        if posix.startswith(root):
            rel = posix[len(root) :]
            return rel, True, self._module(rel)
        parts = [p for p in path.parts if p not in ("/", "")]
        # The longest tail of the remote path that is a file of this checkout is the same file.
        for start in range(1, len(parts)):
            tail = "/".join(parts[start:])
            if (self.root / tail).is_file():
                return tail, True, self._module(tail)
        # Not in this checkout: still the app's own code on its host; a short stable module name.
        stem = [*parts[-2:-1], PurePosixPath(parts[-1]).stem] if parts else [posix]
        return posix, True, ".".join(stem)

    def _module(self, rel: str) -> str:
        """The importable module of a file of this checkout (as ``__name__`` would be)."""
        pure = PurePosixPath(rel)
        names = [pure.stem] if pure.stem != "__init__" else []
        folder = self.root / pure.parent
        parents = list(pure.parent.parts)
        while parents and (folder / "__init__.py").is_file():
            names.insert(0, parents.pop())
            folder = folder.parent
        if not (self.root / rel).is_file():
            # Unknown here: the path without a src/ prefix, as a dotted name.
            dotted = [p for p in pure.with_suffix("").parts if p not in (".", "..")]
            if dotted and dotted[0] == "src":
                dotted = dotted[1:]
            if dotted and dotted[-1] == "__init__":
                dotted = dotted[:-1]
            return ".".join(dotted)
        return ".".join(names)


def parse_stacktrace(
    text: str, *, exc_type: str | None, message: str | None, mapper: MapsFrames
) -> ErrorInfo:
    """ErrorInfo from a Python traceback's text, causes included (outermost error first in the chain).

    ``exc_type`` and ``message`` are the event's own fields and win for the outermost error: the text's
    last line may be cut or span several lines. Its module-qualified name (``pkg.mod.Error``) is kept
    when it names the same class, since that is how tracemend names exceptions.
    """
    bare_type = exc_type or "Exception"
    blocks: list[tuple[list[Frame], str, str | None]] = []  # frames, "Type: message" line, link to the next
    frames: list[Frame] = []
    for raw in (text or "").splitlines():
        line = raw.rstrip()
        link = _CHAIN.get(line.strip())
        if link is not None:
            if blocks:
                blocks[-1] = (blocks[-1][0], blocks[-1][1], link)
            frames = []
            continue
        match = _FRAME.match(line)
        if match:
            rel, in_app, module = mapper.map(match["file"])
            frames.append(
                Frame(file=rel, line=int(match["line"]), function=match["function"], module=module, in_app=in_app)
            )
        elif line and not line.startswith((" ", "\t", "Traceback")) and (frames or not blocks):
            blocks.append((frames, line, None))
            frames = []
    if not blocks:
        return ErrorInfo(type=bare_type, message=message or "")
    error: ErrorInfo | None = None
    for index, (block_frames, type_line, _link) in enumerate(blocks):
        head, _, msg = type_line.partition(": ")
        if index == len(blocks) - 1:
            same = head.rsplit(".", 1)[-1] == bare_type.rsplit(".", 1)[-1]
            head = head if same and "." in head and "." not in bare_type else bare_type
            msg = msg if message is None else message
        if len(block_frames) > MAX_FRAMES:
            half = MAX_FRAMES // 2
            block_frames = block_frames[:half] + block_frames[-half:]
        link = blocks[index - 1][2] if index > 0 else None
        error = ErrorInfo(
            type=head or bare_type,
            message=msg,
            frames=block_frames,
            cause=error,
            cause_kind=link if error is not None else None,  # type: ignore[arg-type]
        )
    assert error is not None
    return error
