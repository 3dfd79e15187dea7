"""Fixtures for the triage and diagnosis tests (defined in helpers.diagnose)."""

from helpers.diagnose import _agent_repo_template, agent_repo, loopback  # noqa: F401
