"""Where the store file is: an explicit path, else ``TRACEMEND_DB``, else ``[tool.tracemend] db``, else the
project's ``.tracemend`` folder."""

from __future__ import annotations

import os
from pathlib import Path

from tracemend import settings
from tracemend.project import project_root


def resolve_db_path(explicit: Path | str | None = None) -> Path:
    """``explicit``, else ``TRACEMEND_DB`` (as given), else ``[tool.tracemend] db`` (relative to the project
    root), else ``<project root>/.tracemend/traces.db``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TRACEMEND_DB")
    if env:
        return Path(env)
    return settings.path("db") or project_root() / ".tracemend" / "traces.db"
