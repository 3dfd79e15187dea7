"""Structured output: ask for JSON, validate it with pydantic, re-ask with the error, fail closed."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from tracemend.errors import StructuredOutputError
from tracemend.llm.completion import acomplete
from tracemend.llm.response import ModelResponse
from tracemend.llm.sync import sync_twin

T = TypeVar("T")

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


structured = sync_twin(astructured)
