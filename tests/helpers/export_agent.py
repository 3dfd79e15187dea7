"""A small traced agent for the export tests: an agent span over a tool span and an LLM span."""

from __future__ import annotations

import tracemend


class ToolFailure(LookupError):
    pass


@tracemend.track(kind="tool")
def search(query: str) -> list[str]:
    if query == "boom":
        raise ToolFailure(f"no index for {query!r}")
    return [f"doc about {query}"]


@tracemend.track(kind="llm")
def complete(prompt: str) -> str:
    tracemend.update_current_span(
        model="gpt-4o-mini",
        usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        cost=0.0002,
    )
    return f"answer to {prompt}"


@tracemend.track(kind="agent", tags=["export-test"], config={"model": "gpt-4o-mini", "temperature": 0.0})
def answer(question: str) -> str:
    docs = search(question)
    return complete(f"{question} using {docs[0]}")
