"""The GitHub Actions examples in examples/ci stay valid and use only real tracemend commands and options.

Every ``tracemend …`` and ``pytest …`` command in a ``run:`` step is checked against the real CLI
(``tracemend.cli.build_app()``, introspected through the click command typer builds; typer ≥ 0.2x vendors
its own click, so commands are recognised by shape, not by ``isinstance(..., click.Group)``) and against the options pytest reports in
``pytest --help`` with the tracemend plugin loaded, so a renamed option breaks this test, not a user's CI.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tracemend.cli import build_app

CI_DIR = Path(__file__).resolve().parents[2] / "examples" / "ci"
WORKFLOWS = sorted([*CI_DIR.glob("*.yml"), *CI_DIR.glob("*.yaml")])

# Tokens that end one shell command and start the next; redirections take the next token as a file.
_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
_REDIRECTS = {">", ">>", "<", ">&", "<&", "&>", ">|"}
_SHELL_WORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "env", "exec", "time", "command"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_GHA_EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)
# Options a command refuses together (exit 2), which an option-by-option check cannot see: plugin/cli/heal.py.
EXCLUSIVE: dict[str, list[tuple[str, str]]] = {"heal": [("--yes", "--no-input"), ("--resume", "--fresh")]}


@dataclass(frozen=True)
class Command:
    source: str  # file:job:step, for messages
    tool: str  # "tracemend" or "pytest"
    args: tuple[str, ...]

    @property
    def label(self) -> str:
        head = [a for a in self.args[:2] if not a.startswith("-")][:1]
        return f"{self.source}: {' '.join([self.tool, *head])}"


def load_workflow(text: str, source: str) -> dict:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{source}: not a YAML mapping"
    return data


def workflow_problems(data: dict, source: str) -> list[str]:
    """What makes this not a usable GitHub Actions workflow (empty when it is one)."""
    problems = []
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if "on" not in data and True not in data:
        problems.append(f"{source}: no `on:` triggers")
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return [*problems, f"{source}: no `jobs:`"]
    for name, job in jobs.items():
        if not isinstance(job, dict):
            problems.append(f"{source}: job {name} is not a mapping")
            continue
        if "runs-on" not in job:
            problems.append(f"{source}: job {name} has no `runs-on`")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append(f"{source}: job {name} has no `steps`")
            continue
        for i, step in enumerate(steps):
            if not isinstance(step, dict) or ("run" in step) == ("uses" in step):
                problems.append(f"{source}: job {name} step {i + 1} needs exactly one of `run`/`uses`")
    return problems


def logical_lines(script: str) -> list[str]:
    """Shell lines with backslash-newline continuations joined."""
    return [line.strip() for line in re.sub(r"\\\r?\n", " ", script).splitlines() if line.strip()]


def shell_commands(script: str) -> list[list[str]]:
    """Each simple command of a run script as argv (GitHub ``${{ }}`` expressions become one word)."""
    commands = []
    for line in logical_lines(_GHA_EXPR.sub("GHA_EXPR", script)):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError as exc:
            if re.search(r"\b(tracemend|pytest)\b", line):
                raise ValueError(f"cannot parse shell line {line!r}: {exc}") from None
            continue
        current: list[str] = []
        skip_next = False
        for token in [*tokens, ";"]:
            if skip_next:
                skip_next = False
            elif token in _SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            elif token in _REDIRECTS:
                skip_next = True
            else:
                current.append(token)
    return commands


def tool_command(argv: list[str]) -> tuple[str, list[str]] | None:
    """("tracemend"|"pytest", arguments) when argv runs one of them, else None."""
    i = 0
    while i < len(argv) and (argv[i] in _SHELL_WORDS or _ASSIGNMENT.match(argv[i])):
        i += 1
    rest = argv[i:]
    if not rest:
        return None
    if rest[0] in ("tracemend", "pytest"):
        return rest[0], rest[1:]
    if Path(rest[0]).name.startswith("python") and rest[1:3] == ["-m", "pytest"]:
        return "pytest", rest[3:]
    return None


def commands_in(data: dict, source: str) -> list[Command]:
    found = []
    for job_name, job in (data.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            script = step.get("run") if isinstance(step, dict) else None
            if not isinstance(script, str):
                continue
            where = f"{source}:{job_name}:{step.get('name') or f'step {i + 1}'}"
            for argv in shell_commands(script):
                hit = tool_command(argv)
                if hit:
                    found.append(Command(where, hit[0], tuple(hit[1])))
    return found


@dataclass(frozen=True)
class PytestOptions:
    all: frozenset[str]
    tracemend: frozenset[str]


def _option_names(line: str) -> set[str]:
    column = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", column))


def parse_pytest_help(text: str) -> PytestOptions:
    every: set[str] = set()
    ours: set[str] = set()
    section = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
            continue
        if line.lstrip().startswith("-"):
            names = _option_names(line)
            every |= names
            if section.startswith("tracemend"):
                ours |= names
    return PytestOptions(frozenset(every), frozenset(ours))


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _click_options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def pytest_option_problems(
    args: list[str] | tuple[str, ...], options: PytestOptions, where: str
) -> list[str]:
    problems = []
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.split("=", 1)[0]
        if name.startswith("--") and (name.startswith("--judge") or name == "--regressions"):
            if name not in options.tracemend:
                problems.append(f"{where}: pytest option {name} is not registered by the tracemend plugin")
        elif name not in options.all and not (len(name) > 2 and name[1] != "-" and name[:2] in options.all):
            problems.append(f"{where}: pytest has no option {name}")
    return problems


def tracemend_problems(
    args: list[str] | tuple[str, ...], root: Any, options: PytestOptions, where: str
) -> list[str]:
    """Unknown subcommands or options in one ``tracemend …`` command line."""
    command = root
    path = ["tracemend"]
    rest = list(args)
    while _is_group(command):
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0).split("=", 1)[0]
            if flag not in _click_options(command):
                return [f"{where}: `{' '.join(path)}` has no option {flag}"]
        if not rest:
            return [f"{where}: `{' '.join(path)}` needs a subcommand"]
        name = rest.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            return [f"{where}: `{' '.join(path)}` has no subcommand {name!r}"]
        command, path = sub, [*path, name]
    known = _click_options(command)
    passes_on = bool(command.context_settings.get("ignore_unknown_options"))  # `tracemend test` → pytest
    problems = []
    extra = []
    for arg in rest:
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.split("=", 1)[0]
        if name in known:
            continue
        if passes_on:
            extra.append(arg)
        else:
            problems.append(f"{where}: `{' '.join(path)}` has no option {name}")
    if extra:
        problems += pytest_option_problems(extra, options, f"{where} (passed on to pytest)")
    used = {arg.split("=", 1)[0] for arg in rest}
    for first, second in EXCLUSIVE.get(" ".join(path[1:]), []):
        if first in used and second in used:
            problems.append(f"{where}: `{' '.join(path)}` refuses {first} with {second}")
    return problems


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli() -> Any:
    command = typer.main.get_command(build_app())
    assert _is_group(command) and "watch" in command.commands
    return command


@pytest.fixture(scope="module")
def pytest_options(tmp_path_factory: pytest.TempPathFactory) -> PytestOptions:
    # Outside the repository, so only installed plugins (tracemend's pytest11 entry point) add options.
    env = {**os.environ, "OPIK_PYTEST_EXPERIMENT_ENABLED": "false", "PYTEST_ADDOPTS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:opik", "-p", "no:cacheprovider"],
        cwd=tmp_path_factory.mktemp("pytest-help"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    options = parse_pytest_help(done.stdout)
    assert "--judge-cache-only" in options.tracemend, "the tracemend pytest plugin is not loaded"
    return options


def _all_commands() -> list[Command]:
    found = []
    for path in WORKFLOWS:
        try:
            data = load_workflow(path.read_text(), path.name)
        except (yaml.YAMLError, AssertionError):
            continue  # test_workflow_is_valid reports it; collection goes on
        found += commands_in(data, path.name)
    return found


# --- the examples ---------------------------------------------------------------------------------


def test_examples_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"regressions.yml", "post-deploy.yml"}
    assert (CI_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid(path: Path) -> None:
    assert workflow_problems(load_workflow(path.read_text(), path.name), path.name) == []


def test_the_examples_run_the_commands_the_docs_promise() -> None:
    lines = {(c.tool, c.args[0] if c.tool == "tracemend" else "") for c in _all_commands()}
    assert {("tracemend", "test"), ("tracemend", "watch"), ("tracemend", "heal"), ("pytest", "")} <= lines
    cache_only = [c for c in _all_commands() if "--judge-cache-only" in c.args]
    assert cache_only, "no regression run uses --judge-cache-only"
    heals = [c for c in _all_commands() if c.args[:1] == ("heal",)]
    assert any("--no-input" in c.args for c in heals)
    assert any("--yes" in c.args and "--branch" in c.args for c in heals)


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: c.label)
def test_command_uses_real_options(command: Command, cli: Any, pytest_options: PytestOptions) -> None:
    if command.tool == "pytest":
        assert pytest_option_problems(command.args, pytest_options, command.source) == []
        return
    if command.args[:1] == ("heal",) and "heal" not in cli.commands:
        pytest.skip("`tracemend heal` is not registered in this build yet; checked once it is merged")
    assert tracemend_problems(command.args, cli, pytest_options, command.source) == []


# --- the checker itself ---------------------------------------------------------------------------

_SNIPPET = """
on: {workflow_dispatch: {}}
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          set +e
          TRACEMEND_DB=x.db tracemend watch --window ${{ inputs.window }} \\
            --interval 5m --windwo 10m --db "$TRACEMEND_DB" || echo flagged
          python -m pytest tests/regressions --judge-cache-onyl
          tracemend test --judge-cache-only --judge-cache-mis skip
          tracemend nosuch --db x.db
          tracemend export otlp --since 2h --failing
          tracemend heal --yes --no-input --branch fix
"""


def test_shell_parsing_joins_continuations_and_splits_commands() -> None:
    script = 'A=1 tracemend watch \\\n  --window "1 h" --db x.db && pytest -q > out.txt; echo done # tracemend bogus'
    assert shell_commands(script) == [
        ["A=1", "tracemend", "watch", "--window", "1 h", "--db", "x.db"],
        ["pytest", "-q"],
        ["echo", "done"],
    ]


def test_unknown_options_and_subcommands_are_reported(cli: Any, pytest_options: PytestOptions) -> None:
    data = load_workflow(_SNIPPET, "snippet.yml")
    assert workflow_problems(data, "snippet.yml") == []
    commands = commands_in(data, "snippet.yml")
    assert [(c.tool, c.args[:1]) for c in commands] == [
        ("tracemend", ("watch",)),
        ("pytest", ("tests/regressions",)),
        ("tracemend", ("test",)),
        ("tracemend", ("nosuch",)),
        ("tracemend", ("export",)),
        ("tracemend", ("heal",)),
    ]
    watch, suite, test, nosuch, export, heal = commands
    assert tracemend_problems(watch.args, cli, pytest_options, "w") == [
        "w: `tracemend watch` has no option --windwo"
    ]
    assert pytest_option_problems(suite.args, pytest_options, "p") == [
        "p: pytest option --judge-cache-onyl is not registered by the tracemend plugin"
    ]
    assert tracemend_problems(test.args, cli, pytest_options, "t") == [
        "t (passed on to pytest): pytest option --judge-cache-mis is not registered by the tracemend plugin"
    ]
    assert tracemend_problems(nosuch.args, cli, pytest_options, "n") == [
        "n: `tracemend` has no subcommand 'nosuch'"
    ]
    assert tracemend_problems(export.args, cli, pytest_options, "e") == []
    if "heal" in cli.commands:
        assert tracemend_problems(heal.args, cli, pytest_options, "h") == [
            "h: `tracemend heal` refuses --yes with --no-input"
        ]


def test_invalid_workflows_are_reported() -> None:
    data = load_workflow(
        "name: x\njobs:\n  a:\n    steps: []\n  b:\n    runs-on: x\n    steps: [{name: n}]\n", "bad"
    )
    assert workflow_problems(data, "bad") == [
        "bad: no `on:` triggers",
        "bad: job a has no `runs-on`",
        "bad: job a has no `steps`",
        "bad: job b step 1 needs exactly one of `run`/`uses`",
    ]
