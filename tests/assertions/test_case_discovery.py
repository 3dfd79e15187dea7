"""Which YAML files are tracemend's: only files that declare themselves cases are collected; another
project's YAML in its own tests/regressions is left alone; cases written before the key still run, with a
warning, and can be migrated."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# Imported before pytester's in-process runs (see test_regression_pytest_plugin).
import yaml

from tracemend.assertions.case import dump_case, load_case, load_cases, write_case
from tracemend.assertions.discovery import SCHEMA_KEY, case_kind, main, migrate
from tracemend.errors import CaseFileError
from tracemend.records import Check, RegressionCase

pytest_plugins = ["pytester"]

BASE_ARGS = ("-p", "no:opik", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
LEGACY = """\
# tracemend regression case: refund window
name: refund window
entry_point: agent:answer
input: {question: "?"}
checks:
  - {kind: contains, value: "30 days"}
"""
AGENT = 'def answer(question):\n    return "Refunds within 30 days."\n'
# Another project's own regression data, and the conftest that turns it into tests.
FOREIGN_YAML = "name: parses dates\ninput: '2024-01-02'\nexpected: 2024\n"
FOREIGN_CONFTEST = """
import pytest, yaml


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".yaml" and "regressions" in file_path.parts:
        return DataFile.from_parent(parent, path=file_path)


class DataFile(pytest.File):
    def collect(self):
        data = yaml.safe_load(self.path.read_text())
        yield DataItem.from_parent(self, name=data["name"], data=data)


class DataItem(pytest.Item):
    def __init__(self, *, data, **kwargs):
        super().__init__(**kwargs)
        self.data = data

    def runtest(self):
        assert int(self.data["input"][:4]) == self.data["expected"]
"""


def _case() -> RegressionCase:
    return RegressionCase(
        name="refund window",
        entry_point="agent:answer",
        input={"question": "?"},
        checks=[Check(kind="contains", value="30 days")],
    )


def test_lock_writes_the_key_first_and_reading_accepts_it(tmp_path: Path) -> None:
    path = write_case(_case(), tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# tracemend regression case") and lines[1] == f"{SCHEMA_KEY}: 1"
    assert case_kind(path) == "case"
    assert load_case(path) == _case()
    assert load_cases(path) == [(path, _case())]
    assert yaml.safe_load(dump_case(_case()))[SCHEMA_KEY] == 1


def test_kinds_from_the_text(tmp_path: Path) -> None:
    (tmp_path / "legacy.yaml").write_text(LEGACY)
    (tmp_path / "foreign.yaml").write_text(FOREIGN_YAML)
    (tmp_path / "entry_only.yaml").write_text("entry_point: not a reference\nname: x\n")
    assert case_kind(tmp_path / "legacy.yaml") == "legacy"
    assert case_kind(tmp_path / "foreign.yaml") is None
    assert case_kind(tmp_path / "entry_only.yaml") is None
    assert case_kind(tmp_path / "missing.yaml") is None


def test_a_newer_format_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    path.write_text(f"{SCHEMA_KEY}: 2\n" + LEGACY)
    with pytest.raises(CaseFileError, match=r"new.yaml:1: tracemend_case: 2 is from a newer tracemend"):
        load_case(path)
    path.write_text(f"{SCHEMA_KEY}: yes\n" + LEGACY)
    with pytest.raises(CaseFileError, match="is not a case format version"):
        load_case(path)


def test_migrate_adds_the_key_after_the_comments(tmp_path: Path) -> None:
    folder = tmp_path / "regressions"
    folder.mkdir()
    (folder / "old.yaml").write_text(LEGACY)
    (folder / "foreign.yaml").write_text(FOREIGN_YAML)
    assert main([str(folder)]) == 0
    lines = (folder / "old.yaml").read_text().splitlines()
    assert lines[:2] == ["# tracemend regression case: refund window", f"{SCHEMA_KEY}: 1"]
    assert case_kind(folder / "old.yaml") == "case" and load_case(folder / "old.yaml").name == "refund window"
    assert (folder / "foreign.yaml").read_text() == FOREIGN_YAML  # not ours: untouched
    assert not migrate(folder / "old.yaml")  # once is enough


def test_another_projects_regression_yaml_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'other'\n")
    pytester.makeconftest(FOREIGN_CONFTEST)
    (pytester.path / "tests" / "regressions").mkdir(parents=True)
    (pytester.path / "tests" / "regressions" / "x.yaml").write_text(FOREIGN_YAML)
    pytester.makepyfile(test_unit="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest(*BASE_ARGS, "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=2)  # its own unit test and its own YAML test; nothing of tracemend's
    assert "tracemend" not in result.stdout.str().replace("plugins: tracemend", "")


def test_a_case_from_before_the_key_still_runs_with_a_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'demo'\n")
    pytester.makepyfile(agent=AGENT)
    pytester.syspathinsert()
    (pytester.path / "tests" / "regressions").mkdir(parents=True)
    (pytester.path / "tests" / "regressions" / "old.yaml").write_text(LEGACY)
    (pytester.path / "tests" / "regressions" / "notes.yaml").write_text("todo: [more cases]\n")
    result = pytester.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*old.yaml: a tracemend case written before*add `tracemend_case: 1`*"])


def test_unknown_settings_keys_warn_with_a_did_you_mean(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [project]
            name = "demo"

            [tool.tracemend]
            judge_modle = "openai/gpt-4o-mini"
            """
        )
    )
    pytester.makepyfile(agent=AGENT)
    pytester.syspathinsert()
    (pytester.path / "tests" / "regressions").mkdir(parents=True)
    write_case(_case(), pytester.path / "tests" / "regressions")
    result = pytester.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*unknown [[]tool.tracemend[]] key 'judge_modle'; did you mean 'judge_model'?*"]
    )


def test_the_entry_point_reads_the_regressions_setting_as_the_settings_declare_it() -> None:
    import tracemend_pytest

    from tracemend.settings import BY_NAME

    declared = BY_NAME["regressions"]
    assert (
        declared.env,
        declared.name,
        declared.default,
    ) == (tracemend_pytest.ENV, tracemend_pytest.KEY, tracemend_pytest.DEFAULT)


def test_an_unrelated_run_loads_nothing_of_tracemend(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'other'\n")
    pytester.makeconftest(
        FOREIGN_CONFTEST + "\n\nimport sys\n\n\ndef pytest_sessionfinish(session):\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0].startswith('tracemend'))\n"
        "    (session.config.rootpath / 'loaded.txt').write_text(' '.join(loaded))\n"
    )
    (pytester.path / "tests" / "regressions").mkdir(parents=True)
    (pytester.path / "tests" / "regressions" / "x.yaml").write_text(FOREIGN_YAML)
    pytester.makepyfile(test_unit="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess(*BASE_ARGS)
    result.assert_outcomes(passed=2)
    assert (pytester.path / "loaded.txt").read_text() == "tracemend_pytest"  # the entry point stub only
