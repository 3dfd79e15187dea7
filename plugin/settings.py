"""Every setting tracemend reads, in one table: the source of ``[tool.tracemend]`` keys, ``TRACEMEND_*``
variables, CLI defaults and the README's settings table (``tests/test_settings.py`` fails when they drift).

A value comes from, first to last: an explicit argument (a CLI option, :func:`tracemend.configure`), the
environment variable, the ``[tool.tracemend]`` table of the project's ``pyproject.toml``, the default.
Unknown keys in the table are reported once with a did-you-mean; a value of the wrong type raises
:class:`~tracemend.errors.ConfigError` naming where it came from.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracemend.errors import ConfigError
from tracemend.project import project_root, tool_table

logger = logging.getLogger("tracemend")

GROUPS = {
    "recording": "Recording (the decorator and the store)",
    "models": "Models",
    "loop": "The loop (analyze, triage, diagnose, heal, lock)",
    "suite": "The regression suite (pytest)",
    "tests": "Test suites and development",
}


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "str", "int", "float", "bool", "path", "list"; "rules": tables read by analyze.rules
    default: Any
    doc: str
    group: str
    env: str | None = None  # TRACEMEND_* variable; None: only in [tool.tracemend]
    in_table: bool = True  # False: environment (or configure) only
    choices: tuple[str, ...] = ()

    @property
    def env_var(self) -> str | None:
        return self.env


def _s(name: str, kind: str, default: Any, doc: str, group: str, **kw: Any) -> Setting:
    return Setting(name, kind, default, doc, group, **kw)


SETTINGS: tuple[Setting, ...] = (
    # --- recording ---
    _s("enabled", "bool", True, "record traces (off: one flag check per call)", "recording",
       env="TRACEMEND_DISABLED", in_table=False),
    _s("db", "path", None, "the trace store file (default `<project root>/.tracemend/traces.db`)", "recording",
       env="TRACEMEND_DB"),
    _s("environment", "str", "development", "environment name recorded on each trace", "recording",
       env="TRACEMEND_ENV"),
    _s("project", "str", None, "project name recorded on each trace (default: the project folder's name)",
       "recording", env="TRACEMEND_PROJECT"),
    _s("queue_size", "int", 20_000, "spans held for the background writer before new ones are dropped",
       "recording", env="TRACEMEND_QUEUE_SIZE", in_table=False),
    _s("redact", "bool", True, "redact secrets before anything is stored (`TRACEMEND_NO_REDACT=1` turns it off)",
       "recording", env="TRACEMEND_NO_REDACT"),
    _s("redact_keys", "list", (), "more key names whose values are secrets", "recording"),
    _s("redact_patterns", "list", (), "more regular expressions of secret values", "recording"),
    _s("code_version", "str", None, "the code version to record where the deployment has no `.git`",
       "recording", env="TRACEMEND_CODE_VERSION", in_table=False),
    _s("project_root", "path", None, "the project root (default: nearest folder above the working directory "
       "with `pyproject.toml`, `.git`, `setup.py` or `setup.cfg`)", "recording", env="TRACEMEND_PROJECT_ROOT",
       in_table=False),
    # --- models ---
    _s("model", "str", "openai/gpt-4o-mini", "model for every role without its own (litellm id or "
       "`scripted:<file>`)", "models", env="TRACEMEND_MODEL"),
    _s("judge_model", "str", None, "model of the LLM judge", "models", env="TRACEMEND_JUDGE_MODEL"),
    _s("triage_model", "str", None, "model of the causal verdict", "models", env="TRACEMEND_TRIAGE_MODEL"),
    _s("diagnose_model", "str", None, "model of the diagnosing agent", "models", env="TRACEMEND_DIAGNOSE_MODEL"),
    _s("api_base", "str", None, "base URL of an OpenAI-compatible server", "models", env="TRACEMEND_API_BASE"),
    _s("api_key", "str", None, "API key for `api_base` (else the provider's usual variable)", "models",
       env="TRACEMEND_API_KEY", in_table=False),
    _s("timeout", "float", 60.0, "seconds per model request", "models", env="TRACEMEND_TIMEOUT"),
    _s("concurrency", "int", 16, "model requests in flight at once", "models", env="TRACEMEND_CONCURRENCY"),
    _s("max_retries", "int", 3, "retries of a failed model request (rate limits, server errors, timeouts)",
       "models", env="TRACEMEND_MAX_RETRIES"),
    _s("retry_base_delay", "float", 0.5, "first retry delay in seconds (doubles each time)", "models",
       env="TRACEMEND_RETRY_BASE_DELAY"),
    _s("retry_max_delay", "float", 20.0, "longest retry delay in seconds", "models",
       env="TRACEMEND_RETRY_MAX_DELAY"),
    _s("record_to", "path", None, "append every real model answer to this scripted-model file", "models",
       env="TRACEMEND_RECORD_TO", in_table=False),
    # --- the loop: online judging (docs/quality.md) ---
    _s("rules", "rules", (), "online judging rules, as `[[tool.tracemend.rules]]` tables (name, assertion, "
       "entry_points, span_kinds, sample_rate, max_calls_per_day, max_cost_per_day, samples, model)", "loop"),
    _s("rules_file", "path", None, "a file of more judging rules (TOML `[[rules]]` or YAML `rules:`), relative "
       "to the project root", "loop", env="TRACEMEND_RULES_FILE"),
    _s("judge_daily_calls", "int", 1000, "model calls a judging rule may make per UTC day, when the rule sets "
       "no `max_calls_per_day`", "loop", env="TRACEMEND_JUDGE_DAILY_CALLS"),
    # --- the regression suite ---
    _s("regressions", "path", "tests/regressions", "folder of regression-case files (`lock`, `test`, pytest)",
       "suite", env="TRACEMEND_REGRESSIONS"),
    _s("judge_cache", "path", None, "the judge's verdict cache (default `.tracemend/judge_cache.db`)", "suite",
       env="TRACEMEND_JUDGE_CACHE"),
    # --- tests ---
    _s("allow_model_requests", "str", "true", "`false` forbids real model requests, `loopback` allows only "
       "servers on 127.0.0.1 (test suites)", "tests", env="TRACEMEND_ALLOW_MODEL_REQUESTS", in_table=False,
       choices=("true", "false", "loopback")),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS if s.env}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
# The variables whose meaning is inverted: TRACEMEND_DISABLED=1 means enabled = False.
_INVERTED = {"TRACEMEND_DISABLED", "TRACEMEND_NO_REDACT"}
_warned: set[tuple[Path, str]] = set()


def _convert(setting: Setting, value: Any, source: str) -> Any:
    kind = setting.kind
    if kind == "rules":  # tables, validated by tracemend.analyze.rules
        return value
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind == "path":
            return Path(str(value)).expanduser()
        if kind == "list":
            if isinstance(value, str):
                return tuple(part.strip() for part in value.split(",") if part.strip())
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError(value)
        text = str(value)
        if setting.choices and text.strip().lower() not in setting.choices:
            raise ValueError(value)
        return text
    except (TypeError, ValueError):
        expected = f"one of {', '.join(setting.choices)}" if setting.choices else f"a {kind}"
        raise ConfigError(f"{source}: {value!r} is not {expected}") from None


def check_table(table: Mapping[str, Any], where: Path | str) -> list[str]:
    """One message per unknown key of a ``[tool.tracemend]`` table, with the closest known key."""
    known = [s.name for s in SETTINGS if s.in_table]
    messages = []
    for key in table:
        if key in BY_NAME and BY_NAME[key].in_table:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if key in BY_NAME:
            hint = f"; set it with {BY_NAME[key].env} instead"
        messages.append(f"{where}: unknown [tool.tracemend] key {key!r}{hint}")
    return messages


def _table(root: Path | None) -> tuple[dict[str, Any], Path]:
    root = root or project_root()
    table = tool_table(root)
    path = root / "pyproject.toml"
    for message in check_table(table, path):
        if (path, message) not in _warned:
            _warned.add((path, message))
            logger.warning("tracemend: %s", message)
    return table, path


def get(name: str, *, root: Path | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """The value of one setting: environment, then ``[tool.tracemend]``, then the default."""
    setting = BY_NAME[name]
    env = os.environ if environ is None else environ
    if setting.env:
        raw = env.get(setting.env)
        if raw is not None and raw != "":
            value = _convert(setting, raw, setting.env)
            return (not value) if setting.env in _INVERTED else value
    if setting.in_table:
        table, path = _table(root)
        if name in table:
            return _convert(setting, table[name], f"{path} [tool.tracemend] {name}")
    return setting.default


def markdown_table() -> str:
    """The README's settings table, generated from :data:`SETTINGS`."""
    lines = ["| `[tool.tracemend]` key | environment | default | what it sets |", "|---|---|---|---|"]
    for setting in SETTINGS:
        if setting.group == "tests":
            continue
        key = f"`{setting.name}`" if setting.in_table else "—"
        env = f"`{setting.env}`" if setting.env else "—"
        if setting.env in _INVERTED:
            env = f"`{setting.env}=1`"
        default = setting.default
        shown = "—" if default in (None, ()) else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        lines.append(f"| {key} | {env} | {shown} | {setting.doc} |")
    return "\n".join(lines)
