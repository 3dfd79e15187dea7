"""One settings model: tracemend.settings.SETTINGS is the source of `[tool.tracemend]` keys, `TRACEMEND_*`
variables and the README's table, and every reader follows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracemend import settings
from tracemend.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("plugin", "assertions", "sandbox", "examples", "tests", "bench")
# Stand-ins the tests plant to show they do not leak (tests/sandbox): read by nothing.
PLANTED = {"TRACEMEND_SECRET_TOKEN"}
# Not preceded by a word character: click's own _TRACEMEND_COMPLETE is not ours.
VARIABLE = re.compile(r"(?<![A-Za-z0-9_])TRACEMEND_[A-Z0-9_]*[A-Z0-9]")


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'shop'\n\n[tool.tracemend]\n" + textwrap.dedent(table).strip() + "\n"
    )
    return tmp_path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for setting in settings.SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.delenv("OPIK_PROJECT_NAME", raising=False)
    return monkeypatch


def test_the_readme_table_is_generated_from_the_settings() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings.README_START in readme and settings.README_END in readme
    assert readme == settings.readme_with_table(readme), "run: python -m tracemend.settings README.md"


def test_every_variable_the_code_reads_is_a_setting_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found: dict[str, Path] = {}
    for folder in CODE_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            for name in VARIABLE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, path)
    assert len(found) > 20  # the grep itself works
    missing = {
        name: str(path.relative_to(REPO))
        for name, path in found.items()
        if name not in settings.BY_ENV and name not in PLANTED
    }
    assert not missing, f"declare these in tracemend.settings.SETTINGS: {missing}"
    undocumented = [name for name in found if f"`{name}" not in readme and name not in PLANTED]
    assert not undocumented, f"not in the README's settings table: {undocumented}"


def test_every_setting_is_documented_and_typed() -> None:
    for setting in settings.SETTINGS:
        assert setting.doc and setting.group in settings.GROUPS, setting.name
        assert setting.kind in ("str", "int", "float", "bool", "path", "list", "rules"), setting.name
        assert setting.env is None or setting.env.startswith("TRACEMEND_"), setting.name
        assert setting.in_table or setting.env, f"{setting.name} can be set nowhere"


def test_unknown_keys_get_a_did_you_mean() -> None:
    messages = settings.check_table(
        {"judge_modle": "x", "model": "y", "api_key": "s", "zzz": 1}, "pyproject.toml"
    )
    assert messages == [
        "pyproject.toml: unknown [tool.tracemend] key 'judge_modle'; did you mean 'judge_model'?",
        "pyproject.toml: unknown [tool.tracemend] key 'api_key'; set it with TRACEMEND_API_KEY instead",
        "pyproject.toml: unknown [tool.tracemend] key 'zzz'",
    ]


def test_environment_over_table_over_default_and_bad_values_name_their_source(tmp_path, clean_env) -> None:
    root = _project(tmp_path, 'timeout = 12\njudge_cache_miss = "skip"\nconcurrency = "many"\n')
    assert settings.get("timeout", root=root) == 12.0
    assert settings.get("max_retries", root=root) == 3
    assert settings.get("judge_cache_miss", root=root) == "skip"
    clean_env.setenv("TRACEMEND_TIMEOUT", "5")
    assert settings.get("timeout", root=root) == 5.0
    with pytest.raises(
        ConfigError, match=r"pyproject.toml \[tool.tracemend\] concurrency: 'many' is not a int"
    ):
        settings.get("concurrency", root=root)
    clean_env.setenv("TRACEMEND_DISABLED", "1")
    assert settings.get("enabled", root=root) is False
    clean_env.setenv("TRACEMEND_ALLOW_MODEL_REQUESTS", "sometimes")
    with pytest.raises(ConfigError, match="TRACEMEND_ALLOW_MODEL_REQUESTS: 'sometimes' is not one of"):
        settings.get("allow_model_requests", root=root)


def test_the_readers_take_their_values_from_the_settings(tmp_path, clean_env) -> None:
    from tracemend import llm
    from tracemend.assertions.cache import default_cache_path
    from tracemend.capture.settings import from_environment
    from tracemend.export.opik import opik_project
    from tracemend.store.paths import resolve_db_path

    root = _project(
        tmp_path,
        """
        model = "openai/gpt-4o"
        judge_model = "scripted:answers.yaml"
        timeout = 12
        db = "data/traces.db"
        environment = "staging"
        project = "shop-agent"
        redact_keys = ["session_cookie"]
        judge_cache = "ci/verdicts.db"
        regressions = "qa/cases"
        """,
    )
    clean_env.setenv("TRACEMEND_PROJECT_ROOT", str(root))
    loaded = llm.load_settings()
    assert (loaded.model, loaded.judge_model, loaded.timeout) == (
        "openai/gpt-4o",
        "scripted:answers.yaml",
        12.0,
    )
    assert llm.resolve_model("judge") == "scripted:answers.yaml"
    recording = from_environment()
    assert (recording.environment, recording.project, recording.redact_keys) == (
        "staging",
        "shop-agent",
        ["session_cookie"],
    )
    assert recording.resolved_db_path() == resolve_db_path() == root / "data" / "traces.db"
    assert default_cache_path() == root / "ci" / "verdicts.db"
    assert settings.path("regressions") == root / "qa" / "cases"
    assert opik_project() == "shop-agent"
    clean_env.setenv("TRACEMEND_DB", "elsewhere.db")  # a variable wins, and is taken as given
    clean_env.setenv("TRACEMEND_ENV", "production")
    assert resolve_db_path() == Path("elsewhere.db") and from_environment().environment == "production"


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMEND_")}
    return {**env, "TRACEMEND_PROJECT_ROOT": str(root), "TRACEMEND_CODE_VERSION": "test", "COLUMNS": "200"}


def test_recording_settings_come_from_the_table(tmp_path: Path) -> None:
    root = _project(tmp_path, 'db = "data/traces.db"\nenvironment = "staging"\nproject = "shop-agent"\n')
    (root / "agent.py").write_text(
        "import tracemend\n\n@tracemend.track\ndef answer(q):\n    return q.upper()\n\nanswer('hi')\n"
    )
    subprocess.run([sys.executable, "agent.py"], cwd=root, env=_env(root), check=True, timeout=60)
    from tracemend.store import Store

    with Store(root / "data" / "traces.db", create=False) as store:
        (trace,) = list(store.iter_traces())
    assert (trace.environment, trace.project, trace.output) == ("staging", "shop-agent", "HI")


def test_the_command_line_warns_about_a_misspelt_key(tmp_path: Path) -> None:
    root = _project(tmp_path, 'judge_modle = "openai/gpt-4o-mini"\n')
    done = subprocess.run(
        [sys.executable, "-m", "tracemend.cli", "traces"],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "unknown [tool.tracemend] key 'judge_modle'; did you mean 'judge_model'?" in done.stderr
