"""Which model, where and how: environment first, then ``[tool.tracemend]``, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracemend.errors import ModelError
from tracemend.project import tool_table

DEFAULT_MODEL = "openai/gpt-4o-mini"
ROLES = ("default", "judge", "triage", "diagnose")


@dataclass
class ModelSettings:
    model: str = DEFAULT_MODEL
    judge_model: str | None = None
    triage_model: str | None = None
    diagnose_model: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    concurrency: int = 16
    max_retries: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 20.0


# Each setting's environment variable; the same name without the prefix, lower case, in [tool.tracemend].
ENV_VARS = {
    "model": "TRACEMEND_MODEL",
    "judge_model": "TRACEMEND_JUDGE_MODEL",
    "triage_model": "TRACEMEND_TRIAGE_MODEL",
    "diagnose_model": "TRACEMEND_DIAGNOSE_MODEL",
    "api_base": "TRACEMEND_API_BASE",
    "api_key": "TRACEMEND_API_KEY",
    "timeout": "TRACEMEND_TIMEOUT",
    "concurrency": "TRACEMEND_CONCURRENCY",
    "max_retries": "TRACEMEND_MAX_RETRIES",
    "retry_base_delay": "TRACEMEND_RETRY_BASE_DELAY",
    "retry_max_delay": "TRACEMEND_RETRY_MAX_DELAY",
}


def load_settings(root: Path | None = None) -> ModelSettings:
    """Environment first (``TRACEMEND_MODEL``, ``TRACEMEND_JUDGE_MODEL``, ``TRACEMEND_TIMEOUT``, ...),
    then ``[tool.tracemend]`` in ``<project root>/pyproject.toml``, then defaults."""
    table = tool_table(root)
    settings = ModelSettings()
    for name, env in ENV_VARS.items():
        raw = os.environ.get(env)
        value: Any = raw if raw not in (None, "") else table.get(name)
        if value is None:
            continue
        default = getattr(ModelSettings, name, None)
        try:
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            source = env if raw else "[tool.tracemend] " + name
            raise ModelError(f"{source}: {value!r} is not a valid {type(default).__name__}") from None
        setattr(settings, name, value)
    settings.concurrency = max(1, settings.concurrency)
    settings.max_retries = max(0, settings.max_retries)
    return settings


def resolve_model(role: str = "default") -> str:
    """The model id for a role: ``default``, ``judge``, ``triage`` or ``diagnose`` (falling back to default)."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; expected one of {', '.join(ROLES)}")
    settings = load_settings()
    if role != "default":
        specific = getattr(settings, f"{role}_model")
        if specific:
            return specific
    return settings.model
