"""SEARCH/REPLACE edits: parsing the blocks coding models write, and applying them tolerantly.

Edits that do not match (a SEARCH text that is not in the file) are *misses*: they come back in the
:class:`ApplyResult` with the closest region of the file ("did you mean"), so that a model can correct its
edit. A block that matches more than one place is a miss too (ambiguous), rather than an edit at a
guessed location. Nothing is written unless every edit applies (see :mod:`tracemend.sandbox.staging`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from tracemend.errors import ChangeRejected
from tracemend.sandbox.match import (
    closest_region,
    dedent,
    find_exact,
    find_tolerant,
    indent_of,
    split_lines,
)
from tracemend.sandbox.staging import ApplyResult, EditMiss, Staged

__all__ = ["SEARCH_MARKER", "Edit", "apply_edits", "parse_edits"]


class Edit(BaseModel):
    """Replace ``search`` with ``replace`` in ``path`` (relative to the root); empty ``search`` creates."""

    path: str
    search: str
    replace: str


SEARCH_MARKER = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")
_FENCE_ONLY = re.compile(r"^\s*(```|~~~)[\w+-]*\s*$")


def _path_from_line(line: str) -> str | None:
    text = line.strip()
    if not text or _FENCE_ONLY.match(text):
        return None
    text = re.sub(r"^(```|~~~)\w*\s*", "", text)  # "```python path/x.py" is seen too
    text = text.strip().strip("`*#:").strip()
    if text.lower().startswith(("file:", "path:", "filename:")):
        text = text.split(":", 1)[1].strip().strip("`*").strip()
    if not text or " " in text:
        return None
    return text


def parse_edits(text: str) -> list[Edit]:
    """SEARCH/REPLACE blocks as coding models write them::

        path/to/file.py
        ```python
        <<<<<<< SEARCH
        old lines
        =======
        new lines
        >>>>>>> REPLACE
        ```

    The path is the nearest non-fence line above the block; a block with no path of its own reuses the
    previous block's. Raises ChangeRejected for a malformed or unterminated block.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    edits: list[Edit] = []
    last_path: str | None = None
    i = 0
    while i < len(lines):
        if not SEARCH_MARKER.match(lines[i]):
            i += 1
            continue
        path = None
        j = i - 1
        # Look back over a fence line and blank lines for the file name.
        while j >= 0 and j >= i - 3:
            candidate = lines[j]
            if SEARCH_MARKER.match(candidate) or _REPLACE.match(candidate):
                break
            if candidate.strip() and not _FENCE_ONLY.match(candidate):
                path = _path_from_line(candidate)
                break
            j -= 1
        path = path or last_path
        if path is None:
            raise ChangeRejected(f"SEARCH block at line {i + 1} has no file path on the line before it")
        search: list[str] = []
        k = i + 1
        while k < len(lines) and not _DIVIDER.match(lines[k]):
            if SEARCH_MARKER.match(lines[k]) or _REPLACE.match(lines[k]):
                raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) has no ======= divider")
            search.append(lines[k])
            k += 1
        if k >= len(lines):
            raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) is not terminated")
        replace: list[str] = []
        k += 1
        while k < len(lines) and not _REPLACE.match(lines[k]):
            if SEARCH_MARKER.match(lines[k]):
                raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) has no >>>>>>> REPLACE line")
            replace.append(lines[k])
            k += 1
        if k >= len(lines):
            raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) has no >>>>>>> REPLACE line")
        edits.append(Edit(path=path, search=_join(search), replace=_join(replace)))
        last_path = path
        i = k + 1
    return edits


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _reindented(search: list[str], replace: list[str], prefix: str) -> list[str]:
    """The replacement keeps its indentation relative to the SEARCH text, shifted to where the match sits."""
    _, cut = dedent([line.rstrip() for line in search])
    new = []
    for line in (line.rstrip() for line in replace):
        if not line:
            new.append("")
            continue
        drop = min(cut, len(indent_of(line)))
        new.append(prefix + line[drop:])
    # Blank lines at the edges of the SEARCH text are not part of the match; the same blank line
    # copied into REPLACE would otherwise be doubled.
    if search and not search[0].strip() and new and not new[0]:
        new.pop(0)
    if search and not search[-1].strip() and new and not new[-1]:
        new.pop()
    return new


def _apply_one(content: str, edit: Edit) -> tuple[str | None, EditMiss | None]:
    search = split_lines(edit.search.replace("\r\n", "\n"))
    replace = split_lines(edit.replace.replace("\r\n", "\n"))
    lines = split_lines(content)
    trailing_nl = content.endswith("\n") or not content

    def done(new_lines: list[str]) -> str:
        return "\n".join(new_lines) + ("\n" if trailing_nl and new_lines else "")

    def miss(reason: str, *, closest: str | None = None, at: int | None = None) -> EditMiss:
        return EditMiss(
            path=edit.path, search=edit.search, reason=reason, closest=closest, closest_start_line=at
        )

    exact = find_exact(lines, search)
    if len(exact) == 1:
        i = exact[0]
        return done(lines[:i] + replace + lines[i + len(search) :]), None
    if len(exact) > 1:
        where = ", ".join(str(i + 1) for i in exact[:5])
        reason = f"SEARCH text occurs {len(exact)} times (lines {where}); include more surrounding lines"
        return None, miss(reason, at=exact[0] + 1)
    tolerant = find_tolerant(lines, search)
    if len(tolerant) == 1:
        start, end, prefix = tolerant[0]
        return done(lines[:start] + _reindented(search, replace, prefix) + lines[end:]), None
    if len(tolerant) > 1:
        where = ", ".join(str(s + 1) for s, _, _ in tolerant[:5])
        reason = (
            f"SEARCH text matches {len(tolerant)} places (lines {where}) after whitespace "
            "normalisation; include more surrounding lines"
        )
        return None, miss(reason, at=tolerant[0][0] + 1)
    closest, at = closest_region(lines, search)
    found = "; the closest region is shown" if closest else "; nothing similar found"
    return None, miss("SEARCH text not found in the file" + found, closest=closest, at=at)


def apply_edits(root: Path, edits: Iterable[Edit]) -> ApplyResult:
    """Apply SEARCH/REPLACE edits to the files under ``root``, all or nothing.

    Raises ChangeRejected for a path that is not allowed or a binary file; a SEARCH text that does not
    match is returned as a miss with the closest region of the file.
    """
    staged = Staged(Path(root))
    misses: list[EditMiss] = []
    for edit in edits:
        content = staged.current(edit.path)
        if not edit.search.strip():
            if content is None or not content.strip():
                staged.set(edit.path, edit.replace)
            else:
                joined = content if content.endswith("\n") else content + "\n"
                staged.set(edit.path, joined + edit.replace)
            continue
        if content is None:
            misses.append(
                EditMiss(
                    path=edit.path,
                    search=edit.search,
                    reason="file does not exist (use an empty SEARCH to create it)",
                )
            )
            continue
        new, missed = _apply_one(content, edit)
        if missed is not None:
            misses.append(missed)
        else:
            staged.set(edit.path, new)
    return staged.finish(misses, [])
