"""Every error tracemend raises on purpose, under one base, :class:`TracemendError`.

Each stage raises its own subclass and the CLI maps them to exit codes in one place
(``tracemend.cli.errors``). Exceptions *recorded* from the user's code are data, not these: see
:class:`tracemend.records.ErrorInfo`. This module imports nothing of tracemend's, so any module may use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType


class TracemendError(Exception):
    """Base of tracemend's own errors: the message is meant for a person, one line where possible."""


# --- foundations ------------------------------------------------------------------------------------


class ConfigError(TracemendError):
    """A setting is invalid: an environment variable, ``[tool.tracemend]`` or an argument."""


class StoreError(TracemendError):
    """The store cannot be used: missing, corrupt, foreign or from a newer tracemend."""


class SourceError(StoreError):
    """A trace source (Phoenix, Opik) cannot be read: a bad ``--source``, an unreachable server, an unknown
    project, a refused request."""


class VcsError(TracemendError):
    """A git operation failed (not a repository, unknown revision, patch does not apply...)."""


class ReplayError(TracemendError):
    """The recorded call cannot be rebuilt (entry point not importable, config class gone, bad input)."""


class ModelError(TracemendError):
    """A model call failed for good (after retries), or its answer cannot be used.

    ``hint`` says what a person can do about it (set a variable, try again later, pick another model).
    """

    hint: str = "try again later, or use another model (--model)"


class ModelAuthError(ModelError):
    """The model's credentials are missing or were refused (HTTP 401/403): never retried; the message
    names the variable to set."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class ModelRequestsForbidden(ModelError):
    """A real model request was attempted while model requests are forbidden (as in test suites)."""


class StructuredOutputError(ModelError):
    """The model's answer did not validate against the requested type, even after re-asking."""

    def __init__(self, message: str, *, raw: str | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors or []


# --- stages -----------------------------------------------------------------------------------------


class AnalyzeError(TracemendError):
    """The analysis cannot run as asked (no traces, unknown revision, bad period)."""


class TriageError(TracemendError):
    """Triage cannot run: unknown revisions, no earlier deployed version, no example traces."""


class DiagnoseError(TracemendError):
    """Diagnosis cannot start (no repository, nothing to diagnose)."""


class ToolRefused(TracemendError):
    """A diagnose tool call is not allowed (outside the repository, bad arguments); the text goes back to
    the model."""


class SandboxError(TracemendError):
    """The sandbox itself could not run (not a git repository, unknown revision)."""


class ChangeRejected(TracemendError):
    """The change is hostile or invalid (path outside the root, .git, binary, symlink, unparseable)."""


class SelectionError(TracemendError):
    """A trace id or signature names nothing in the store."""


class CaseFileError(TracemendError):
    """A regression-case file cannot be used; ``str()`` is ``path:line: reason``."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


class JudgeCacheMiss(TracemendError):
    """Cache-only mode and no stored verdict for this (assertion, output, sample)."""


class HealError(TracemendError):
    """The loop cannot run (usage): no store, not a repository, a state from another run."""


class CouldNotFinish(TracemendError):
    """A command could not finish the work it was asked to do because a model or the infrastructure failed
    (server errors, timeouts, unusable answers, refused credentials): exit 3, distinct from "found
    something" (1). The message is one line: the stage, the model, the cause and what to do."""


# --- installation -----------------------------------------------------------------------------------

# What each optional library is installed with: ``pip install tracemend`` records traces (and reads them
# back with ``tracemend traces | show | status``); the rest of the loop comes with extras.
EXTRAS = {
    "yaml": "loop",
    "scipy": "loop",
    "numpy": "loop",
    "litellm": "loop",
    "git": "loop",
    "unidiff": "loop",
    "jsonschema": "loop",
    "opik": "opik",
    "opentelemetry": "otel",
}


class MissingExtra(TracemendError):
    """A feature needs an optional dependency that is not installed; the message says which extra."""

    def __init__(self, module: str, extra: str, what: str | None = None) -> None:
        self.module = module
        self.extra = extra
        needs = f"{what} needs" if what else "this needs"
        super().__init__(f"{needs} {module!r}, which comes with an extra: pip install 'tracemend[{extra}]'")


def missing_extra(exc: ImportError, what: str | None = None) -> MissingExtra | None:
    """The :class:`MissingExtra` an ImportError stands for, when the missing module is one of an extra."""
    name = getattr(exc, "name", None) or ""
    top = name.split(".", 1)[0]
    if isinstance(exc, ModuleNotFoundError) and top in EXTRAS:
        return MissingExtra(name, EXTRAS[top], what)
    return None


def require(module: str, what: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, raising :class:`MissingExtra` when its extra is not installed."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = missing_extra(exc, what)
        if missing is None:
            raise
        raise missing from exc
