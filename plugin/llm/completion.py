"""One chat completion: from the scripted model, or from a real one through litellm."""

from __future__ import annotations

import os

from tracemend.errors import ModelError
from tracemend.llm.adapter import check_credentials, litellm_complete
from tracemend.llm.policy import check_allowed
from tracemend.llm.response import ModelResponse
from tracemend.llm.scripted import is_scripted, record_answer, scripted_answer
from tracemend.llm.settings import load_settings, resolve_model
from tracemend.llm.sync import sync_twin
from tracemend.llm.usage import account


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
    """One chat completion. ``model`` defaults to :func:`resolve_model` (``"default"``).

    ``TRACEMEND_RECORD_TO=<path>`` appends every real answer to that scripted-model file.
    """
    model = model or resolve_model("default")
    if is_scripted(model):
        try:
            response = scripted_answer(model, messages, tools, json_mode, purpose)
        except ModelError:
            account(None, purpose, failed=True)
            raise
        account(response, purpose)
        return response

    settings = load_settings()
    check_allowed(model, settings.api_base)
    response = await litellm_complete(
        model,
        messages,
        tools=tools,
        json_mode=json_mode,
        temperature=temperature,
        timeout=float(timeout if timeout is not None else settings.timeout),
        purpose=purpose,
        settings=settings,
    )
    record_to = os.environ.get("TRACEMEND_RECORD_TO")
    if record_to:
        record_answer(record_to, messages, response, tools=tools, json_mode=json_mode, purpose=purpose)
    return response


complete = sync_twin(acomplete)


def check_model(model: str | None = None, *, role: str = "default") -> str:
    """The model ``role`` will use (``model`` if given), checked before its first call: real requests are
    allowed and the provider's key is set. Raises :class:`ModelAuthError` naming the variable to set, or
    :class:`ModelRequestsForbidden`; returns the model id."""
    model = model or resolve_model(role)
    if is_scripted(model):
        return model
    settings = load_settings()
    check_allowed(model, settings.api_base)
    check_credentials(model, settings)
    return model
