"""Finding a block of lines in a file: exactly, tolerantly (as models slip), or the closest region.

Tolerance follows Aider's edit-block coder: trailing whitespace, a uniformly wrong indentation, missing or
extra blank lines. When nothing matches, the region most like the wanted lines is the "did you mean".
"""

from __future__ import annotations

import difflib

__all__ = ["closest_region", "dedent", "find_exact", "find_tolerant", "indent_of", "split_lines"]


def split_lines(text: str) -> list[str]:
    """Lines without their ``\\n``; a final newline adds no empty line."""
    if not text:
        return []
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def dedent(lines: list[str]) -> tuple[list[str], int]:
    """The lines without their common indentation (blank lines emptied), and its width."""
    widths = [len(indent_of(line)) for line in lines if line.strip()]
    cut = min(widths) if widths else 0
    return [line[cut:] if line.strip() else "" for line in lines], cut


def find_exact(content: list[str], search: list[str]) -> list[int]:
    n = len(search)
    return [i for i in range(len(content) - n + 1) if content[i : i + n] == search]


def find_tolerant(content: list[str], search: list[str]) -> list[tuple[int, int, str]]:
    """Matches of ``search`` ignoring trailing whitespace, a uniform indentation shift and blank lines.

    Returns ``(start, end, prefix)``: content lines ``start..end-1`` match, and ``prefix`` is the
    indentation the content has in front of the dedented search text.
    """
    wanted, _ = dedent([line.rstrip() for line in search])
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


def closest_region(content: list[str], search: list[str]) -> tuple[str | None, int | None]:
    """The region of ``content`` most like ``search`` (line-wise, whitespace-insensitive), if any is close,
    with its first line number (1-based)."""
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
