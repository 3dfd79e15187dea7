"""tracemend's pytest11 entry point, loaded in every pytest run wherever tracemend is installed.

It imports nothing of tracemend's: importing the ``tracemend`` package costs tens of milliseconds, which
every unrelated project's test run would pay. It declares tracemend's options, finds the regressions
folder, and only when the run has one (or the project a ``[tool.tracemend]`` table, whose keys are then
checked) registers the plugin itself, :mod:`tracemend.assertions.pytest_plugin`.

The folder: ``--regressions DIR`` (repeatable), else the ``tracemend_regressions`` ini option, else the
``regressions`` setting of :mod:`tracemend.settings` (``TRACEMEND_REGRESSIONS``, then ``[tool.tracemend]
regressions``, relative to the rootdir; default ``tests/regressions``), read here with the same rules
(``tests/test_settings.py`` holds the names in step).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ENV = "TRACEMEND_REGRESSIONS"
KEY = "regressions"
DEFAULT = "tests/regressions"
DIRS = pytest.StashKey[list]()  # the regressions folders that exist, for the plugin


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
    if dirs or table is not None:
        from tracemend.assertions import pytest_plugin

        config.pluginmanager.register(pytest_plugin, "tracemend-regressions")
