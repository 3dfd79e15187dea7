"""The scripted model: ``scripted:<path>`` answers from a YAML file, offline, labelled as such.

The file format and its matching rules are in ``docs/llm.md``. The model is stateless: the same request
always gets the same answer; a conversation advances through ``turn`` (assistant messages so far).
:func:`record_answer` appends real answers to such a file, keyed by :func:`request_key`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tracemend import records
from tracemend.errors import ModelError
from tracemend.llm.response import ModelResponse, ToolCall, tool_arguments
from tracemend.project import project_root

SCRIPTED_PREFIX = "scripted:"


def is_scripted(model: str | None) -> bool:
    return bool(model) and str(model).startswith(SCRIPTED_PREFIX)


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


class ScriptMatch(BaseModel):
    model_config = {"extra": "forbid"}
    purpose: str | None = None
    turn: int | None = None
    contains: list[str] | str | None = None
    key: str | None = None


class ScriptToolCall(BaseModel):
    model_config = {"extra": "forbid"}
    id: str | None = None
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ScriptResponse(BaseModel):
    model_config = {"extra": "forbid"}
    content: str | None = None
    tool_calls: list[ScriptToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: records.Usage | None = None


class ScriptEntry(BaseModel):
    model_config = {"extra": "forbid"}
    match: ScriptMatch = Field(default_factory=ScriptMatch)
    response: ScriptResponse


class Script(BaseModel):
    model_config = {"extra": "allow"}
    answers: list[ScriptEntry] = Field(default_factory=list)


_script_cache: dict[Path, tuple[float, int, Script]] = {}
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


def load_script(path: Path) -> Script:
    """The parsed file (cached until it changes); a malformed one raises :class:`ModelError` naming the field."""
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
        script = Script.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelError(f"scripted model file {path}: {where}: {first['msg']}") from None
    with _script_lock:
        _script_cache[path] = (stat.st_mtime, stat.st_size, script)
    return script


def _entry_matches(entry: ScriptEntry, *, purpose: str, turn: int, text: str, key: str) -> bool:
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


def scripted_answer(
    model: str, messages: list[dict[str, Any]], tools: list[dict] | None, json_mode: bool, purpose: str
) -> ModelResponse:
    """The answer of the first entry in ``model``'s file that matches this request."""
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
                args = tool_arguments(args)
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
