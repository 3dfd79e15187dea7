"""The base of every record: extra fields are refused, so a misspelt field fails loudly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
