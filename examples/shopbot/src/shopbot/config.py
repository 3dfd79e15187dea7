"""shopbot's settings: a plain pydantic model (not a tracemend.Config), recorded on every trace."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ShopConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "offline"
    page_size: int = Field(default=4, ge=1, le=50)
    currency: str = "EUR"
    greeting: str = "Here is what I found"
