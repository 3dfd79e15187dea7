"""A small customer-support agent, traced with tracemend and runnable offline.

``handle_ticket(message, customer_id, config)`` classifies the request with a model, calls tools (order
lookup, refund policy, FAQ search) and writes a reply. With ``model="offline"`` (the default) the model
steps are answered by a deterministic keyword policy, labelled as scripted in the trace.
"""

from .agent import handle_ticket
from .config import SupportConfig

__all__ = ["SupportConfig", "handle_ticket"]
