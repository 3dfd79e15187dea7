"""Unified diffs (git or plain, parsed with ``unidiff``), applied by content like ``patch(1)``.

Hunks are placed where their context and removed lines are (trailing whitespace ignored), at the
occurrence nearest the line number the hunk gives, so stale line numbers do not matter. A hunk whose lines
are not in the file is a miss with the closest region. Binary patches, symlinks and submodules are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from tracemend.errors import ChangeRejected
from tracemend.sandbox.edits import SEARCH_MARKER
from tracemend.sandbox.match import closest_region, find_exact, split_lines
from tracemend.sandbox.paths import safe_path
from tracemend.sandbox.staging import ApplyResult, EditMiss, Staged

__all__ = ["apply_patch", "looks_like_diff"]

_FORBIDDEN_MODES = re.compile(
    r"^(new file mode|new mode|old mode|deleted file mode) (120000|160000)", re.MULTILINE
)
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


def looks_like_diff(text: str) -> bool:
    """Whether ``text`` is a unified diff (rather than SEARCH/REPLACE blocks)."""
    if any(SEARCH_MARKER.match(line) for line in text.splitlines()):
        return False
    return bool(
        re.search(r"^--- .*\n\+\+\+ ", text, re.MULTILINE) or re.search(r"^diff --git ", text, re.MULTILINE)
    )


def _diff_name(name: str | None) -> str | None:
    """The path a diff header names, unquoted; None for ``/dev/null``."""
    if name is None:
        return None
    name = name.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    return name


def _strip(name: str | None, level: int) -> str | None:
    """``name`` without its first ``level`` path components (``git apply -p<level>``)."""
    if name is None or level == 0:
        return name
    parts = name.split("/", level)
    return parts[level] if len(parts) > level else None


def _prefix_level(patch: object, staged: Staged) -> int:
    """How many leading components to strip from every path, as ``git apply`` does: 1 (``a/``, ``b/``,
    either way round as ``git diff -R`` writes them, or any other prefix) unless the diff was made with
    ``--no-prefix`` — told by which reading names files that exist."""
    votes = {0: 0, 1: 0}
    names = []
    for pf in patch:  # type: ignore[attr-defined]
        source = _diff_name(pf.source_file)
        names += [n for n in (source, _diff_name(pf.target_file)) if n]
        if source is None:
            continue
        for level in (1, 0):
            candidate = _strip(source, level)
            if candidate and _exists(staged, candidate):
                votes[level] += 1
                break
    if votes[0] > votes[1]:
        return 0
    if votes[1] or not names:
        return 1
    # Only new files: git's own prefixes are one letter (a/, b/, i/, w/, c/, o/).
    return 1 if all(len(n.split("/", 1)[0]) == 1 and "/" in n for n in names) else 0


def _exists(staged: Staged, rel: str) -> bool:
    try:
        return staged.current(rel) is not None
    except ChangeRejected:
        return False


def _hunk_lines(hunk: object) -> tuple[list[str], list[str], bool]:
    """(source lines, target lines, whether the target's last line has no newline)."""
    source: list[str] = []
    target: list[str] = []
    target_no_newline = False
    last_type = None
    for line in hunk:  # type: ignore[attr-defined]
        value = line.value.rstrip("\n").rstrip("\r")
        if line.line_type == "\\":
            # The marker qualifies the line before it: a context line is the last of both sides, an
            # added line the last of the target; after a removed line it says nothing of the target.
            if last_type in ("+", " "):
                target_no_newline = True
            continue
        last_type = line.line_type
        if line.line_type in (" ", "-"):
            source.append(value)
        if line.line_type in (" ", "+"):
            target.append(value)
    return source, target, target_no_newline


def _place(lines: list[str], source: list[str], expected: int) -> int | None:
    """Where the hunk's source lines are (the occurrence nearest ``expected``), None if nowhere."""
    candidates = find_exact(lines, source)
    if not candidates:
        loose = [line.rstrip() for line in source]
        candidates = [
            i
            for i in range(len(lines) - len(source) + 1)
            if [line.rstrip() for line in lines[i : i + len(source)]] == loose
        ]
    if not candidates:
        return None
    return min(candidates, key=lambda i: abs(i - expected))


def _apply_hunks(rel: str, content: str, hunks: list[object]) -> tuple[str | None, list[EditMiss]]:
    lines = split_lines(content)
    trailing_nl = content.endswith("\n") or not content
    offset = 0
    misses: list[EditMiss] = []
    for number, hunk in enumerate(hunks, 1):
        source, target, target_no_newline = _hunk_lines(hunk)
        start = hunk.source_start  # type: ignore[attr-defined]
        expected = max(0, start - 1 + offset) if source else start + offset
        at = _place(lines, source, expected) if source else min(expected, len(lines))
        if at is None:
            closest, closest_at = closest_region(lines, source)
            misses.append(
                EditMiss(
                    path=rel,
                    search="".join(line + "\n" for line in source),
                    reason=f"hunk {number} (@@ -{start},{hunk.source_length} @@) does not "  # type: ignore[attr-defined]
                    "apply: its context and removed lines are not in the file",
                    closest=closest,
                    closest_start_line=closest_at,
                )
            )
            continue
        reaches_end = at + len(source) >= len(lines)
        lines = lines[:at] + target + lines[at + len(source) :]
        offset += len(target) - len(source)
        if reaches_end and (target or source):
            # The hunk rewrote the end of the file: its marker (or the lack of one) decides.
            trailing_nl = not target_no_newline
    if misses:
        return None, misses
    return "\n".join(lines) + ("\n" if trailing_nl and lines else ""), []


def _recount_hunks(diff: str) -> str:
    """The diff with each hunk header's line counts recomputed from the lines that follow it.

    A hunk ends at the next hunk or file header or at a line that cannot belong to a hunk; an empty line
    inside a hunk is taken as a blank context line (its leading space stripped by an editor).
    """
    lines = diff.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _HUNK_HEADER.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            line = lines[j]
            if _HUNK_HEADER.match(line) or line.startswith(("diff --git ", "--- ", "+++ ")):
                break
            if line == "":
                # A blank line is context only if the hunk goes on after it.
                rest = lines[j + 1 :]
                if not rest or not rest[0] or rest[0][0] not in " +-\\":
                    break
                line = " "
            elif line[0] not in " +-\\":
                break
            body.append(line)
            j += 1
        if not body:  # nothing to recount: leave the header for the parser to reject
            out.append(lines[i])
            i = j
            continue
        source = sum(1 for line in body if line[0] in " -")
        target = sum(1 for line in body if line[0] in " +")
        old_start, new_start, tail = match.groups()
        out.append(f"@@ -{old_start},{source} +{new_start},{target} @@{tail}")
        out.extend(body)
        i = j
    return "\n".join(out)


def _parse(diff: str):  # -> unidiff.PatchSet, imported lazily
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    if "GIT binary patch" in diff or re.search(r"^Binary files .* differ$", diff, re.MULTILINE):
        raise ChangeRejected("binary patches are not allowed")
    if _FORBIDDEN_MODES.search(diff):
        raise ChangeRejected("patches that create or change symlinks or submodules are not allowed")
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        # Models miscount hunk lengths and editors strip the space of blank context lines; recount
        # the hunks and parse again before giving up.
        try:
            patch = PatchSet(_recount_hunks(diff))
        except UnidiffParseError:
            raise ChangeRejected(f"not a valid unified diff: {exc}") from None
    if not len(patch):
        raise ChangeRejected("the diff names no file changes")
    return patch


def apply_patch(root: Path, diff: str) -> ApplyResult:
    """Apply a unified diff (git or plain; parsed with ``unidiff``) under ``root``, all or nothing.

    Paths lose their first component as with ``git apply`` (``a/``, ``b/``, either way round), or none
    for a diff made with ``--no-prefix``.

    Raises ChangeRejected for a path outside the root, ``.git``, binary patches, symlinks or submodules;
    a hunk whose lines are not in the file is a miss with the closest region.
    """
    patch = _parse(diff)
    staged = Staged(Path(root))
    misses: list[EditMiss] = []
    errors: list[str] = []
    level = _prefix_level(patch, staged)
    for pf in patch:
        source = _strip(_diff_name(pf.source_file), level)
        target = _strip(_diff_name(pf.target_file), level)
        for rel in (source, target):
            if rel is not None:
                safe_path(staged.root, rel)
        if source is None and target is None:
            raise ChangeRejected("a file section of the diff names neither a source nor a target")
        if getattr(pf, "is_binary_file", False):
            raise ChangeRejected(f"{target or source}: binary patches are not allowed")
        hunks = list(pf)
        if source is None:  # new file
            assert target is not None
            if staged.current(target) is not None:
                errors.append(f"{target}: the diff creates this file but it already exists")
                continue
            new, hunk_misses = _apply_hunks(target, "", hunks)
            misses.extend(hunk_misses)
            if new is not None:
                staged.set(target, new)
            continue
        content = staged.current(source)
        if content is None:
            errors.append(f"{source}: the diff changes this file but it does not exist")
            continue
        new, hunk_misses = _apply_hunks(source, content, hunks)
        misses.extend(hunk_misses)
        if new is None:
            continue
        if target is None:
            if new.strip():
                errors.append(f"{source}: the diff deletes this file but does not remove all of its lines")
                continue
            staged.set(source, None)
        elif target != source:
            if staged.current(target) is not None:
                errors.append(f"{target}: the diff renames {source} onto an existing file")
                continue
            staged.set(source, None)
            staged.set(target, new)
        else:
            staged.set(source, new)
    return staged.finish(misses, errors)
