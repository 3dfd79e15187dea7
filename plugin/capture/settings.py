"""The recorder's settings: :func:`tracemend.configure` arguments over ``TRACEMEND_*`` variables over
``[tool.tracemend]`` over defaults, as :mod:`tracemend.settings` declares them.

Read once, by the writer (off the decorator's path) or by ``configure``; a value that cannot be used is
logged and its default kept, since recording never raises into the app.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend import settings as registry
from tracemend.capture.state import DEFAULT_QUEUE_SIZE
from tracemend.errors import ConfigError
from tracemend.project import project_root
from tracemend.store.paths import resolve_db_path

logger = logging.getLogger("tracemend")


@dataclass
class Settings:
    enabled: bool = True
    db_path: Path | None = None
    project: str | None = None
    environment: str = "development"
    queue_size: int = DEFAULT_QUEUE_SIZE
    redact: bool = True
    redact_keys: list[str] = field(default_factory=list)
    redact_patterns: list[str] = field(default_factory=list)
    max_string_chars: int = 10_000
    max_items: int = 200
    max_depth: int = 12

    def resolved_db_path(self) -> Path:
        # A rerun or a regression-case run records into a store of its own even when the code under
        # test configures one explicitly: it must never write into the production store.
        pinned = os.environ.get("TRACEMEND_RUN_DB")
        return Path(pinned) if pinned else resolve_db_path(self.db_path)

    def resolved_project(self) -> str:
        return self.project or _get("project", None) or project_root().name or "default"


def _get(name: str, default: Any) -> Any:
    try:
        value = registry.get(name)
    except ConfigError as exc:
        logger.warning("tracemend: %s; using the default", exc)
        return default
    return default if value is None else value


def from_environment() -> Settings:
    """Settings from the environment and ``[tool.tracemend]`` (the store path is resolved when opened)."""
    s = Settings()
    s.enabled = _get("enabled", s.enabled)
    s.environment = _get("environment", s.environment)
    s.queue_size = max(1, _get("queue_size", s.queue_size))
    s.redact = _get("redact", s.redact)
    s.project = _get("project", None)
    s.redact_keys = list(_get("redact_keys", ()))
    s.redact_patterns = list(_get("redact_patterns", ()))
    return s
