"""Exceptions as data: qualified type, message, frames marked in-app or not, and the chain of causes."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from tracemend.records import ErrorInfo, Frame

MAX_FRAMES = 64
MAX_CHAIN = 16
MAX_MESSAGE = 4000

_OWN_DIR = str(Path(__file__).resolve().parent) + os.sep
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) + os.sep
    for p in {sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("platstdlib")}
    if p
)


def qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


class FrameClassifier:
    """Relative paths and the in-app flag for code files, cached per file name."""

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve()) + os.sep
        self._cache: dict[str, tuple[str, bool]] = {}

    def classify(self, filename: str) -> tuple[str, bool]:
        hit = self._cache.get(filename)
        if hit is not None:
            return hit
        if filename.startswith("<"):
            result = (filename, False)
        else:
            path = os.path.abspath(filename)
            library = (
                "site-packages" in path
                or "dist-packages" in path
                or path.startswith(_LIBRARY_DIRS)
                or path.startswith(_OWN_DIR)
                or path.startswith(sys.base_prefix + os.sep)
            )
            inside = path.startswith(self.root)
            rel = path[len(self.root) :] if inside else path
            result = (rel, inside and not library)
        if len(self._cache) < 8192:
            self._cache[filename] = result
        return result


def _frames(tb: TracebackType | None, classifier: FrameClassifier) -> list[Frame]:
    frames: list[Frame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        # Our own wrapper frames are noise in the user's traceback.
        if not code.co_filename.startswith(_OWN_DIR):
            rel, in_app = classifier.classify(code.co_filename)
            frames.append(
                Frame(
                    file=rel,
                    line=tb.tb_lineno or 0,
                    function=code.co_qualname,
                    module=tb.tb_frame.f_globals.get("__name__"),
                    in_app=in_app,
                )
            )
        tb = tb.tb_next
    if len(frames) > MAX_FRAMES:  # keep both ends: where it was called and where it broke
        half = MAX_FRAMES // 2
        frames = frames[:half] + frames[-half:]
    return frames


def _plain_text(text: str) -> str:
    """Valid UTF-8 (lone surrogates escaped) and bounded; no redaction."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + f"…[truncated, {len(text)} chars]"


def _message(exc: BaseException, text: Callable[[str], str]) -> str:
    try:
        message = str(exc)
        if type(message) is not str:
            message = str.__str__(message)
    except Exception:
        message = f"<str() of {type(exc).__name__} failed>"
    return text(message)


def error_info(
    exc: BaseException,
    classifier: FrameClassifier,
    tb: TracebackType | None = None,
    *,
    text: Callable[[str], str] | None = None,
) -> ErrorInfo:
    """ErrorInfo for ``exc`` with its ``__cause__`` / ``__context__`` chain (cycles cut).

    ``tb`` is the outermost exception's traceback as it stood when it was caught (default: its current one).
    ``text`` prepares each message (the writer's: valid UTF-8, bounded, redacted); by default messages are
    made valid UTF-8 and bounded but not redacted.
    """
    text = text or _plain_text
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    kind: str | None = None
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, kind))
        if current.__cause__ is not None:
            current, kind = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, kind = current.__context__, "context"
        else:
            current = None
    # Build from the innermost cause outwards; each entry's kind says how its successor is chained to it.
    info: ErrorInfo | None = None
    for index in range(len(chain) - 1, -1, -1):
        err = chain[index][0]
        link = chain[index + 1][1] if index + 1 < len(chain) else None
        info = ErrorInfo(
            type=qualified_name(type(err)),
            message=_message(err, text),
            frames=_frames(tb if (index == 0 and tb is not None) else err.__traceback__, classifier),
            cause=info,
            cause_kind=link,  # type: ignore[arg-type]
        )
    assert info is not None
    return info
