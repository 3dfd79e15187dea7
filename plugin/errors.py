"""Every error tracemend raises on purpose, under one base, :class:`TracemendError`.

Each stage raises its own subclass and the CLI maps them to exit codes in one place
(``tracemend.cli.errors``). Exceptions *recorded* from the user's code are data, not these: see
:class:`tracemend.records.ErrorInfo`. This module imports nothing, so any module may use it.
"""

from __future__ import annotations

from pathlib import Path


class TracemendError(Exception):
    """Base of tracemend's own errors: the message is meant for a person, one line where possible."""


# --- foundations ------------------------------------------------------------------------------------


class ConfigError(TracemendError):
    """A setting is invalid: an environment variable, ``[tool.tracemend]`` or an argument."""


class StoreError(TracemendError):
    """The store cannot be used: missing, corrupt, foreign or from a newer tracemend."""


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
