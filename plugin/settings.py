"""Every setting tracemend reads, in one table: the source of ``[tool.tracemend]`` keys, ``TRACEMEND_*``
variables, CLI defaults and the README's settings table (``tests/test_settings.py`` fails when they drift).

A value comes from, first to last: an explicit argument (a CLI option, :func:`tracemend.configure`), the
environment variable, the ``[tool.tracemend]`` table of the project's ``pyproject.toml``, the default.
Unknown keys in the table are reported once with a did-you-mean; a value of the wrong type raises
:class:`~tracemend.errors.ConfigError` naming where it came from.
"""

from __future__ import annotations

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
    "internal": "Set by tracemend for the processes it starts (reruns, case runs)",
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
    _s("db", "path", None, "the trace store file (default `<project root>/.tracemend/traces.db`; a relative "
       "`TRACEMEND_DB` is taken from the working directory)", "recording", env="TRACEMEND_DB"),
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
    _s("run_db", "path", None, "set by tracemend for reruns and regression-case runs: the store their traces go "
       "to, whatever the code under test configures (never the production store)", "internal",
       env="TRACEMEND_RUN_DB", in_table=False),
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
    _s("diagnose_allow_files", "list", (), "globs of files the diagnosing agent may read although they look "
       "secret (`.env*`, keys, credentials) or `.gitignore` hides them", "loop"),
    _s("rerun_env", "list", (), "environment variables passed to reruns besides PATH, HOME, LANG and the like "
       "(e.g. the agent's API key variable)", "loop"),
    # --- the loop ---
    _s("source", "str", None, "where analyze, triage, diagnose, rerun and heal read traces: "
       "`phoenix://HOST:PORT/PROJECT` or `opik://HOST:PORT/PROJECT` (default: the local store)", "loop",
       env="TRACEMEND_SOURCE"),
    _s("verify_runs", "int", 3, "runs per input and revision when a sandbox rerun shows the agent is not "
       "deterministic (its outputs vary); the verdict then compares pass rates", "loop",
       env="TRACEMEND_VERIFY_RUNS"),
    _s("verify_judged_runs", "int", 5, "runs per failing input and revision when the sandbox verifies a judged "
       "failure (each output judged by the rule); the verdict compares pass rates", "loop",
       env="TRACEMEND_VERIFY_JUDGED_RUNS"),
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
    _s("allow_entry_points", "list", (), "globs of `module:qualname` a regression case may call outside the "
       "project's own modules (e.g. `mylib.agents:*`)", "suite"),
    _s("judge_cache", "path", None, "the judge's verdict cache (default `.tracemend/judge_cache.db`)", "suite",
       env="TRACEMEND_JUDGE_CACHE"),
    _s("judge_samples", "int", 1, "judge samples per assertion, majority vote (`--judge-samples`)", "suite"),
    _s("judge_cache_miss", "str", "fail", "what a cache-only run does without a cached verdict: `fail` or "
       "`skip` (`--judge-cache-miss`)", "suite", choices=("fail", "skip")),
    # --- internal ---
    _s("usage_file", "path", None, "every model call of this process and the processes it starts is logged "
       "here (how heal counts the calls of its reruns and case runs)", "internal", env="TRACEMEND_USAGE_FILE",
       in_table=False),
    _s("live_checkout", "path", None, "the user's checkout when a case runs in a sandbox worktree of it: its "
       "import paths are removed", "internal", env="TRACEMEND_LIVE_CHECKOUT", in_table=False),
    # --- tests ---
    _s("allow_model_requests", "str", "true", "`false` forbids real model requests, `loopback` allows only "
       "servers on 127.0.0.1 (test suites)", "tests", env="TRACEMEND_ALLOW_MODEL_REQUESTS", in_table=False,
       choices=("true", "false", "loopback")),
    _s("phoenix_venv", "path", "~/.cache/tracemend-phoenix-venv", "where tracemend's own test suite installs "
       "Arize Phoenix for its export test (built once, reused)", "tests", env="TRACEMEND_PHOENIX_VENV",
       in_table=False),
    _s("test_postgres_url", "str", None, "a running PostgreSQL the Phoenix-on-PostgreSQL tests use (`.ci/run` "
       "starts one; else each test session starts its own)", "tests", env="TRACEMEND_TEST_POSTGRES_URL",
       in_table=False),
    _s("test_postgres_bin", "path", None, "the folder of PostgreSQL's `initdb` and `pg_ctl` for the tests", "tests",
       env="TRACEMEND_TEST_POSTGRES_BIN", in_table=False),
    _s("test_phoenix_url", "str", None, "a running Phoenix (on PostgreSQL) for the source tests, instead of one "
       "they start", "tests", env="TRACEMEND_TEST_PHOENIX_URL", in_table=False),
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
    import difflib

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


def take_table_warnings(root: Path | None = None) -> list[str]:
    """The unknown-key messages of the project's ``[tool.tracemend]`` not reported yet in this process
    (they count as reported now: the caller shows them its own way, as the pytest plugin does)."""
    root = root or project_root()
    path = root / "pyproject.toml"
    fresh = [m for m in check_table(tool_table(root), path) if (path, m) not in _warned]
    _warned.update((path, m) for m in fresh)
    return fresh


def _table(root: Path | None) -> tuple[dict[str, Any], Path]:
    root = root or project_root()
    for message in take_table_warnings(root):
        logger.warning("tracemend: %s", message)
    return tool_table(root), root / "pyproject.toml"


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


def path(name: str, *, root: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """A path setting made absolute: a relative value is relative to the project root."""
    value = get(name, root=root, environ=environ)
    if value is None:
        return None
    value = Path(value)
    return value if value.is_absolute() else (root or project_root()) / value


def _shown(setting: Setting) -> str:
    default = setting.default
    if default in (None, ()):
        return "—"
    return f"`{str(default).lower() if isinstance(default, bool) else default}`"


def markdown_table() -> str:
    """The README's settings table, generated from :data:`SETTINGS` (one row per setting, by group)."""
    lines = ["| `[tool.tracemend]` key | environment | default | what it sets |", "|---|---|---|---|"]
    for group, title in GROUPS.items():
        members = [s for s in SETTINGS if s.group == group]
        if members:
            lines.append(f"| **{title}** | | | |")
        for setting in members:
            key = f"`{setting.name}`" if setting.in_table else "—"
            env = f"`{setting.env}`" if setting.env else "—"
            if setting.env in _INVERTED:
                env = f"`{setting.env}=1`"
            lines.append(f"| {key} | {env} | {_shown(setting)} | {setting.doc} |")
    return "\n".join(lines)


README_START = "<!-- settings table: generated from tracemend.settings.SETTINGS; `python -m tracemend.settings` -->"
README_END = "<!-- end of settings table -->"


def readme_with_table(text: str) -> str:
    """``text`` (the README) with the block between the markers replaced by :func:`markdown_table`."""
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    return text[:start] + "\n" + markdown_table() + "\n" + text[end:]


if __name__ == "__main__":  # python -m tracemend.settings [README.md]: rewrite the README's table
    import sys

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{readme}: settings table written ({len(SETTINGS)} settings)")
