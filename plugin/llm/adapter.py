"""Real models through litellm: lazy import, bounded concurrency, retries with backoff, parsing answers.

litellm is imported on the first real request, with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` set first so
nothing is fetched. Rate limits, transient server errors, timeouts and malformed answers are retried here
(litellm's and the openai client's own retries are off, so each one is counted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import weakref
from typing import Any

from tracemend import records
from tracemend.errors import ModelAuthError, ModelError
from tracemend.llm.response import ModelResponse, ToolCall, tool_arguments
from tracemend.llm.settings import ModelSettings
from tracemend.llm.usage import account

_litellm: Any = None
_litellm_lock = threading.Lock()


def _import_litellm() -> Any:
    global _litellm
    if _litellm is None:
        with _litellm_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                import litellm

                litellm.suppress_debug_info = True
                litellm.telemetry = False
                for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                    logger = logging.getLogger(name)
                    if logger.level == logging.NOTSET or logger.level < logging.ERROR:
                        logger.setLevel(logging.ERROR)
                # litellm's import leaves about a million long-lived objects; moving them out of the cyclic
                # collector's reach keeps every later full collection (pytest runs one per session) cheap.
                import gc

                gc.freeze()
                _litellm = litellm
    return _litellm


_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _semaphore(limit: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    sem = _semaphores.get(loop)
    if sem is None or getattr(sem, "_tracemend_limit", None) != limit:
        sem = asyncio.Semaphore(limit)
        sem._tracemend_limit = limit  # type: ignore[attr-defined]
        _semaphores[loop] = sem
    return sem


class _Malformed(ModelError):
    """The server answered, but not with a usable chat completion (retried like a transient error)."""


def _is_auth_error(exc: BaseException) -> bool:
    """Refused credentials (401/403), or none at all: retrying cannot help."""
    if isinstance(exc, ModelAuthError):
        return True
    if getattr(exc, "status_code", None) in (401, 403):
        return True
    litellm = _litellm
    if litellm is not None:
        kinds = tuple(
            getattr(litellm, name)
            for name in ("AuthenticationError", "PermissionDeniedError")
            if hasattr(litellm, name)
        )
        if kinds and isinstance(exc, kinds):
            return True
    # The openai client refuses to send without a key and litellm reports that as a server error (500).
    return "missing credentials" in str(exc).lower()


def _key_variables(model: str, settings: ModelSettings) -> list[str]:
    """The variables that hold the key for ``model``: TRACEMEND_API_KEY, and the provider's own."""
    if settings.api_base:
        return ["TRACEMEND_API_KEY"]
    names: list[str] = []
    try:
        names = list(_import_litellm().validate_environment(model).get("missing_keys") or [])
    except Exception:  # an unknown provider: only our own variable can be named
        names = []
    return [*names, "TRACEMEND_API_KEY"]


def _auth_hint(model: str, settings: ModelSettings) -> str:
    names = _key_variables(model, settings)
    where = f" for {settings.api_base}" if settings.api_base else ""
    return f"set {' or '.join(names)} to a valid key{where}"


_credentials_ok: set[tuple[str, str | None, str | None]] = set()


def check_credentials(model: str, settings: ModelSettings) -> None:
    """Fail at once, before any request, when the provider's API key is not set (``ModelAuthError`` naming
    the variable). A server given by ``api_base`` may need no key, so it is not checked here."""
    key = (model, settings.api_base, settings.api_key)
    if settings.api_base or settings.api_key or key in _credentials_ok:
        return
    try:
        report = _import_litellm().validate_environment(model)
    except Exception:  # litellm cannot tell for this provider: the first request will
        return
    missing = [name for name in report.get("missing_keys") or [] if not os.environ.get(name)]
    if missing and not report.get("keys_in_environment"):
        raise ModelAuthError(
            f"{model}: no API key ({', '.join(missing)} is not set)",
            hint=f"set {missing[0]} (or TRACEMEND_API_KEY), or point TRACEMEND_API_BASE at an "
            "OpenAI-compatible server",
        )
    _credentials_ok.add(key)


def _is_retryable(exc: BaseException) -> bool:
    if _is_auth_error(exc):
        return False
    if isinstance(exc, _Malformed | asyncio.TimeoutError | TimeoutError | ConnectionError):
        return True
    litellm = _litellm
    if litellm is None:
        return False
    retryable = tuple(
        getattr(litellm, name)
        for name in (
            "RateLimitError",
            "Timeout",
            "APIConnectionError",
            "InternalServerError",
            "ServiceUnavailableError",
        )
        if hasattr(litellm, name)
    )
    if isinstance(exc, retryable):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int, settings: ModelSettings, exc: BaseException) -> float:
    delay = settings.retry_base_delay * (2**attempt)
    delay *= 0.5 + random.random()  # jitter so concurrent callers do not retry in lockstep
    hinted = _retry_after(exc)
    if hinted is not None:
        delay = max(delay, hinted)
    return min(delay, settings.retry_max_delay)


def _parse_litellm(raw: Any, model: str) -> ModelResponse:
    litellm = _litellm
    try:
        choice = raw.choices[0]
        message = choice.message
    except (AttributeError, IndexError, TypeError) as exc:
        raise _Malformed(f"answer has no choices: {exc}") from exc
    calls: list[ToolCall] = []
    for index, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = call.function
        text = function.arguments or ""
        try:
            args = tool_arguments(text)
        except ValueError as exc:
            raise _Malformed(
                f"tool call {function.name!r} has arguments that are not a JSON object: {text[:200]!r}"
            ) from exc
        calls.append(ToolCall(id=call.id or f"call_{index}", name=function.name or "", arguments=args))
    usage_raw = getattr(raw, "usage", None)
    prompt = int(getattr(usage_raw, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage_raw, "completion_tokens", 0) or 0)
    cost = 0.0
    try:
        cost = float(litellm.completion_cost(completion_response=raw) or 0.0)
    except Exception:  # unknown model: no price in the local map
        cost = 0.0
    return ModelResponse(
        content=getattr(message, "content", None),
        tool_calls=calls,
        model=str(getattr(raw, "model", None) or model),
        usage=records.Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
        cost=cost,
        scripted=False,
        finish_reason=getattr(choice, "finish_reason", None),
    )


def _server(settings: ModelSettings) -> dict[str, Any]:
    if settings.api_base:
        # OpenAI-compatible servers often need no key, but the client insists on one.
        api_key = settings.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        return {"api_base": settings.api_base, "api_key": api_key}
    return {"api_key": settings.api_key} if settings.api_key else {}


async def litellm_complete(
    model: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict] | None,
    json_mode: bool,
    temperature: float | None,
    timeout: float,
    purpose: str,
    settings: ModelSettings,
) -> ModelResponse:
    """One counted chat completion, retried as needed; :class:`ModelError` once retries are spent."""
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "timeout": timeout,
        # Retries happen here (counted, with our backoff), not again inside litellm or the openai client.
        "max_retries": 0,
        "num_retries": 0,
        # A provider without JSON mode or temperature gets the request without them, not an error.
        "drop_params": True,
        **_server(settings),
    }
    if tools:
        request["tools"] = tools
    if json_mode:
        request["response_format"] = {"type": "json_object"}
    if temperature is not None:
        request["temperature"] = temperature
    check_credentials(model, settings)
    retries = 0
    last: BaseException | None = None
    async with _semaphore(settings.concurrency):
        for attempt in range(settings.max_retries + 1):
            try:
                acompletion = _import_litellm().acompletion
                # litellm's own timeout covers the HTTP call; this one also covers anything around it.
                raw = await asyncio.wait_for(acompletion(**request), timeout=timeout + 5)
                response = _parse_litellm(raw, model)
            except Exception as exc:
                last = exc
                if not _is_retryable(exc) or attempt >= settings.max_retries:
                    break
                retries += 1
                await asyncio.sleep(_backoff(attempt, settings, exc))
                continue
            account(response, purpose, retries=retries)
            return response
    account(None, purpose, retries=retries, failed=True)
    assert last is not None
    kind = "timed out" if isinstance(last, asyncio.TimeoutError | TimeoutError) else type(last).__name__
    status = getattr(last, "status_code", None)
    if isinstance(status, int) and str(status) not in kind:
        kind += f" (HTTP {status})"
    tried = f" after {retries + 1} attempts" if retries else ""
    text = f"{model}{' (' + purpose + ')' if purpose else ''}: {kind}{tried}: {_short(last)}"
    if _is_auth_error(last):
        raise ModelAuthError(text, hint=_auth_hint(model, settings)) from last
    error = ModelError(text)
    if isinstance(last, _Malformed):
        error.hint = "the server's answer was not a usable chat completion; check the server, or use another model (--model)"
    elif isinstance(status, int) and status >= 500 or isinstance(last, asyncio.TimeoutError | TimeoutError):
        error.hint = "the model server failed; try again later, or use another model (--model)"
    raise error from last


_WRAPPERS = re.compile(r"^(?:(?:litellm\.)?[A-Za-z]+(?:Error|Exception)(?::| -)\s*)+")


def _short(exc: BaseException) -> str:
    """The first line of the error without the class names litellm and the client wrap it in."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return (_WRAPPERS.sub("", text) or text or type(exc).__name__)[:300]
