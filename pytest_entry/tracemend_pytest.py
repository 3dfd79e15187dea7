"""tracemend's pytest11 entry point, loaded in every pytest run wherever tracemend is installed.

It imports nothing of tracemend's: importing the ``tracemend`` package costs tens of milliseconds, which
every unrelated project's test run would pay. It declares tracemend's options, finds the regressions
folder, and registers the plugin itself, :mod:`tracemend.assertions.pytest_plugin`, only when that folder
holds a tracemend case (or the project has a ``[tool.tracemend]`` table, whose keys are then checked).

Which YAML files are cases is told from their text alone, here (:func:`case_kind`), so that no YAML parser
is needed: ``"case"`` when the file declares itself with a top-level ``tracemend_case: <version>`` line
(``tracemend lock`` writes it as the first key); ``"legacy"`` for a case written before that key existed
(top-level ``name:`` and ``entry_point: module:qualname`` lines), still run with a warning; ``None`` for
any other YAML, which is not tracemend's and is left alone.

The folder: ``--regressions DIR`` (repeatable), else the ``tracemend_regressions`` ini option, else the
``regressions`` setting of :mod:`tracemend.settings` (``TRACEMEND_REGRESSIONS``, then ``[tool.tracemend]
regressions``, relative to the rootdir; default ``tests/regressions``), read here with the same rules
(``tests/test_settings.py`` holds the names in step).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

ENV = "TRACEMEND_REGRESSIONS"
KEY = "regressions"
DEFAULT = "tests/regressions"
DIRS = pytest.StashKey[list]()  # the regressions folders that exist, for the plugin

SCHEMA_KEY = "tracemend_case"
SCHEMA_VERSION = 1
SUFFIXES = (".yaml", ".yml")
HEAD_BYTES = 65_536  # a case's keys come first; a large unrelated file is not read whole
_DECLARED = re.compile(rf"^{SCHEMA_KEY}[ \t]*:", re.M)
_NAME = re.compile(r"^name[ \t]*:", re.M)
_ENTRY = re.compile(
    r"""^entry_point[ \t]*:[ \t]*["']?[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*["']?[ \t]*(#.*)?$""", re.M
)


def case_kind(path: Path | str) -> str | None:
    """``"case"``, ``"legacy"`` or ``None`` (not a tracemend case), from the file's first bytes."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    if _DECLARED.search(head):
        return "case"
    if _NAME.search(head) and _ENTRY.search(head):
        return "legacy"
    return None


def case_files(folder: Path | str) -> list[Path]:
    """The YAML files under ``folder`` that may be cases (``_name.yaml`` and hidden files never are)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(("_", "."))
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracemend", "tracemend regression cases")
    group.addoption(
        "--regressions",
        action="append",
        dest="tracemend_regressions",
        default=None,
        metavar="DIR",
        help="folder of regression-case YAML files (default: the regressions setting, tests/regressions)",
    )
    group.addoption(
        "--judge-model", dest="judge_model", default=None, help="judge model id (litellm or scripted:<path>)"
    )
    group.addoption(
        "--judge-no-cache", dest="judge_no_cache", action="store_true", help="ignore the verdict cache"
    )
    group.addoption(
        "--judge-cache-only",
        dest="judge_cache_only",
        action="store_true",
        help="only use cached verdicts (CI); a miss fails, or skips with --judge-cache-miss=skip",
    )
    group.addoption("--judge-cache-miss", dest="judge_cache_miss", choices=("fail", "skip"), default=None)
    group.addoption(
        "--judge-cache", dest="judge_cache", default=None, metavar="PATH", help="verdict cache file"
    )
    group.addoption(
        "--judge-samples", dest="judge_samples", type=int, default=None, help="judge samples per assertion"
    )
    group.addoption(
        "--judge-no-prefetch",
        dest="judge_no_prefetch",
        action="store_true",
        help="evaluate each case when its item runs (no up-front concurrent judging)",
    )
    parser.addini(
        "tracemend_regressions", "folders of regression-case YAML files", type="linelist", default=[]
    )


def _table(root: Path) -> dict[str, Any] | None:
    """``[tool.tracemend]`` of the rootdir's pyproject.toml; None without one (or when it is unreadable:
    the plugin, once loaded, reports that)."""
    path = root / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if "tracemend" not in text:
        return None
    import tomllib  # already imported by pytest to read its own settings

    try:
        table = tomllib.loads(text).get("tool", {}).get("tracemend")
    except tomllib.TOMLDecodeError:
        return {}
    return table if isinstance(table, dict) else None


def regression_dirs(config: pytest.Config, table: dict[str, Any] | None) -> list[Path]:
    given = config.getoption("tracemend_regressions") or config.getini("tracemend_regressions") or []
    if given:
        here = Path(config.invocation_params.dir)
        return [(Path(d) if Path(d).is_absolute() else here / d).resolve() for d in given]
    root = Path(config.rootpath)
    value = os.environ.get(ENV) or (table or {}).get(KEY) or DEFAULT
    path = Path(str(value)).expanduser()
    return [(path if path.is_absolute() else root / path).resolve()]


def pytest_configure(config: pytest.Config) -> None:
    table = _table(Path(config.rootpath))
    dirs = [d for d in regression_dirs(config, table) if d.is_dir()]
    config.stash[DIRS] = dirs
    if table is not None or any(case_kind(path) for folder in dirs for path in case_files(folder)):
        from tracemend.assertions import pytest_plugin

        config.pluginmanager.register(pytest_plugin, "tracemend-regressions")
