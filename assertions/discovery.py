"""Which YAML files are tracemend regression cases, and migrating cases written before they said so.

The test itself (:func:`case_kind`, from a file's text alone) lives in the pytest entry point
``tracemend_pytest``, which must decide without importing tracemend; it is re-exported here.

``python -m tracemend.assertions.discovery [FOLDER]`` adds ``tracemend_case: 1`` to the legacy cases of a
folder (default: the regressions setting).
"""

from __future__ import annotations

from pathlib import Path

from tracemend_pytest import SCHEMA_KEY, SCHEMA_VERSION, SUFFIXES, case_files, case_kind

__all__ = ["SCHEMA_KEY", "SCHEMA_VERSION", "SUFFIXES", "case_files", "case_kind", "main", "migrate"]


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
