"""Fixtures for the triage and diagnosis tests (defined in diag_helpers, next to this file)."""

from diag_helpers import _agent_repo_template, agent_repo, loopback  # noqa: F401
