"""Properties of change application over generated files (hypothesis)."""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracemend.sandbox import Edit, apply_edits, apply_patch

WORDS = st.sampled_from(["a = 1", "b = a", "return x", "if y:", "pass", "x += 1", "", "# note", "call(z)"])
INDENTS = st.sampled_from(["", "    ", "        "])
LINE = st.builds(lambda i, w: (i + w) if w else "", INDENTS, WORDS)
TEXT = st.lists(LINE, max_size=30).map(lambda lines: "".join(line + "\n" for line in lines))


@contextmanager
def _tree(text: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="prop-") as tmp:
        root = Path(tmp)
        (root / "f.py.txt").write_bytes(text.encode())
        yield root


@settings(max_examples=150, deadline=None)
@given(old=TEXT, new=TEXT, n=st.integers(0, 3), old_nl=st.booleans(), new_nl=st.booleans())
def test_a_unified_diff_of_old_to_new_applied_to_old_gives_new(
    old: str, new: str, n: int, old_nl: bool, new_nl: bool
) -> None:
    if not old_nl and old.endswith("\n"):
        old = old[:-1]
    if not new_nl and new.endswith("\n"):
        new = new[:-1]
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, "a/f.py.txt", "b/f.py.txt", n=n))
    if not lines:
        return
    # difflib leaves a missing final newline unmarked; a real diff says so.
    diff = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    with _tree(old) as root:
        result = apply_patch(root, diff)
        assert result.ok, (result.misses, diff)
        assert (root / "f.py.txt").read_text() == new


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(LINE, max_size=8),
    block=st.lists(st.builds(lambda i, w: i + w, INDENTS, WORDS.filter(bool)), min_size=1, max_size=5),
    after=st.lists(LINE, max_size=8),
    shift=st.sampled_from(["", "  ", "    "]),
    unindent=st.booleans(),
)
def test_a_unique_block_is_found_even_with_shifted_indentation(
    before: list[str], block: list[str], after: list[str], shift: str, unindent: bool
) -> None:
    text = "".join(line + "\n" for line in [*before, *block, *after])

    # Only blocks that occur once are meant to apply (elsewhere: an ambiguity miss).
    def normal(lines: list[str]) -> list[str]:
        return [line.strip() for line in lines if line.strip()]

    all_lines = [*before, *block, *after]
    nb = normal(block)
    occurrences = sum(
        1 for i in range(len(all_lines)) if normal(all_lines[i:])[: len(nb)] == nb and all_lines[i].strip()
    )
    if occurrences != 1:
        return
    common = min(len(line) - len(line.lstrip()) for line in block)
    search_lines = [line[common:] if unindent else shift + line for line in block]
    search = "".join(line + "\n" for line in search_lines)
    replace = "".join(line + "  # changed\n" for line in search_lines)
    expected = "".join(line + "\n" for line in [*before, *(line + "  # changed" for line in block), *after])
    with _tree(text) as root:
        result = apply_edits(root, [Edit(path="f.py.txt", search=search, replace=replace)])
        assert result.ok, result.misses
        assert (root / "f.py.txt").read_text() == expected


@settings(max_examples=150, deadline=None)
@given(old=TEXT, new=TEXT, old_nl=st.booleans(), new_nl=st.booleans())
def test_the_shown_diff_reapplies_to_the_same_result(old: str, new: str, old_nl: bool, new_nl: bool) -> None:
    # ApplyResult.diff is for people, but it must be a faithful diff: applying it to the original gives
    # exactly what the edit wrote.
    old = old if old_nl or not old.endswith("\n") else old[:-1]
    new = new if new_nl or not new.endswith("\n") else new[:-1]
    if not old.strip() or old == new:
        return
    with _tree(old) as root:
        result = apply_edits(root, [Edit(path="f.py.txt", search=old, replace=new)])
        if not result.ok or not result.diff:
            return  # ambiguous old text (covered elsewhere), or only a final newline differed
        written = (root / "f.py.txt").read_text()
        (root / "f.py.txt").write_text(old)
        again = apply_patch(root, result.diff)
        assert again.ok, (again.misses, result.diff)
        assert (root / "f.py.txt").read_text() == written
