"""The agent's configuration: what model, prompt, temperature and tools a call ran with.

Users subclass :class:`Config`. A snapshot of the config (and its content hash) goes on every trace, so the
analyzer can tell a config change from a code change and the sandbox can rerun with the same settings.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from tracemend.capture.state import add_config_type


class Config(BaseModel):
    """Base class for an agent's configuration. Frozen, so what was recorded is what ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")


add_config_type(Config)


def is_opik_config(value: Any) -> bool:
    # Checked by module name so that opik is never imported here.
    opik = sys.modules.get("opik")
    return opik is not None and isinstance(value, getattr(opik, "Config", ()))


def config_snapshot(value: Any) -> dict[str, Any] | None:
    """A JSON-ready dict of a Config, an ``opik.Config`` or a plain dict; None for anything else."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return json.loads(json.dumps(value, default=repr))
    if is_opik_config(value):
        names = getattr(type(value), "__field_names__", ())
        raw = {name: object.__getattribute__(value, name) for name in names}
        return json.loads(json.dumps(raw, default=repr))
    return None


def config_hash(snapshot: dict[str, Any]) -> str:
    """Content hash of a snapshot: equal settings give equal hashes whatever the key order."""
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def qualified_class(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}:{cls.__qualname__}"
