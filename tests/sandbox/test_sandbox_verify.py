"""Integration: verify proposed changes against a real git repository and real recorded traces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracemend.sandbox import (
    ChangeRejected,
    rerun_traces,
    sample_passing,
    select_traces,
    verify_change,
)
from tracemend.sandbox.worktree import isolated_worktree
from tracemend.store import Store

from helpers.sandbox_repo import AgentRepo, diff_for, make_agent_repo, snapshot, textblock

pytestmark = pytest.mark.integration

FIX = ('table = {"paris": "FR", "berlin": "DE"}', 'table = {"paris": "FR", "berlin": "DE", "rome": "IT"}')
FIX_BUT_BREAK = ('table = {"paris": "FR", "berlin": "DE"}', 'table = {"paris": "FR", "rome": "IT"}')


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> AgentRepo:
    return make_agent_repo(tmp_path_factory.mktemp("sandbox") / "repo")


@pytest.fixture
def untouched(agent: AgentRepo):
    before = snapshot(agent.root)
    yield
    assert snapshot(agent.root) == before, "the user's tree, index or refs changed"


def test_recorded_traces_are_real(agent: AgentRepo) -> None:
    rome = agent.trace("where is Rome")
    assert rome.status == "error" and rome.error is not None and rome.error.type == "KeyError"
    assert agent.trace("where is Paris").status == "ok"
    assert rome.config_param == "config" and rome.config_class == "agentpkg.agent:AgentConfig"


def test_diff_that_fixes_the_failure(agent: AgentRepo, untouched: None) -> None:
    diff = diff_for(agent.root, "agentpkg/agent.py", *FIX)
    result = verify_change(
        agent.root, diff, [agent.trace("where is Rome")], [agent.trace("where is Paris")], timeout=30
    )
    assert result.apply.ok and result.apply.touched == ["agentpkg/agent.py"]
    assert result.comparison is not None
    assert result.comparison.verdict == "fixed"
    items = {item.source_trace_id: item for item in result.comparison.items}
    rome = items[agent.trace("where is Rome").trace_id]
    assert rome.was_failing and rome.change == "fixed"
    assert rome.before.status == "error" and rome.before.error.type == "KeyError"
    assert rome.after.status == "ok" and rome.after.output == {"country": "IT", "model": "small"}
    assert '"IT"' in rome.output_diff
    # The rerun recorded a new trace tagged with the worktree's commit plus "+patch".
    assert rome.after.trace is not None
    assert rome.after.trace.code_version.commit == result.base_commit + "+patch"
    assert rome.before.trace.code_version.commit == result.base_commit
    assert "\n-  lookup [tool]  ✗ KeyError\n" in rome.span_diff and "\n+  lookup [tool]\n" in rome.span_diff
    paris = items[agent.trace("where is Paris").trace_id]
    assert paris.change == "unchanged_ok" and not paris.was_failing


def test_fix_that_breaks_a_passing_input(agent: AgentRepo, untouched: None) -> None:
    diff = diff_for(agent.root, "agentpkg/agent.py", *FIX_BUT_BREAK)
    result = verify_change(
        agent.root,
        diff,
        [agent.trace("where is Rome")],
        [agent.trace("where is Paris"), agent.trace("where is Berlin")],
    )
    assert result.comparison is not None
    assert result.comparison.verdict == "regressed_elsewhere"
    changes = {item.source_trace_id: item.change for item in result.comparison.items}
    assert changes[agent.trace("where is Rome").trace_id] == "fixed"
    assert changes[agent.trace("where is Berlin").trace_id] == "broke"
    assert changes[agent.trace("where is Paris").trace_id] == "unchanged_ok"


def test_diff_that_does_not_apply_says_where_it_meant(agent: AgentRepo, untouched: None) -> None:
    diff = textblock(
        """
        --- a/agentpkg/agent.py
        +++ b/agentpkg/agent.py
        @@ -12,3 +12,3 @@
         def lookup(city):
        -    table = {"paris": "FR", "berlin": "DE", "madrid": "ES"}
        +    table = {"paris": "FR", "berlin": "DE", "madrid": "ES", "rome": "IT"}
             return table[city.lower()]
        """
    )
    result = verify_change(agent.root, diff, [agent.trace("where is Rome")])
    assert not result.apply.ok and result.comparison is None
    (miss,) = result.apply.misses
    assert miss.path == "agentpkg/agent.py" and "does not apply" in miss.reason
    assert miss.closest is not None and 'table = {"paris": "FR", "berlin": "DE"}' in miss.closest
    assert miss.closest_start_line == 13


def test_search_replace_with_wrong_indentation_applies(agent: AgentRepo, untouched: None) -> None:
    # The model dropped the function body's indentation and a trailing space; matching is tolerant.
    change = textblock(
        """
        agentpkg/agent.py
        ```python
        <<<<<<< SEARCH
        table = {"paris": "FR", "berlin": "DE"}
        return table[city.lower()]
        =======
        table = {"paris": "FR", "berlin": "DE", "rome": "IT"}
        return table[city.lower()]
        >>>>>>> REPLACE
        ```
        """
    ).replace('"DE"}\n', '"DE"}   \n', 1)
    result = verify_change(agent.root, change, [agent.trace("where is Rome")])
    assert result.apply.ok, result.apply
    assert '+    table = {"paris": "FR", "berlin": "DE", "rome": "IT"}' in result.apply.diff
    assert result.comparison is not None and result.comparison.verdict == "fixed"


def test_change_that_does_not_compile_runs_nothing(agent: AgentRepo, untouched: None) -> None:
    diff = diff_for(agent.root, "agentpkg/agent.py", "def lookup(city):", "def lookup(city:")
    result = verify_change(agent.root, diff, [agent.trace("where is Rome")])
    assert not result.apply.ok and result.comparison is None
    assert any("agentpkg/agent.py" in e and "does not compile" in e for e in result.apply.errors)


# name: (diff, words the rejection must give as its reason)
HOSTILE = {
    "dotdot": "--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x = 1\n",
    "absolute": "--- /dev/null\n+++ /tmp/tracemend-evil.py\n@@ -0,0 +1 @@\n+x = 1\n",
    "git_hooks": "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\nnew file mode 100755\n"
    "--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+echo pwned\n",
    "symlink_escape": "diff --git a/escape b/escape\nnew file mode 120000\n--- /dev/null\n+++ b/escape\n"
    "@@ -0,0 +1 @@\n+/etc\n\\ No newline at end of file\n",
    "binary": "diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..e69de29\n"
    "GIT binary patch\nliteral 4\nLcmZQzWMT#Y01f~L\n\nliteral 0\nHcmV?d00001\n\n",
    "binary_differ": "diff --git a/logo.png b/logo.png\nindex 1234567..89abcde 100644\n"
    "Binary files a/logo.png and b/logo.png differ\n",
}


REASONS = {
    "dotdot": "'..' in a path",
    "absolute": "absolute paths are not allowed",
    "git_hooks": "edits to .git are not allowed",
    "symlink_escape": "symlinks",
    "binary": "binary patches",
    "binary_differ": "binary patches",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_diffs_are_rejected(agent: AgentRepo, untouched: None, name: str) -> None:
    with pytest.raises(ChangeRejected) as info:
        verify_change(agent.root, HOSTILE[name], [agent.trace("where is Rome")])
    assert REASONS[name] in str(info.value)
    assert not Path("/tmp/tracemend-evil.py").exists()
    assert not (agent.root.parent / "evil.py").exists()


def test_symlink_in_repository_that_escapes_is_rejected(
    agent: AgentRepo, untouched: None, tmp_path: Path
) -> None:
    # A committed symlink pointing outside: writing through it would escape the worktree.
    outside = tmp_path / "outside"
    outside.mkdir()
    with isolated_worktree(agent.root) as tree:
        (tree / "data").symlink_to(outside)
        from tracemend.sandbox import Edit, apply_edits

        with pytest.raises(ChangeRejected, match="outside the repository"):
            apply_edits(tree, [Edit(path="data/x.py", search="", replace="x = 1\n")])
    assert list(outside.iterdir()) == []


def test_search_replace_hostile_path(agent: AgentRepo, untouched: None) -> None:
    change = "../outside.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n"
    with pytest.raises(ChangeRejected, match=r"'\.\.'"):
        verify_change(agent.root, change, [agent.trace("where is Rome")])
    assert not (agent.root.parent / "outside.py").exists()


def test_hang_and_exit_are_results(agent: AgentRepo, untouched: None) -> None:
    traces = [
        agent.variant("hang"),
        agent.variant("exit"),
        agent.variant("segv"),
        agent.trace("where is Paris"),
    ]
    with isolated_worktree(agent.root) as tree:
        results = rerun_traces(traces, workdir=tree, timeout=3, parallel=4)
    hang, exited, segv, paris = results
    assert hang.status == "timeout" and "3 s" in hang.error.message
    assert exited.status == "crashed" and "code 3" in exited.error.message
    assert segv.status == "crashed" and "SIGSEGV" in segv.error.message
    assert "Segmentation fault" in segv.stderr_tail and "agent.py" in segv.stderr_tail
    assert paris.status == "ok" and paris.output == {"country": "FR", "model": "small"}


def test_environment_is_an_allowlist(agent: AgentRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-test-123")
    trace = agent.variant("env")
    with isolated_worktree(agent.root) as tree:
        hidden, shown = (
            rerun_traces([trace], workdir=tree)[0],
            rerun_traces([trace], workdir=tree, pass_env=["FAKE_API_KEY"])[0],
        )
        assert Path(shown.output["cwd"]).resolve() == tree.resolve()
    assert hidden.status == "ok" and hidden.output["key"] is None
    assert shown.output["key"] == "sk-test-123"


def test_what_if_config_override(agent: AgentRepo, untouched: None) -> None:
    hot = agent.trace("where is Paris", 1.5)
    assert hot.status == "error"
    result = verify_change(agent.root, None, [hot], config_overrides={"temperature": 0})
    assert result.comparison is not None and result.comparison.verdict == "fixed"
    (item,) = result.comparison.items
    assert item.before.error.type == "ValueError"
    assert item.after.trace is not None and item.after.trace.config["temperature"] == 0


def test_src_layout_package_imported_from_the_users_tree_runs_patched(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's environment imports the package from their own checkout (PYTHONPATH, like an editable
    # install); the rerun must still execute the worktree's patched copy, not the user's files.
    agent = make_agent_repo(tmp_path_factory.mktemp("sandbox-src") / "repo", src_layout=True)
    monkeypatch.setenv("PYTHONPATH", str(agent.root / "src"))
    before = snapshot(agent.root)
    diff = diff_for(agent.root, "src/agentpkg/agent.py", *FIX)
    result = verify_change(agent.root, diff, [agent.trace("where is Rome")], progress=True)
    assert result.comparison is not None and result.comparison.verdict == "fixed"
    (item,) = result.comparison.items
    frames = [f.file for f in item.before.error.frames if f.in_app]
    assert frames and all(f == "src/agentpkg/agent.py" for f in frames), frames
    assert snapshot(agent.root) == before


INTERRUPTED = """
import sys
from pathlib import Path
from tracemend.records import Trace
from tracemend.sandbox import isolated_worktree, rerun_traces

trace = Trace.model_validate_json(Path(sys.argv[1]).read_text())
with isolated_worktree(Path(sys.argv[2])) as tree:
    print(tree, flush=True)
    rerun_traces([trace], workdir=tree, timeout=60)
"""


def _processes_in(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == directory:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_kills_reruns_and_removes_the_worktree(
    agent: AgentRepo, untouched: None, tmp_path: Path, signum: int
) -> None:
    trace_file = tmp_path / "hang.json"
    trace_file.write_text(agent.variant("hang").model_dump_json())
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(trace_file), str(agent.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    tree = tmp_path / "never-started"
    try:
        tree = Path(proc.stdout.readline().strip()).resolve()
        assert tree.is_dir()
        deadline = time.monotonic() + 20
        while not _processes_in(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_in(tree), "the rerun never started"
        time.sleep(0.5)  # let the child get into its sleep
        proc.send_signal(signum)
        assert proc.wait(timeout=20) != 0
    finally:
        # If the test fails, leave no orphan behind (the rerun runs in its own session).
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _processes_in(tree):
            os.kill(pid, signal.SIGKILL)
    assert not tree.exists()
    assert _processes_in(tree) == []


def test_signature_selection(agent: AgentRepo) -> None:
    from tracemend.analyze import signatures

    rome = agent.trace("where is Rome")
    wanted = signatures.signature_of(rome).signature_id
    with Store(agent.db, create=False) as store:
        failing, passing = select_traces(store, signature=wanted[:8])
        sample = sample_passing(store, failing, per_entry_point=5)
    assert [t.trace_id for t in failing] == [rome.trace_id] and passing == []
    assert {t.trace_id for t in sample} == {
        agent.trace("where is Paris").trace_id,
        agent.trace("where is Berlin").trace_id,
    }
