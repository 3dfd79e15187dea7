"""Extras: a command or a regression case that needs a library `pip install tracemend` leaves out names the
extra to install instead of failing with an import traceback. The libraries are made unimportable here
the way a missing distribution is: a finder at the front of sys.meta_path refuses them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracemend.errors import EXTRAS, MissingExtra, missing_extra, require

BLOCKER = """
import sys


class Missing:
    # Refuses the listed top-level modules, as when their distribution is not installed.
    names = {names!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Missing())
"""


def _run(tmp_path: Path, blocked: set[str], *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        BLOCKER.format(names=blocked)
        + "\nfrom tracemend.cli import main\nsys.argv = ['tracemend', *sys.argv[1:]]\nmain()\n"
    )
    env = {**os.environ, "COLUMNS": "200", "TRACEMEND_DB": str(tmp_path / "traces.db")}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_extra_names_the_extra() -> None:
    error = ModuleNotFoundError("No module named 'scipy'", name="scipy.special")
    assert str(missing_extra(error, "tracemend analyze")) == (
        "tracemend analyze needs 'scipy.special', which comes with an extra: pip install 'tracemend[loop]'"
    )
    assert missing_extra(ModuleNotFoundError("x", name="requests")) is None  # not one of ours: left as is
    assert missing_extra(ImportError("cannot import name 'x'", name="yaml")) is None  # installed but broken
    assert set(EXTRAS.values()) == {"loop", "opik", "otel"}
    with pytest.raises(MissingExtra, match=r"pip install 'tracemend\[otel\]'"):
        require("opentelemetry.not_a_module_of_any_version", "OTLP export")


@pytest.mark.parametrize(
    ("blocked", "args", "extra"),
    [
        ({"numpy", "scipy"}, ("analyze",), "loop"),
        ({"opentelemetry"}, ("export", "otlp", "--endpoint", "http://127.0.0.1:9"), "otel"),
        ({"yaml"}, ("lock", "abc", "--check", "contains=x"), "loop"),
        ({"git"}, ("heal", "--no-input"), "loop"),
    ],
)
def test_a_command_without_its_extra_says_which_to_install(tmp_path: Path, blocked, args, extra) -> None:
    import tracemend

    @tracemend.track
    def answer(question: str) -> str:
        raise KeyError(question)

    tracemend.configure(db_path=tmp_path / "traces.db")  # a store with a failing trace, as in production
    try:
        with pytest.raises(KeyError):
            answer("uk")
        tracemend.flush()
    finally:
        tracemend.configure(db_path=os.environ["TRACEMEND_DB"])
    done = _run(tmp_path, blocked, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and " needs '" in done.stderr
    assert f"pip install 'tracemend[{extra}]'" in done.stderr and "Traceback" not in done.stderr


def test_regression_cases_without_the_loop_extra_fail_saying_so(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[project]\nname = 'demo'\n")
    pytester.makeconftest(BLOCKER.format(names={"yaml"}))
    folder = pytester.path / "tests" / "regressions"
    folder.mkdir(parents=True)
    (folder / "case.yaml").write_text(
        textwrap.dedent(
            """\
            tracemend_case: 1
            name: a case
            entry_point: agent:answer
            checks: [{kind: not_raises}]
            """
        )
    )
    (folder / "notes.yaml").write_text("not: a case\n")
    result = pytester.runpytest_subprocess("-p", "no:opik", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*cannot run the regression case tests/regressions/case.yaml: running tracemend regression cases"
            " needs 'yaml', which comes with an extra: pip install 'tracemend[[]loop]'"
        ]
    )


pytest_plugins = ["pytester"]
