"""Plain-English assertions, deterministic checks, the LLM judge and the pytest regression suite."""
