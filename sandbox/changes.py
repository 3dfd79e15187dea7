"""Parse and apply a proposed change (SEARCH/REPLACE edits or a unified diff) inside a checkout, safely.

A proposed change is untrusted text. Before a byte is written, every path it names is checked: no absolute
paths, no ``..``, nothing under ``.git``, no symlink that leads out of the root, no binary content, no
symlink or submodule created by a patch. Those are *rejections* (:class:`ChangeRejected`): the change is
hostile or malformed and no retry will help.

Edits that simply do not match (a SEARCH block or a hunk whose lines are not in the file) are *misses*:
they come back in :class:`ApplyResult` with the closest region of the file ("did you mean"), so that a
model can correct its edit. Nothing is written unless every edit applies and every touched Python file
compiles: the change is all or nothing.

SEARCH/REPLACE matching is tolerant in the ways models are known to slip (after Aider's edit-block
coder): trailing whitespace, a uniformly wrong indentation, missing or extra blank lines. A block that
matches more than one place is a miss too (ambiguous), rather than an edit at a guessed location.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from tracemend.errors import ChangeRejected
from tracemend.records import ApplyResult, EditMiss

__all__ = [
    "ApplyResult",
    "ChangeRejected",
    "Edit",
    "EditMiss",
    "apply_change",
    "apply_edits",
    "apply_patch",
    "looks_like_diff",
    "parse_edits",
]


class Edit(BaseModel):
    """Replace ``search`` with ``replace`` in ``path`` (relative to the root); empty ``search`` creates."""

    path: str
    search: str
    replace: str


# --- paths ------------------------------------------------------------------------------------------

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


def _normalise(rel: str) -> str:
    """One spelling per file (``./a//b.py`` → ``a/b.py``), so that edits to it accumulate."""
    if not rel.strip():
        return rel  # left for safe_path to reject
    return PurePosixPath(rel.replace("\\", "/")).as_posix()


def _read_text(path: Path, rel: str) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise ChangeRejected(f"{rel}: binary file; binary changes are not allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ChangeRejected(f"{rel}: not UTF-8 text; binary changes are not allowed") from None


# --- the pending change -----------------------------------------------------------------------------


@dataclass
class _Pending:
    """New contents by path, in memory until the whole change has applied and compiled."""

    root: Path
    before: dict[str, str | None] = field(default_factory=dict)
    after: dict[str, str | None] = field(default_factory=dict)
    abs_paths: dict[str, Path] = field(default_factory=dict)
    newline: dict[str, str] = field(default_factory=dict)

    def current(self, rel: str) -> str | None:
        """Contents as changed so far (``\\n`` line endings), None if the file does not exist."""
        rel = _normalise(rel)
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
        text = _read_text(path, rel)
        self.newline[rel] = "\r\n" if "\r\n" in text else "\n"
        text = text.replace("\r\n", "\n")
        self.before[rel] = text
        return text

    def set(self, rel: str, text: str | None) -> None:
        if text is not None and "\x00" in text:
            raise ChangeRejected(f"{rel}: NUL byte in new content; binary changes are not allowed")
        self.current(rel)
        self.after[_normalise(rel)] = text

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


# --- SEARCH/REPLACE ---------------------------------------------------------------------------------

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
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
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        path = None
        j = i - 1
        # Look back over a fence line and blank lines for the file name.
        while j >= 0 and j >= i - 3:
            candidate = lines[j]
            if _SEARCH.match(candidate) or _REPLACE.match(candidate):
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
            if _SEARCH.match(lines[k]) or _REPLACE.match(lines[k]):
                raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) has no ======= divider")
            search.append(lines[k])
            k += 1
        if k >= len(lines):
            raise ChangeRejected(f"SEARCH block at line {i + 1} ({path}) is not terminated")
        replace: list[str] = []
        k += 1
        while k < len(lines) and not _REPLACE.match(lines[k]):
            if _SEARCH.match(lines[k]):
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


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _dedent(lines: list[str]) -> tuple[list[str], int]:
    widths = [len(_indent(line)) for line in lines if line.strip()]
    cut = min(widths) if widths else 0
    return [line[cut:] if line.strip() else "" for line in lines], cut


def _find_exact(content: list[str], search: list[str]) -> list[int]:
    n = len(search)
    return [i for i in range(len(content) - n + 1) if content[i : i + n] == search]


def _find_tolerant(content: list[str], search: list[str]) -> list[tuple[int, int, str]]:
    """Matches of ``search`` ignoring trailing whitespace, a uniform indentation shift and blank lines.

    Returns ``(start, end, prefix)``: content lines ``start..end-1`` match, and ``prefix`` is the
    indentation the content has in front of the dedented search text.
    """
    wanted, _ = _dedent([line.rstrip() for line in search])
    wanted = [line for line in wanted if line]
    if not wanted:
        return []
    matches = []
    first = wanted[0]
    for i, line in enumerate(content):
        stripped = line.rstrip()
        if not stripped.endswith(first) or stripped[: len(stripped) - len(first)].strip():
            continue
        prefix = stripped[: len(stripped) - len(first)]
        k, w = i, 0
        while k < len(content) and w < len(wanted):
            line_k = content[k].rstrip()
            if not line_k:
                k += 1
                continue
            if line_k != prefix + wanted[w]:
                break
            k += 1
            w += 1
        if w == len(wanted):
            matches.append((i, k, prefix))
    return matches


def _closest(content: list[str], search: list[str]) -> tuple[str | None, int | None]:
    """The region of ``content`` most like ``search`` (line-wise, whitespace-insensitive), if any is close."""
    needle = [line.strip() for line in search if line.strip()]
    hay = [line.strip() for line in content]
    if not needle or not content:
        return None, None
    n = len(search)
    best, best_i = 0.0, -1
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2("\n".join(needle))
    for i in range(max(1, len(content) - n + 1)):
        window = [line for line in hay[i : i + n] if line]
        if not window:
            continue
        matcher.set_seq1("\n".join(window))
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_i = ratio, i
    if best < 0.5 or best_i < 0:
        return None, None
    return "".join(line + "\n" for line in content[best_i : best_i + n]), best_i + 1


def _lines(text: str) -> list[str]:
    if not text:
        return []
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def _apply_one(content: str, edit: Edit) -> tuple[str | None, EditMiss | None]:
    search = _lines(edit.search.replace("\r\n", "\n"))
    replace = _lines(edit.replace.replace("\r\n", "\n"))
    lines = _lines(content)
    trailing_nl = content.endswith("\n") or not content

    def done(new_lines: list[str]) -> str:
        return "\n".join(new_lines) + ("\n" if trailing_nl and new_lines else "")

    exact = _find_exact(lines, search)
    if len(exact) == 1:
        i = exact[0]
        return done(lines[:i] + replace + lines[i + len(search) :]), None
    if len(exact) > 1:
        where = ", ".join(str(i + 1) for i in exact[:5])
        return None, EditMiss(
            path=edit.path,
            search=edit.search,
            reason=f"SEARCH text occurs {len(exact)} times (lines {where}); include more surrounding lines",
            closest=None,
            closest_start_line=exact[0] + 1,
        )
    tolerant = _find_tolerant(lines, search)
    if len(tolerant) == 1:
        start, end, prefix = tolerant[0]
        # The replacement keeps its indentation relative to the SEARCH text, shifted to where the match sits.
        _, cut = _dedent([line.rstrip() for line in search])
        new = []
        for line in (line.rstrip() for line in replace):
            if not line:
                new.append("")
                continue
            drop = min(cut, len(_indent(line)))
            new.append(prefix + line[drop:])
        # Blank lines at the edges of the SEARCH text are not part of the match; the same blank line
        # copied into REPLACE would otherwise be doubled.
        if search and not search[0].strip() and new and not new[0]:
            new.pop(0)
        if search and not search[-1].strip() and new and not new[-1]:
            new.pop()
        return done(lines[:start] + new + lines[end:]), None
    if len(tolerant) > 1:
        where = ", ".join(str(s + 1) for s, _, _ in tolerant[:5])
        return None, EditMiss(
            path=edit.path,
            search=edit.search,
            reason=f"SEARCH text matches {len(tolerant)} places (lines {where}) after whitespace "
            "normalisation; include more surrounding lines",
            closest_start_line=tolerant[0][0] + 1,
        )
    closest, at = _closest(lines, search)
    return None, EditMiss(
        path=edit.path,
        search=edit.search,
        reason="SEARCH text not found in the file"
        + ("; the closest region is shown" if closest else "; nothing similar found"),
        closest=closest,
        closest_start_line=at,
    )


def apply_edits(root: Path, edits: Iterable[Edit]) -> ApplyResult:
    """Apply SEARCH/REPLACE edits to the files under ``root``, all or nothing.

    Raises ChangeRejected for a path that is not allowed or a binary file; a SEARCH text that does not
    match is returned as a miss with the closest region of the file.
    """
    pending = _Pending(Path(root))
    misses: list[EditMiss] = []
    errors: list[str] = []
    for edit in edits:
        content = pending.current(edit.path)
        if not edit.search.strip():
            if content is None or not content.strip():
                pending.set(edit.path, edit.replace)
            else:
                joined = content if content.endswith("\n") else content + "\n"
                pending.set(edit.path, joined + edit.replace)
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
        new, miss = _apply_one(content, edit)
        if miss is not None:
            misses.append(miss)
        else:
            pending.set(edit.path, new)
    return pending.finish(misses, errors)


# --- unified diffs ----------------------------------------------------------------------------------

_DIFF_START = re.compile(r"^(diff --git |--- \S|\+\+\+ \S|@@ -\d)", re.MULTILINE)


def looks_like_diff(text: str) -> bool:
    """Whether ``text`` is a unified diff (rather than SEARCH/REPLACE blocks)."""
    if any(_SEARCH.match(line) for line in text.splitlines()):
        return False
    return bool(
        re.search(r"^--- .*\n\+\+\+ ", text, re.MULTILINE) or re.search(r"^diff --git ", text, re.MULTILINE)
    )


def _diff_path(name: str | None, prefix: str) -> str | None:
    if name is None:
        return None
    name = name.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    if name.startswith(prefix):
        name = name[len(prefix) :]
    return name


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


def _apply_hunks(rel: str, content: str, hunks: list[object]) -> tuple[str | None, list[EditMiss]]:
    lines = _lines(content)
    trailing_nl = content.endswith("\n") or not content
    offset = 0
    misses: list[EditMiss] = []
    for number, hunk in enumerate(hunks, 1):
        source, target, target_no_newline = _hunk_lines(hunk)
        start = hunk.source_start  # type: ignore[attr-defined]
        expected = max(0, start - 1 + offset) if source else start + offset
        if not source:
            at = min(expected, len(lines))
        else:
            candidates = _find_exact(lines, source)
            if not candidates:
                loose = [line.rstrip() for line in source]
                candidates = [
                    i
                    for i in range(len(lines) - len(source) + 1)
                    if [line.rstrip() for line in lines[i : i + len(source)]] == loose
                ]
            if not candidates:
                closest, closest_at = _closest(lines, source)
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
            # Like patch(1): the occurrence nearest to where the hunk says it belongs.
            at = min(candidates, key=lambda i: abs(i - expected))
        reaches_end = at + len(source) >= len(lines)
        lines = lines[:at] + target + lines[at + len(source) :]
        offset += len(target) - len(source)
        if reaches_end and (target or source):
            # The hunk rewrote the end of the file: its marker (or the lack of one) decides.
            trailing_nl = not target_no_newline
    if misses:
        return None, misses
    return "\n".join(lines) + ("\n" if trailing_nl and lines else ""), []


_FORBIDDEN_MODES = re.compile(
    r"^(new file mode|new mode|old mode|deleted file mode) (120000|160000)", re.MULTILINE
)


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


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


def apply_patch(root: Path, diff: str) -> ApplyResult:
    """Apply a unified diff (git or plain; parsed with ``unidiff``) under ``root``, all or nothing.

    Raises ChangeRejected for a path outside the root, ``.git``, binary patches, symlinks or submodules;
    a hunk whose lines are not in the file is a miss with the closest region.
    """
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
    pending = _Pending(Path(root))
    misses: list[EditMiss] = []
    errors: list[str] = []
    for pf in patch:
        source = _diff_path(pf.source_file, "a/")
        target = _diff_path(pf.target_file, "b/")
        for rel in (source, target):
            if rel is not None:
                safe_path(pending.root, rel)
        if source is None and target is None:
            raise ChangeRejected("a file section of the diff names neither a source nor a target")
        if getattr(pf, "is_binary_file", False):
            raise ChangeRejected(f"{target or source}: binary patches are not allowed")
        hunks = list(pf)
        if source is None:  # new file
            assert target is not None
            if pending.current(target) is not None:
                errors.append(f"{target}: the diff creates this file but it already exists")
                continue
            new, hunk_misses = _apply_hunks(target, "", hunks)
            misses.extend(hunk_misses)
            if new is not None:
                pending.set(target, new)
            continue
        content = pending.current(source)
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
            pending.set(source, None)
        elif target != source:
            if pending.current(target) is not None:
                errors.append(f"{target}: the diff renames {source} onto an existing file")
                continue
            pending.set(source, None)
            pending.set(target, new)
        else:
            pending.set(source, new)
    return pending.finish(misses, errors)


def apply_change(root: Path, change: str | list[Edit]) -> ApplyResult:
    """A unified diff if ``change`` looks like one, else SEARCH/REPLACE text, or a list of edits."""
    if isinstance(change, list):
        return apply_edits(root, change)
    if looks_like_diff(change):
        return apply_patch(root, change)
    edits = parse_edits(change)
    if not edits:
        raise ChangeRejected("the change is neither a unified diff nor SEARCH/REPLACE blocks")
    return apply_edits(root, edits)
