"""Reruns, the check stage and plain pytest import the project from the tree under test, for every layout,
never from the user's live checkout; what they record goes to stores of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracemend.project import import_roots, strip_live_roots
from tracemend.sandbox.case_check import check_before_after
from tracemend.sandbox.importpath import tree_pythonpath
from tracemend.store import Store

from helpers.sandbox_repo import git

pytestmark = pytest.mark.integration


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pkg/__init__.py": ""}, ["."]),
        ({"src/pkg/__init__.py": ""}, ["src", "."]),
        ({"src/ns/pkg/mod.py": ""}, ["src", "."]),  # a namespace package: no __init__.py anywhere
        (
            {"pyproject.toml": '[tool.setuptools]\npackage-dir = {"" = "lib"}\n', "lib/pkg/__init__.py": ""},
            ["lib", "."],
        ),
        (
            {"pyproject.toml": '[tool.setuptools.packages.find]\nwhere = ["python"]\n', "python/p/__init__.py": ""},
            ["python", "."],
        ),
        (
            {"pyproject.toml": '[tool.hatch.build.targets.wheel]\npackages = ["code/pkg"]\n', "code/pkg/a.py": ""},
            ["code", "."],
        ),
        (
            {"pyproject.toml": '[tool.poetry]\npackages = [{include = "pkg", from = "app"}]\n', "app/pkg/a.py": ""},
            ["app", "."],
        ),
        ({"pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["../elsewhere"]\n'}, ["."]),
    ],
    ids=["flat", "src", "namespace", "setuptools-package-dir", "packages-find", "hatch", "poetry", "outside"],
)
def test_import_roots_for_each_layout(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    root = write(tmp_path / "proj", files)
    assert import_roots(root) == [(root / rel).resolve() for rel in expected]


def test_the_users_pythonpath_into_their_checkout_points_into_the_tree(tmp_path: Path) -> None:
    live = write(tmp_path / "live", {"src/pkg/__init__.py": "", "vendor/x.py": ""})
    tree = write(tmp_path / "tree", {"src/pkg/__init__.py": "", "vendor/x.py": ""})
    other = tmp_path / "site-extra"
    given = os.pathsep.join([str(live / "src"), str(live / "gone"), str(other), str(live / "vendor")])
    entries = tree_pythonpath(tree, live, given).split(os.pathsep)
    assert entries == [str(tree / "src"), str(tree), str(other), str(tree / "vendor")]
    path = [str(live / "src"), str(tree / "src"), "/usr/lib/python3"]
    assert strip_live_roots(live, tree, path) == [str(live / "src")]
    assert path == [str(tree / "src"), "/usr/lib/python3"]


# --- a src-layout agent, "installed" from the live checkout -------------------------------------------

AGENT = """
import tracemend


@tracemend.track
def answer(question: str) -> str:
    return {{"paris": "FR"}}{fix}[question]
"""
CASE = """
name: answer rome
entry_point: agentpkg.agent:answer
input:
  question: rome
checks:
- kind: not_raises
  value: KeyError
"""
# Like setuptools' editable finder: appended to sys.meta_path, mapping the package to the live checkout.
EDITABLE = """
import importlib.machinery, importlib.util, sys

class _Editable(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "agentpkg":
            return importlib.util.spec_from_file_location(
                name, {init!r}, submodule_search_locations=[{pkg!r}]
            )
        return None

sys.meta_path.append(_Editable)
"""


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, Path]:
    """The user's checkout: the bug at HEAD, the fix on branch ``fix``, the package "installed" from
    their own ``src`` (an editable-style finder plus their ``PYTHONPATH``)."""
    repo = write(
        tmp_path / "repo",
        {
            "pyproject.toml": '[project]\nname = "agentpkg"\nversion = "1"\n',
            "src/agentpkg/__init__.py": "",
            "src/agentpkg/agent.py": AGENT.format(fix=""),
            "tests/regressions/answer_rome.yaml": CASE,
        },
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "agent")
    git(repo, "checkout", "-qb", "fix")
    write(repo, {"src/agentpkg/agent.py": AGENT.format(fix='|{"rome": "IT"}')})
    git(repo, "commit", "-qam", "fix")
    git(repo, "checkout", "-q", "main")
    site = write(
        tmp_path / "site",
        {
            "sitecustomize.py": EDITABLE.format(
                init=str(repo / "src" / "agentpkg" / "__init__.py"), pkg=str(repo / "src" / "agentpkg")
            )
        },
    )
    return repo, site


def test_check_on_a_branch_imports_the_committed_tree_not_the_live_checkout(
    live: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, site = live
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(repo / "src")]))
    monkeypatch.delenv("TRACEMEND_DB", raising=False)
    case = (repo / "tests/regressions/answer_rome.yaml").read_text()
    before, after = check_before_after(
        repo, "tests/regressions/answer_rome.yaml", case, base="main", after="fix", run_dir=tmp_path / "run"
    )
    assert not before.passed, before.output_tail  # the unfixed tree: KeyError
    assert after.passed, after.output_tail  # the branch's tree, though the live checkout is unfixed
    assert Store(tmp_path / "run" / "check-with.db", create=False).count() == 1


def test_plain_pytest_runs_a_case_without_the_agent_installed(live: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _site = live
    git(repo, "checkout", "-q", "fix")
    production = tmp_path / "production.db"
    write(repo, {"src/agentpkg/__init__.py": f"import tracemend\ntracemend.configure(db_path={str(production)!r})\n"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEMEND_", "PYTHONPATH"))}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/regressions"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert not production.exists() or Store(production, create=False).count() == 0
    with Store(repo / ".tracemend" / "regression-runs" / "traces.db", create=False) as runs:
        assert runs.count() == 1
