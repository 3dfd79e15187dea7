"""The agent's configuration: model, system prompt, temperature and tools, recorded on every trace."""

from __future__ import annotations

from tracemend import Config

SYSTEM_PROMPT = (
    "You are the support assistant of Northwind Outfitters. Be brief and factual. "
    "Use the tools to look up orders and the refund policy; never promise a refund the policy does not allow."
)


class SupportConfig(Config):
    model: str = "offline"
    system_prompt: str = SYSTEM_PROMPT
    temperature: float = 0.0
    tools: tuple[str, ...] = ("lookup_order", "refund_policy", "search_faq")
    max_reply_chars: int = 600
