"""A change held in memory until every part of it has applied and every touched Python file compiles.

Nothing is written unless the whole change applies: :meth:`Staged.finish` writes all of it or none of it,
and reports what was (or would have been) written as a unified diff for people to read.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tracemend.errors import ChangeRejected
from tracemend.records import ApplyResult, EditMiss
from tracemend.sandbox.paths import normalise, read_text, safe_path

__all__ = ["ApplyResult", "EditMiss", "Staged"]


@dataclass
class Staged:
    """New contents by path, in memory until the whole change has applied and compiled."""

    root: Path
    before: dict[str, str | None] = field(default_factory=dict)
    after: dict[str, str | None] = field(default_factory=dict)
    abs_paths: dict[str, Path] = field(default_factory=dict)
    newline: dict[str, str] = field(default_factory=dict)

    def current(self, rel: str) -> str | None:
        """Contents as changed so far (``\\n`` line endings), None if the file does not exist."""
        rel = normalise(rel)
        if rel in self.after:
            return self.after[rel]
        path = safe_path(self.root, rel)
        self.abs_paths[rel] = path
        if path.is_dir():
            raise ChangeRejected(f"{rel}: is a directory")
        if not path.exists():
            self.before[rel] = None
            self.newline[rel] = "\n"
            return None
        text = read_text(path, rel)
        self.newline[rel] = "\r\n" if "\r\n" in text else "\n"
        text = text.replace("\r\n", "\n")
        self.before[rel] = text
        return text

    def set(self, rel: str, text: str | None) -> None:
        if text is not None and "\x00" in text:
            raise ChangeRejected(f"{rel}: NUL byte in new content; binary changes are not allowed")
        self.current(rel)
        self.after[normalise(rel)] = text

    def touched(self) -> list[str]:
        return [rel for rel in self.after if self.after[rel] != self.before.get(rel)]

    def diff(self) -> str:
        out: list[str] = []
        for rel in self.touched():
            old, new = self.before.get(rel), self.after[rel]
            for line in difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile="/dev/null" if old is None else f"a/{rel}",
                tofile="/dev/null" if new is None else f"b/{rel}",
            ):
                # A last line without a newline, on either side, is marked as git marks it.
                out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(out)

    def compile_errors(self) -> list[str]:
        errors = []
        for rel in self.touched():
            text = self.after[rel]
            if text is None or not rel.endswith(".py"):
                continue
            try:
                compile(text, rel, "exec", dont_inherit=True)
            except SyntaxError as exc:
                errors.append(f"{rel}:{exc.lineno or 0}: does not compile: {exc.msg}")
            except ValueError as exc:
                errors.append(f"{rel}: does not compile: {exc}")
        return errors

    def write(self) -> None:
        for rel in self.touched():
            path = self.abs_paths[rel]
            text = self.after[rel]
            if text is None:
                path.unlink()
                continue
            # Checked again right before writing: the tree may have changed since the path was validated.
            path = safe_path(self.root, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            data = text.replace("\n", self.newline.get(rel, "\n")).encode("utf-8")
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(path, flags, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)

    def finish(self, misses: list[EditMiss], errors: list[str]) -> ApplyResult:
        errors = list(errors)
        if not misses and not errors:
            errors.extend(self.compile_errors())
        ok = not misses and not errors
        if ok:
            self.write()
        return ApplyResult(ok=ok, diff=self.diff(), touched=self.touched(), misses=misses, errors=errors)
