"""The instructions of the reply step (``compose``): the prompt the model writes the customer's reply under."""

from __future__ import annotations

REPLY_PROMPT = (
    "Write the reply to the customer from the facts the tools returned. Be brief and friendly. "
    "Follow the refund policy's decision exactly: never offer a refund for an order outside the refund window."
)
