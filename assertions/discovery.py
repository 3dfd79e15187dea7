"""Which YAML files are tracemend regression cases, told from their text alone.

No YAML parser is needed, so the pytest plugin can decide in any project (with only ``pip install
tracemend``) by reading the first bytes of the YAML files in the regressions folder:

- ``"case"``: the file declares itself with a top-level ``tracemend_case: <version>`` line, which
  ``tracemend lock`` writes as the first key;
- ``"legacy"``: a case written before that key existed (top-level ``name:`` and ``entry_point:
  module:qualname`` lines): still run, with a warning naming :func:`migrate`;
- ``None``: any other YAML, which is not tracemend's and is left alone.

``python -m tracemend.assertions.discovery [FOLDER]`` adds the key to the legacy cases of a folder
(default: the regressions setting).
"""

from __future__ import annotations

import re
from pathlib import Path

SCHEMA_KEY = "tracemend_case"
SCHEMA_VERSION = 1
SUFFIXES = (".yaml", ".yml")
HEAD_BYTES = 65_536  # a case's keys come first; a large unrelated file is not read whole
_DECLARED = re.compile(rf"^{SCHEMA_KEY}[ \t]*:", re.M)
_NAME = re.compile(r"^name[ \t]*:", re.M)
_ENTRY = re.compile(
    r"""^entry_point[ \t]*:[ \t]*["']?[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*["']?[ \t]*(#.*)?$""", re.M
)


def case_kind(path: Path | str) -> str | None:
    """``"case"``, ``"legacy"`` or ``None`` (not a tracemend case), from the file's first bytes."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    if _DECLARED.search(head):
        return "case"
    if _NAME.search(head) and _ENTRY.search(head):
        return "legacy"
    return None


def migrate(path: Path | str) -> bool:
    """Add ``tracemend_case: 1`` to a legacy case file, after its leading comments; False when the file
    is not a legacy case (already declared, or not a case at all)."""
    path = Path(path)
    if case_kind(path) != "legacy":
        return False
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = 0
    while at < len(lines) and (
        lines[at].startswith("#") or lines[at].startswith("---") or not lines[at].strip()
    ):
        at += 1
    lines.insert(at, f"{SCHEMA_KEY}: {SCHEMA_VERSION}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return True


def case_files(folder: Path | str) -> list[Path]:
    """The YAML files under ``folder`` that may be cases (``_name.yaml`` and hidden files never are)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(("_", "."))
    )


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args:
        folder = Path(args[0])
    else:
        from tracemend import settings

        folder = settings.path("regressions") or Path("tests/regressions")
    migrated = [p for p in case_files(folder) if migrate(p)]
    for path in migrated:
        print(f"{path}: added {SCHEMA_KEY}: {SCHEMA_VERSION}")
    print(f"{len(migrated)} case file(s) migrated under {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
