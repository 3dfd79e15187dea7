"""Every model call goes through here: litellm underneath, a scripted model offline.

- Model ids are litellm strings (``openai/gpt-4o-mini``, ``anthropic/...``) or ``scripted:<path>`` (answers
  replayed from a YAML file, see ``docs/llm.md``). :func:`resolve_model` picks one per role from the
  environment, then ``[tool.tracemend]`` in the project's pyproject.toml.
- Requests run with bounded concurrency (one semaphore per event loop), retries with exponential backoff on
  rate limits, transient server errors, timeouts and malformed answers, and token/cost accounting per call
  (litellm's local cost map; an unknown model costs 0).
- :func:`astructured` asks for JSON, validates it with pydantic, re-asks with the validation error, and
  fails closed with :class:`StructuredOutputError`.
- ``ALLOW_MODEL_REQUESTS = False`` (or ``TRACEMEND_ALLOW_MODEL_REQUESTS=0``) forbids real requests, as in
  test suites; ``TRACEMEND_ALLOW_MODEL_REQUESTS=loopback`` (or :func:`allow_model_requests`) allows only
  servers on 127.0.0.1 / localhost. Scripted answers are always allowed.

litellm is imported lazily, with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` set first so nothing is fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import threading
import tomllib
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from tracemend import records
from tracemend.errors import ModelError, ModelRequestsForbidden, StructuredOutputError
from tracemend.project import project_root

T = TypeVar("T")

DEFAULT_MODEL = "openai/gpt-4o-mini"
ROLES = ("default", "judge", "triage", "diagnose")
SCRIPTED_PREFIX = "scripted:"


# --- public records and errors ----------------------------------------------------------------------


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ModelResponse(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    model: str
    usage: records.Usage = Field(default_factory=records.Usage)
    cost: float = 0.0
    scripted: bool = False
    finish_reason: str | None = None

    def assistant_message(self) -> dict[str, Any]:
        """This answer as a message to append to the conversation (tool calls in OpenAI form)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in self.tool_calls
            ]
        return message


# --- request policy ---------------------------------------------------------------------------------


def _policy_from_env() -> tuple[bool, bool]:
    value = os.environ.get("TRACEMEND_ALLOW_MODEL_REQUESTS", "").strip().lower()
    if value == "loopback":
        return False, True
    if value in ("0", "false", "no", "off"):
        return False, False
    return True, False


# Real (non-scripted) requests allowed at all; when False, loopback servers only if ALLOW_LOOPBACK_REQUESTS.
ALLOW_MODEL_REQUESTS: bool
ALLOW_LOOPBACK_REQUESTS: bool
ALLOW_MODEL_REQUESTS, ALLOW_LOOPBACK_REQUESTS = _policy_from_env()

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_loopback(api_base: str | None) -> bool:
    if not api_base:
        return False
    host = urlparse(api_base).hostname or ""
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


@contextlib.contextmanager
def allow_model_requests(*, loopback_only: bool = True) -> Iterator[None]:
    """Allow requests inside the block: to loopback servers only (default), or to any server."""
    global ALLOW_MODEL_REQUESTS, ALLOW_LOOPBACK_REQUESTS
    saved = ALLOW_MODEL_REQUESTS, ALLOW_LOOPBACK_REQUESTS
    if loopback_only:
        ALLOW_LOOPBACK_REQUESTS = True
    else:
        ALLOW_MODEL_REQUESTS = True
    try:
        yield
    finally:
        ALLOW_MODEL_REQUESTS, ALLOW_LOOPBACK_REQUESTS = saved


def _check_allowed(model: str, api_base: str | None) -> None:
    if ALLOW_MODEL_REQUESTS:
        return
    if ALLOW_LOOPBACK_REQUESTS and is_loopback(api_base):
        return
    where = f" at {api_base}" if api_base else ""
    raise ModelRequestsForbidden(
        f"model requests are forbidden here (ALLOW_MODEL_REQUESTS is off): refused {model}{where}. "
        "Use a scripted:<path> model, or allow loopback requests in the test."
    )


# --- settings ---------------------------------------------------------------------------------------


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


_ENV = {
    "model": "TRACEMEND_MODEL",
    "judge_model": "TRACEMEND_JUDGE_MODEL",
    "triage_model": "TRACEMEND_TRIAGE_MODEL",
    "diagnose_model": "TRACEMEND_DIAGNOSE_MODEL",
    "api_base": "TRACEMEND_API_BASE",
    "api_key": "TRACEMEND_API_KEY",
    "timeout": "TRACEMEND_TIMEOUT",
    "concurrency": "TRACEMEND_CONCURRENCY",
    "max_retries": "TRACEMEND_MAX_RETRIES",
    "retry_base_delay": "TRACEMEND_RETRY_BASE_DELAY",
    "retry_max_delay": "TRACEMEND_RETRY_MAX_DELAY",
}
_pyproject_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def _pyproject_table(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    cached = _pyproject_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path}: cannot read [tool.tracemend]: {exc}") from exc
    table = data.get("tool", {}).get("tracemend", {}) or {}
    _pyproject_cache[path] = (mtime, table)
    return table


def load_settings(root: Path | None = None) -> ModelSettings:
    """Environment first (``TRACEMEND_MODEL``, ``TRACEMEND_JUDGE_MODEL``, ``TRACEMEND_TIMEOUT``, ...),
    then ``[tool.tracemend]`` in ``<project root>/pyproject.toml``, then defaults."""
    table = _pyproject_table(root or project_root())
    settings = ModelSettings()
    for name, env in _ENV.items():
        raw = os.environ.get(env)
        value: Any = raw if raw not in (None, "") else table.get(name)
        if value is None:
            continue
        default = getattr(ModelSettings, name, None)
        try:
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            source = env if raw else "[tool.tracemend] " + name
            raise ModelError(f"{source}: {value!r} is not a valid {type(default).__name__}") from None
        setattr(settings, name, value)
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


# --- usage accounting -------------------------------------------------------------------------------


@dataclass
class UsageTotals:
    calls: int = 0
    scripted_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    by_purpose: dict[str, int] = field(default_factory=dict)

    def add(self, response: ModelResponse, purpose: str) -> None:
        self.calls += 1
        self.scripted_calls += int(response.scripted)
        self.prompt_tokens += response.usage.prompt_tokens
        self.completion_tokens += response.usage.completion_tokens
        self.cost += response.cost
        key = purpose or "-"
        self.by_purpose[key] = self.by_purpose.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_tokens"] = self.prompt_tokens + self.completion_tokens
        return out


_usage_lock = threading.Lock()
_process_totals = UsageTotals()
_trackers: list[UsageTotals] = []


def _account(response: ModelResponse | None, purpose: str, *, retries: int = 0, failed: bool = False) -> None:
    with _usage_lock:
        for totals in (_process_totals, *_trackers):
            totals.retries += retries
            if failed:
                totals.failed_calls += 1
            elif response is not None:
                totals.add(response, purpose)


def usage_totals() -> dict[str, Any]:
    """This process's totals: calls, scripted_calls, failed_calls, retries, tokens, cost (USD)."""
    with _usage_lock:
        return _process_totals.as_dict()


@contextlib.contextmanager
def track_usage() -> Iterator[UsageTotals]:
    """Sum the calls made inside the block (from any thread), e.g. per CLI command."""
    totals = UsageTotals()
    with _usage_lock:
        _trackers.append(totals)
    try:
        yield totals
    finally:
        with _usage_lock:
            _trackers.remove(totals)


# --- request keys and the scripted model ------------------------------------------------------------


def request_key(
    messages: list[dict[str, Any]], *, tools: list[dict] | None = None, json_mode: bool = False
) -> str:
    """sha256 of the canonical request (messages, tools, JSON mode): the scripted model's exact-match key."""
    canonical = json.dumps(
        {"messages": messages, "tools": tools or [], "json_mode": bool(json_mode)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _message_text(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            parts.append(str(function.get("arguments", "")))
    return "\n".join(parts)


def _turn(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


def _estimate_tokens(text: str) -> int:
    # A scripted model has no tokenizer; ~4 characters per token keeps the accounting plausible.
    return (len(text) + 3) // 4 if text else 0


class _ScriptMatch(BaseModel):
    model_config = {"extra": "forbid"}
    purpose: str | None = None
    turn: int | None = None
    contains: list[str] | str | None = None
    key: str | None = None


class _ScriptToolCall(BaseModel):
    model_config = {"extra": "forbid"}
    id: str | None = None
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class _ScriptResponse(BaseModel):
    model_config = {"extra": "forbid"}
    content: str | None = None
    tool_calls: list[_ScriptToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: records.Usage | None = None


class _ScriptEntry(BaseModel):
    model_config = {"extra": "forbid"}
    match: _ScriptMatch = Field(default_factory=_ScriptMatch)
    response: _ScriptResponse


class _Script(BaseModel):
    model_config = {"extra": "allow"}
    answers: list[_ScriptEntry] = Field(default_factory=list)


_script_cache: dict[Path, tuple[float, int, _Script]] = {}
_script_lock = threading.Lock()


def scripted_path(model: str) -> Path:
    """The file behind ``scripted:<path>`` (relative paths: from the working directory, else the project root)."""
    raw = model[len(SCRIPTED_PREFIX) :].strip()
    if not raw:
        raise ModelError("scripted model needs a file: scripted:<path>")
    path = Path(raw).expanduser()
    if not path.is_absolute() and not path.exists():
        candidate = project_root() / path
        if candidate.exists():
            path = candidate
    return path


def load_script(path: Path) -> _Script:
    import yaml

    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"scripted model file {path}: cannot read it ({exc.strerror or exc})") from None
    with _script_lock:
        cached = _script_cache.get(path)
        if cached and cached[0] == stat.st_mtime and cached[1] == stat.st_size:
            return cached[2]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"scripted model file {path}: invalid YAML: {exc}") from None
    try:
        script = _Script.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"scripted model file {path}: {where}: {first['msg']}") from None
    with _script_lock:
        _script_cache[path] = (stat.st_mtime, stat.st_size, script)
    return script


def _entry_matches(entry: _ScriptEntry, *, purpose: str, turn: int, text: str, key: str) -> bool:
    match = entry.match
    if match.key is not None and match.key != key:
        return False
    if match.purpose is not None and match.purpose != purpose:
        return False
    if match.turn is not None and match.turn != turn:
        return False
    if match.contains is not None:
        needles = [match.contains] if isinstance(match.contains, str) else match.contains
        if not all(needle in text for needle in needles):
            return False
    return True


def _scripted_answer(
    model: str, messages: list[dict[str, Any]], tools: list[dict] | None, json_mode: bool, purpose: str
) -> ModelResponse:
    path = scripted_path(model)
    script = load_script(path)
    turn = _turn(messages)
    text = _message_text(messages)
    key = request_key(messages, tools=tools, json_mode=json_mode)
    for entry in script.answers:
        if _entry_matches(entry, purpose=purpose, turn=turn, text=text, key=key):
            break
    else:
        raise ModelError(
            f"scripted model {path}: no answer matches purpose={purpose!r} turn={turn} "
            f"(key {key[:16]}…, {len(script.answers)} entries)"
        )
    answer = entry.response
    calls: list[ToolCall] = []
    for index, call in enumerate(answer.tool_calls):
        args = call.arguments
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError as exc:
                raise ModelError(
                    f"scripted model {path}: tool call {call.name!r} has invalid JSON arguments"
                ) from exc
        calls.append(ToolCall(id=call.id or f"call_{turn}_{index}", name=call.name, arguments=args))
    usage = answer.usage
    if usage is None:
        completion = (answer.content or "") + "".join(json.dumps(c.arguments) for c in calls)
        prompt_tokens, completion_tokens = _estimate_tokens(text), _estimate_tokens(completion)
        usage = records.Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
    return ModelResponse(
        content=answer.content,
        tool_calls=calls,
        model=model,
        usage=usage,
        cost=0.0,
        scripted=True,
        finish_reason=answer.finish_reason or ("tool_calls" if calls else "stop"),
    )


_record_lock = threading.Lock()


def record_answer(
    path: str | Path,
    messages: list[dict[str, Any]],
    response: ModelResponse,
    *,
    tools: list[dict] | None = None,
    json_mode: bool = False,
    purpose: str = "",
) -> str:
    """Append an exact-key entry answering this request with ``response`` to a scripted-model file.

    The file is created if missing; existing entries and comments are kept (entries are appended as text).
    Returns the request key. ``TRACEMEND_RECORD_TO=<path>`` records every real answer this way.
    """
    import yaml

    path = Path(path)
    key = request_key(messages, tools=tools, json_mode=json_mode)
    match: dict[str, Any] = {"key": key}
    if purpose:
        match["purpose"] = purpose
    reply: dict[str, Any] = {}
    if response.content is not None:
        reply["content"] = response.content
    if response.tool_calls:
        reply["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls
        ]
    if response.finish_reason:
        reply["finish_reason"] = response.finish_reason
    entry = yaml.safe_dump(
        [{"match": match, "response": reply}], sort_keys=False, allow_unicode=True, width=100
    )
    with _record_lock:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if not text.strip():
            text = "answers:\n"
        else:
            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict) or list(data)[-1:] != ["answers"]:
                raise ModelError(f"{path}: cannot append: 'answers' must be the file's last top-level key")
            if data.get("answers") in (None, []) and re.search(r"^answers:\s*\[\]\s*$", text, re.M):
                text = re.sub(r"^answers:\s*\[\]\s*$", "answers:", text, flags=re.M)
        if not text.endswith("\n"):
            text += "\n"
        text += "".join("  " + line + "\n" for line in entry.splitlines())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return key


# --- the litellm path -------------------------------------------------------------------------------

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


def _is_retryable(exc: BaseException) -> bool:
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
            args = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise _Malformed(
                f"tool call {function.name!r} has arguments that are not JSON: {text[:200]!r}"
            ) from exc
        if not isinstance(args, dict):
            raise _Malformed(f"tool call {function.name!r} arguments are not a JSON object")
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


async def _litellm_call(
    model: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict] | None,
    json_mode: bool,
    temperature: float | None,
    timeout: float,
    settings: ModelSettings,
) -> Any:
    litellm = _import_litellm()
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "timeout": timeout,
        # Retries happen here (counted, with our backoff), not again inside litellm or the openai client.
        "max_retries": 0,
        "num_retries": 0,
        # A provider without JSON mode or temperature gets the request without them, not an error.
        "drop_params": True,
    }
    if tools:
        kwargs["tools"] = tools
    if json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    if temperature is not None:
        kwargs["temperature"] = temperature
    if settings.api_base:
        kwargs["api_base"] = settings.api_base
        # OpenAI-compatible servers often need no key, but the client insists on one.
        kwargs["api_key"] = settings.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
    elif settings.api_key:
        kwargs["api_key"] = settings.api_key
    # litellm's own timeout covers the HTTP call; this one also covers anything around it.
    return await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=timeout + 5)


async def acomplete(
    messages: list[dict],
    *,
    model: str | None = None,
    tools: list[dict] | None = None,
    json_mode: bool = False,
    temperature: float | None = None,
    timeout: float | None = None,
    purpose: str = "",
) -> ModelResponse:
    """One chat completion. ``model`` defaults to :func:`resolve_model` (``"default"``)."""
    model = model or resolve_model("default")
    if model.startswith(SCRIPTED_PREFIX):
        try:
            response = _scripted_answer(model, messages, tools, json_mode, purpose)
        except ModelError:
            _account(None, purpose, failed=True)
            raise
        _account(response, purpose)
        return response

    settings = load_settings()
    _check_allowed(model, settings.api_base)
    timeout = float(timeout if timeout is not None else settings.timeout)
    retries = 0
    last: BaseException | None = None
    async with _semaphore(settings.concurrency):
        for attempt in range(settings.max_retries + 1):
            try:
                raw = await _litellm_call(
                    model,
                    messages,
                    tools=tools,
                    json_mode=json_mode,
                    temperature=temperature,
                    timeout=timeout,
                    settings=settings,
                )
                response = _parse_litellm(raw, model)
            except Exception as exc:
                last = exc
                if not _is_retryable(exc) or attempt >= settings.max_retries:
                    break
                retries += 1
                await asyncio.sleep(_backoff(attempt, settings, exc))
                continue
            _account(response, purpose, retries=retries)
            record_to = os.environ.get("TRACEMEND_RECORD_TO")
            if record_to:
                record_answer(
                    record_to, messages, response, tools=tools, json_mode=json_mode, purpose=purpose
                )
            return response
    _account(None, purpose, retries=retries, failed=True)
    assert last is not None
    kind = "timed out" if isinstance(last, asyncio.TimeoutError | TimeoutError) else type(last).__name__
    tried = f" after {retries + 1} attempts" if retries else ""
    raise ModelError(
        f"{model}{' (' + purpose + ')' if purpose else ''}: {kind}{tried}: {_short(last)}"
    ) from last


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _run_sync(coro_factory: Any) -> Any:
    """Run a coroutine to completion from sync code, whether or not this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    result: dict[str, Any] = {}

    def runner() -> None:
        try:
            result["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=runner, name="tracemend-llm-sync")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def complete(
    messages: list[dict],
    *,
    model: str | None = None,
    tools: list[dict] | None = None,
    json_mode: bool = False,
    temperature: float | None = None,
    timeout: float | None = None,
    purpose: str = "",
) -> ModelResponse:
    """Sync :func:`acomplete`."""
    return _run_sync(
        lambda: acomplete(
            messages,
            model=model,
            tools=tools,
            json_mode=json_mode,
            temperature=temperature,
            timeout=timeout,
            purpose=purpose,
        )
    )


# --- structured output ------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def extract_json(text: str | None) -> str:
    """The JSON object in an answer: the whole text, a fenced block, or the outermost ``{...}``."""
    if not text:
        return ""
    fenced = _FENCE.match(text)
    if fenced:
        return fenced.group(1)
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return stripped
    start, end = stripped.find("{"), stripped.rfind("}")
    return stripped[start : end + 1] if 0 <= start < end else stripped


def _schema_instruction(adapter: TypeAdapter[Any]) -> str:
    schema = json.dumps(adapter.json_schema(), separators=(",", ":"))
    return (
        "Answer with a single JSON object, and nothing else, that validates against this JSON schema:\n"
        f"{schema}"
    )


async def astructured(
    messages: list[dict],
    output_type: type[T],
    *,
    model: str | None = None,
    purpose: str = "",
    retries: int = 2,
    temperature: float | None = None,
    timeout: float | None = None,
) -> tuple[T, ModelResponse]:
    """Ask for JSON matching ``output_type`` (a pydantic model or any type pydantic validates).

    An invalid answer is sent back with the validation error, up to ``retries`` times; then
    :class:`StructuredOutputError` (fail closed: never a half-parsed value).
    """
    adapter: TypeAdapter[Any] = TypeAdapter(output_type)
    conversation = [*messages, {"role": "system", "content": _schema_instruction(adapter)}]
    errors: list[str] = []
    response: ModelResponse | None = None
    for _ in range(retries + 1):
        response = await acomplete(
            conversation,
            model=model,
            json_mode=True,
            temperature=temperature,
            timeout=timeout,
            purpose=purpose,
        )
        candidate = extract_json(response.content)
        try:
            if not candidate:
                raise ValueError(
                    "the answer was empty" + (" (truncated)" if response.finish_reason == "length" else "")
                )
            value = adapter.validate_json(candidate)
            return value, response
        except (ValidationError, ValueError) as exc:
            error = _validation_summary(exc)
            if response.finish_reason == "length":
                error += " (the answer was cut off: finish_reason=length)"
            errors.append(error)
            conversation = [
                *conversation,
                {"role": "assistant", "content": response.content or ""},
                {
                    "role": "user",
                    "content": f"That answer was invalid: {error}\nAnswer again with only the corrected JSON object.",
                },
            ]
    raise StructuredOutputError(
        f"{response.model if response else model}{' (' + purpose + ')' if purpose else ''}: "
        f"no valid {getattr(output_type, '__name__', output_type)} after {retries + 1} attempts: {errors[-1]}",
        raw=response.content if response else None,
        errors=errors,
    )


def _validation_summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


def structured(
    messages: list[dict],
    output_type: type[T],
    *,
    model: str | None = None,
    purpose: str = "",
    retries: int = 2,
    temperature: float | None = None,
    timeout: float | None = None,
) -> tuple[T, ModelResponse]:
    """Sync :func:`astructured`."""
    return _run_sync(
        lambda: astructured(
            messages,
            output_type,
            model=model,
            purpose=purpose,
            retries=retries,
            temperature=temperature,
            timeout=timeout,
        )
    )


def is_scripted(model: str | None) -> bool:
    return bool(model) and str(model).startswith(SCRIPTED_PREFIX)
