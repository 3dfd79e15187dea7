"""Process-wide settings, changed by :func:`tracemend.configure` or environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tracemend.capture.state import DEFAULT_QUEUE_SIZE
from tracemend.project import project_root
from tracemend.store.paths import resolve_db_path


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


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
        return self.project or os.environ.get("TRACEMEND_PROJECT") or project_root().name or "default"


def from_environment() -> Settings:
    s = Settings()
    s.enabled = not _env_flag("TRACEMEND_DISABLED")
    s.environment = os.environ.get("TRACEMEND_ENV", s.environment)
    if os.environ.get("TRACEMEND_QUEUE_SIZE", "").isdigit():
        s.queue_size = int(os.environ["TRACEMEND_QUEUE_SIZE"])
    if _env_flag("TRACEMEND_NO_REDACT"):
        s.redact = False
    return s
