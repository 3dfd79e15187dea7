"""Every model call goes through here: litellm underneath, a scripted model offline.

- Model ids are litellm strings (``openai/gpt-4o-mini``, ``anthropic/...``) or ``scripted:<path>`` (answers
  replayed from a YAML file, see ``docs/llm.md``). :func:`resolve_model` picks one per role from the
  environment, then ``[tool.tracemend]`` in the project's pyproject.toml (:mod:`.settings`).
- Requests run with bounded concurrency, retries with exponential backoff and token/cost accounting
  (:mod:`.adapter`, :mod:`.usage`); :func:`astructured` validates JSON answers with pydantic (:mod:`.structured_output`).
- :func:`set_request_policy` / :func:`forbid_model_requests` (or ``TRACEMEND_ALLOW_MODEL_REQUESTS=0``) forbid
  real requests, as in test suites; :func:`allow_model_requests` then allows loopback servers (:mod:`.policy`).

Each async function has a sync twin (``complete`` / ``acomplete``, ``structured`` / ``astructured``).
"""

from tracemend.errors import ModelAuthError, ModelError, ModelRequestsForbidden, StructuredOutputError
from tracemend.llm.completion import acomplete, check_model, complete
from tracemend.llm.policy import (
    RequestPolicy,
    allow_model_requests,
    check_allowed,
    forbid_model_requests,
    is_loopback,
    override_request_policy,
    policy_from_env,
    request_policy,
    set_request_policy,
)
from tracemend.llm.response import ModelResponse, ToolCall
from tracemend.llm.scripted import (
    SCRIPTED_PREFIX,
    is_scripted,
    load_script,
    record_answer,
    request_key,
    scripted_path,
)
from tracemend.llm.settings import DEFAULT_MODEL, ROLES, ModelSettings, load_settings, resolve_model
from tracemend.llm.structured_output import astructured, extract_json, structured
from tracemend.llm.sync import run_sync, sync_twin
from tracemend.llm.usage import UsageTotals, read_usage_log, track_usage, usage_log, usage_totals

__all__ = [
    "DEFAULT_MODEL",
    "ROLES",
    "SCRIPTED_PREFIX",
    "ModelAuthError",
    "ModelError",
    "ModelRequestsForbidden",
    "ModelResponse",
    "ModelSettings",
    "RequestPolicy",
    "StructuredOutputError",
    "ToolCall",
    "UsageTotals",
    "acomplete",
    "allow_model_requests",
    "astructured",
    "check_allowed",
    "check_model",
    "complete",
    "extract_json",
    "forbid_model_requests",
    "is_loopback",
    "is_scripted",
    "load_script",
    "load_settings",
    "override_request_policy",
    "policy_from_env",
    "read_usage_log",
    "record_answer",
    "request_key",
    "request_policy",
    "resolve_model",
    "run_sync",
    "scripted_path",
    "set_request_policy",
    "structured",
    "sync_twin",
    "track_usage",
    "usage_log",
    "usage_totals",
]
