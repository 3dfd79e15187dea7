"""What a model answers: :class:`ModelResponse`, with its :class:`ToolCall` s, usage and cost."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from tracemend import records


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


def tool_arguments(text: str) -> dict[str, Any]:
    """Tool-call arguments sent as JSON text: the object (``{}`` for no text); ValueError if not an object."""
    args = json.loads(text) if text.strip() else {}
    if not isinstance(args, dict):
        raise ValueError(f"not a JSON object: {type(args).__name__}")
    return args
