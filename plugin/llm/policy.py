"""Whether real model requests may leave the process: one switch, which test suites turn off.

Like pydantic-ai's ``models.ALLOW_MODEL_REQUESTS``: with real requests off, a non-scripted request raises
:class:`ModelRequestsForbidden` before anything is sent, unless loopback requests are on and the server is on
127.0.0.1 / localhost. Scripted answers are always allowed. The process starts from
``TRACEMEND_ALLOW_MODEL_REQUESTS`` (``0``/``false``: none, ``loopback``: loopback only, else all).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlparse

from tracemend.errors import ModelRequestsForbidden

ENV_VAR = "TRACEMEND_ALLOW_MODEL_REQUESTS"


class RequestPolicy(NamedTuple):
    real: bool = True
    """Requests to any server."""
    loopback: bool = False
    """When ``real`` is off: requests to a server on this machine (127.0.0.1, localhost, ::1)."""


def policy_from_env(value: str | None = None) -> RequestPolicy:
    """The policy that ``TRACEMEND_ALLOW_MODEL_REQUESTS`` (or ``value``) asks for."""
    if value is None:
        value = os.environ.get(ENV_VAR, "")
    value = value.strip().lower()
    if value == "loopback":
        return RequestPolicy(real=False, loopback=True)
    if value in ("0", "false", "no", "off"):
        return RequestPolicy(real=False, loopback=False)
    return RequestPolicy(real=True, loopback=False)


_current = policy_from_env()


def request_policy() -> RequestPolicy:
    """The policy in force for this process."""
    return _current


def set_request_policy(policy: RequestPolicy) -> RequestPolicy:
    """Put ``policy`` in force for the whole process; returns the one it replaces (to restore it)."""
    global _current
    previous, _current = _current, RequestPolicy(*policy)
    return previous


@contextlib.contextmanager
def override_request_policy(policy: RequestPolicy) -> Iterator[RequestPolicy]:
    """``policy`` inside the block, the previous one after it."""
    previous = set_request_policy(policy)
    try:
        yield policy
    finally:
        set_request_policy(previous)


def allow_model_requests(*, loopback_only: bool = True) -> contextlib.AbstractContextManager[RequestPolicy]:
    """Allow requests inside the block: to loopback servers only (default), or to any server."""
    if loopback_only:
        return override_request_policy(_current._replace(loopback=True))
    return override_request_policy(_current._replace(real=True))


def forbid_model_requests() -> contextlib.AbstractContextManager[RequestPolicy]:
    """No real request inside the block, loopback ones included (a test suite's default)."""
    return override_request_policy(RequestPolicy(real=False, loopback=False))


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_loopback(api_base: str | None) -> bool:
    if not api_base:
        return False
    host = urlparse(api_base).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def check_allowed(model: str, api_base: str | None) -> None:
    """Raise :class:`ModelRequestsForbidden` unless the policy lets a request to ``api_base`` go."""
    if _current.real or (_current.loopback and is_loopback(api_base)):
        return
    where = f" at {api_base}" if api_base else ""
    raise ModelRequestsForbidden(
        f"model requests are forbidden here (real model requests are off): refused {model}{where}. "
        "Use a scripted:<path> model, or allow loopback requests in the test."
    )
