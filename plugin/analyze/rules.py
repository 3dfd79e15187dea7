"""Online judging rules: plain-English assertions kept in the user's repository.

A rule is the assertion text, the entry points (``module:qualname`` patterns) and span kinds it applies to,
a sample rate, and a budget of model calls and cost per UTC day. Rules live in ``[[tool.tracemend.rules]]``
tables of ``pyproject.toml``, or in the file the ``rules_file`` setting names (TOML with ``[[rules]]``
tables, or YAML with a ``rules:`` list); docs/quality.md shows both.

Sampling is decided by a digest of the rule's name and the trace id, so every run (``evaluate``, ``watch``,
another process) makes the same choice for a trace, and the choice is independent of the code version:
the judged traces of a baseline and of a window are samples of the same kind.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tracemend import settings
from tracemend.errors import ConfigError
from tracemend.project import project_root, tool_table
from tracemend.records import SpanKind

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Rule(BaseModel):
    """One online judging rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    assertion: str = Field(min_length=1)
    # ``module:qualname`` patterns (``*`` and ``?`` as in shell globs); empty: every entry point.
    entry_points: list[str] = Field(default_factory=list)
    # Judge each span of these kinds (its input and output) instead of the trace's; empty: the trace.
    span_kinds: list[SpanKind] = Field(default_factory=list)
    sample_rate: float = Field(default=1.0, gt=0.0, le=1.0)
    # Model calls per UTC day; None: the ``judge_daily_calls`` setting. 0 stops the rule.
    max_calls_per_day: int | None = Field(default=None, ge=0)
    # USD per UTC day; None: no cost limit beyond the calls.
    max_cost_per_day: float | None = Field(default=None, ge=0.0)
    samples: int = Field(default=1, ge=1, le=15)
    # The judge model for this rule; None: the judge role's model (``judge_model``, then ``model``).
    model: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_CHARS.issuperset(value):
            raise ValueError("use letters, digits, '-', '_' and '.' only (it is typed on command lines)")
        return value

    @field_validator("assertion")
    @classmethod
    def _assertion(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("the assertion is empty")
        return value

    @property
    def key(self) -> str:
        """A digest of what the rule judges (its assertion and span kinds): a changed rule judges again."""
        text = "\x1f".join([self.assertion, *sorted(self.span_kinds)])
        return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()

    def applies_to(self, entry_point: str) -> bool:
        return not self.entry_points or any(fnmatch.fnmatchcase(entry_point, p) for p in self.entry_points)

    def sampled(self, trace_id: str) -> bool:
        """Whether this rule judges the trace: the same answer in every run and every process."""
        if self.sample_rate >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.name}\x1f{trace_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.sample_rate

    def daily_calls(self) -> int:
        return (
            self.max_calls_per_day
            if self.max_calls_per_day is not None
            else settings.get("judge_daily_calls")
        )


def _parse(items: Any, where: str) -> list[Rule]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{where}: rules must be a list of tables (each with name and assertion)")
    rules = []
    for index, item in enumerate(items):
        label = item.get("name", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: rule {label} is not a table")
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "rule"
            raise ConfigError(f"{where}: rule {label!r}: {field}: {first['msg']}") from None
    return rules


def read_rules_file(path: Path) -> list[Rule]:
    """The rules of one file: TOML (``[[rules]]``) or YAML (``rules:`` list, or a bare list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the rules file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    items = data.get("rules") if isinstance(data, dict) else data
    return _parse(items, str(path))


def load_rules(root: Path | None = None, *, path: Path | None = None) -> list[Rule]:
    """The project's rules: ``path`` if given, else ``[[tool.tracemend.rules]]`` and the ``rules_file``."""
    root = root or project_root()
    if path is not None:
        rules = read_rules_file(path)
    else:
        rules = _parse(tool_table(root).get("rules"), f"{root / 'pyproject.toml'} [tool.tracemend]")
        file = settings.get("rules_file", root=root)
        if file is not None:
            rules += read_rules_file(file if file.is_absolute() else root / file)
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"two judging rules are named {rule.name!r}; names must be unique")
        seen.add(rule.name)
    return rules


def select_rules(rules: list[Rule], names: list[str] | None) -> list[Rule]:
    """The rules named (all when ``names`` is empty); an unknown name is a usage error."""
    if not names:
        return rules
    by_name = {r.name: r for r in rules}
    missing = [n for n in names if n not in by_name]
    if missing:
        known = ", ".join(sorted(by_name)) or "none"
        raise ConfigError(f"no judging rule named {', '.join(map(repr, missing))} (rules: {known})")
    return [by_name[n] for n in names]
