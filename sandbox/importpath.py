"""Where a rerun or a case run imports the code under test from: the tree being checked, never the user's
live checkout.

The tree's import roots (:func:`tracemend.project.import_roots`: its pyproject, the ``src/`` convention,
the tree itself) go first on ``PYTHONPATH``. Entries of the user's own ``PYTHONPATH`` that point into their
checkout are moved to the same place in the tree (or dropped when the tree has no such folder); other
entries are kept. Inside the child, :func:`strip_live_roots` removes what an installed package (an editable
install's ``.pth`` line) added for the live checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

from tracemend.project import import_roots, strip_live_roots

__all__ = ["strip_live_roots", "tree_pythonpath"]


def tree_pythonpath(tree: Path, live: Path | None = None, pythonpath: str | None = None) -> str:
    """``PYTHONPATH`` for a process that must import the project from ``tree``.

    ``live`` is the user's checkout when ``tree`` is a worktree of it; ``pythonpath`` the user's value
    (default: this process's).
    """
    tree = Path(tree).resolve()
    live = Path(live).resolve() if live is not None else None
    given = os.environ.get("PYTHONPATH", "") if pythonpath is None else pythonpath
    entries = [str(p) for p in import_roots(tree)]
    for entry in given.split(os.pathsep):
        if not entry:
            continue
        path = Path(entry).resolve()
        if live is not None and live != tree and path.is_relative_to(live):
            mirrored = tree / path.relative_to(live)
            if not mirrored.is_dir():
                continue
            path = mirrored
        if str(path) not in entries:
            entries.append(str(path))
    return os.pathsep.join(entries)
