"""Which model, where and how: environment first, then ``[tool.tracemend]``, then defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tracemend.errors import ConfigError, ModelError

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


def load_settings(root: Path | None = None) -> ModelSettings:
    """Environment first (``TRACEMEND_MODEL``, ``TRACEMEND_JUDGE_MODEL``, ``TRACEMEND_TIMEOUT``, ...),
    then ``[tool.tracemend]`` in ``<project root>/pyproject.toml``, then defaults (see
    :mod:`tracemend.settings`)."""
    from tracemend import settings as registry

    values: dict[str, Any] = {}
    try:
        for f in fields(ModelSettings):
            values[f.name] = registry.get(f.name, root=root)
    except ConfigError as exc:  # a model setting that cannot be used: the model call cannot happen
        raise ModelError(str(exc)) from None
    settings = ModelSettings(**{k: v for k, v in values.items() if v is not None})
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
