"""tracemend: trace LLM agents, find what the last change broke, propose and verify a fix, lock it in.

The public surface is small: :func:`track`, :class:`Config`, :func:`configure`, :func:`flush`,
:func:`update_current_span`, :func:`update_current_trace` and :func:`feedback` (a person's judgment of a
trace, by the id :func:`current_trace_id` handed out). Importing tracemend imports neither
pydantic nor any heavy library; :class:`Config` loads pydantic on first use, and the stages of the loop
(litellm, opik, scipy, gitpython) load what they need when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracemend.capture import (
    configure,
    current_span_id,
    current_trace_id,
    feedback,
    flush,
    shutdown,
    stats,
    track,
    update_current_span,
    update_current_trace,
)

if TYPE_CHECKING:
    from tracemend.capture.config import Config

__all__ = [
    "Config",
    "configure",
    "current_span_id",
    "current_trace_id",
    "feedback",
    "flush",
    "shutdown",
    "stats",
    "track",
    "update_current_span",
    "update_current_trace",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Config":
        from tracemend.capture.config import Config

        return Config
    raise AttributeError(f"module 'tracemend' has no attribute {name!r}")
