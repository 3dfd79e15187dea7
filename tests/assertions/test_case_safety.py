"""A regression case file is input from whoever can open a pull request (or a model's proposed edit): it may
call only the project's own code, and its YAML is parsed within bounds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tracemend.assertions.case import MAX_CASE_BYTES, load_case
from tracemend.errors import CaseFileError

from helpers.spine import run_python

pytest_plugins = ["pytester"]

BASE_ARGS = ("-p", "no:opik", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")
AGENT = """
from pydantic import BaseModel


class AgentConfig(BaseModel):
    tone: str = "plain"


def answer(question: str, config: AgentConfig | None = None) -> str:
    return f"answer to {question}"
"""


def _case(pytester: pytest.Pytester, name: str, body: str) -> None:
    folder = pytester.path / "tests" / "regressions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(body).lstrip())


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml("[project]\nname = 'demo'\n")
    pytester.makepyfile(agent=AGENT)
    pytester.syspathinsert()
    _case(
        pytester,
        "fine",
        """
        name: answers
        entry_point: agent:answer
        input: {question: refunds}
        checks: [{kind: contains, value: refunds}]
        """,
    )
    return pytester


def test_a_case_cannot_call_os_system(project: pytest.Pytester) -> None:
    pwned = project.path / "PWNED"
    _case(
        project,
        "shell",
        f"""
        name: innocent looking
        entry_point: os:system
        input: {{command: "touch {pwned}"}}
        checks: [{{kind: not_raises}}]
        """,
    )
    _case(
        project,
        "shell_config",
        f"""
        name: innocent config
        entry_point: agent:answer
        input: {{question: hi}}
        config: {{command: "touch {pwned}"}}
        config_class: os:system
        config_param: config
        checks: [{{kind: not_raises}}]
        """,
    )
    result = project.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*cannot rerun os:system: 'os:system' is not code of the project*"])
    result.stdout.fnmatch_lines(["*cannot rerun agent:answer: 'os:system' is not code of the project*"])
    assert not pwned.exists()


def test_installed_libraries_need_allow_entry_points(project: pytest.Pytester) -> None:
    _case(
        project,
        "library",
        """
        name: a library function
        entry_point: json:dumps
        input: {obj: [1, 2]}
        checks: [{kind: contains, value: "[1, 2]"}]
        """,
    )
    result = project.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*list it in [[]tool.tracemend[]] allow_entry_points*"])
    project.makepyprojecttoml(
        "[project]\nname = 'demo'\n\n[tool.tracemend]\nallow_entry_points = ['json:*']\n"
    )
    project.runpytest(*BASE_ARGS).assert_outcomes(passed=2)


def test_code_in_the_projects_virtualenv_is_not_the_projects(project: pytest.Pytester) -> None:
    venv = project.path / ".venv" / "lib"
    venv.mkdir(parents=True)
    (venv / "vendored.py").write_text("def run(question):\n    return question\n")
    project.syspathinsert(venv)
    _case(
        project,
        "vendored",
        "name: vendored\nentry_point: vendored:run\ninput: {question: q}\nchecks: [{kind: not_raises}]\n",
    )
    result = project.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*'vendored:run' is not code of the project*"])


BOMB = """
name: bomb
entry_point: agent:answer
assertions: [fine]
input:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_is_refused_within_a_time_and_memory_bound(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    # Unbounded, this case ran past 120 s and 5.4 GB; here it must be refused under 1 GiB and 60 s.
    proc = run_python(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from tracemend.assertions.case import load_case
        from tracemend.errors import CaseFileError
        try:
            load_case({str(path)!r})
        except CaseFileError as exc:
            print("refused:", exc)
        """,
        timeout=60,
    )
    assert "refused:" in proc.stdout and "expands to more than 100000 values" in proc.stdout


def test_deep_nesting_self_reference_and_size_are_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    nested = "".join(f"{'  ' * i}k{i}:\n" for i in range(80)) + "  " * 80 + "leaf: 1\n"
    deep.write_text(
        "name: deep\nentry_point: agent:answer\nassertions: [a]\ninput:\n" + textwrap.indent(nested, "  ")
    )
    with pytest.raises(CaseFileError, match="nests deeper than 64 levels"):
        load_case(deep)
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: loop\nentry_point: agent:answer\nassertions: [a]\ninput:\n  x: &x [1, *x]\n")
    with pytest.raises(CaseFileError, match="refers to a value that contains it"):
        load_case(loop)
    big = tmp_path / "big.yaml"
    big.write_text(
        "name: big\nentry_point: agent:answer\nassertions: [a]\ninput: {q: '" + "x" * MAX_CASE_BYTES + "'}\n"
    )
    with pytest.raises(CaseFileError, match="a case file may hold at most"):
        load_case(big)


def test_a_bomb_among_cases_fails_alone(project: pytest.Pytester) -> None:
    _case(project, "bomb", BOMB)
    result = project.runpytest(*BASE_ARGS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*invalid regression case file*bomb.yaml*expands to more than 100000 values*"]
    )
