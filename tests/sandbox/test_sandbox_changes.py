"""Parsing and applying SEARCH/REPLACE edits and unified diffs: tolerance, misses, rejections."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tracemend.records import ErrorInfo, RerunResult
from tracemend.sandbox import (
    ChangeRejected,
    Edit,
    apply_change,
    apply_edits,
    apply_patch,
    compare,
    isolated_worktree,
    looks_like_diff,
    parse_edits,
    parse_overrides,
    sandbox_env,
)

SOURCE = """\
import json


def handler(event):
    if event.get("kind") == "ping":
        return "pong"

    payload = json.loads(event["body"])
    return payload["value"]


def other(event):
    return None
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "handler.py").write_text(SOURCE)
    return tmp_path


def read(tree: Path) -> str:
    return (tree / "app" / "handler.py").read_text()


# --- parsing ----------------------------------------------------------------------------------------


def test_parse_blocks_with_fences_and_reused_path() -> None:
    text = """Here is the fix.

app/handler.py
```python
<<<<<<< SEARCH
    payload = json.loads(event["body"])
=======
    payload = json.loads(event.get("body") or "{}")
>>>>>>> REPLACE
```

```python
<<<<<<< SEARCH
    return payload["value"]
=======
    return payload.get("value")
>>>>>>> REPLACE
```

`app/new.py`
<<<<<<< SEARCH
=======
X = 1
>>>>>>> REPLACE
"""
    edits = parse_edits(text)
    assert [e.path for e in edits] == ["app/handler.py", "app/handler.py", "app/new.py"]
    assert edits[0].search == '    payload = json.loads(event["body"])\n'
    assert edits[1].replace == '    return payload.get("value")\n'
    assert edits[2].search == "" and edits[2].replace == "X = 1\n"
    assert not looks_like_diff(text)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", "no file path"),
        ("x.py\n<<<<<<< SEARCH\na\nb\n", "not terminated"),
        ("x.py\n<<<<<<< SEARCH\na\n=======\nb\n", "no >>>>>>> REPLACE"),
    ],
)
def test_malformed_blocks_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(ChangeRejected, match=reason):
        parse_edits(text)


# --- tolerant application ---------------------------------------------------------------------------


def test_exact_edit(tree: Path) -> None:
    result = apply_edits(
        tree,
        [Edit(path="app/handler.py", search='        return "pong"\n', replace='        return "PONG"\n')],
    )
    assert result.ok and result.touched == ["app/handler.py"]
    assert 'return "PONG"' in read(tree)
    assert '-        return "pong"\n+        return "PONG"\n' in result.diff


def test_wrong_indentation_and_trailing_whitespace(tree: Path) -> None:
    # The model wrote the block flush left with trailing spaces; the file has it indented by 4.
    search = 'payload = json.loads(event["body"])  \nreturn payload["value"]\n'
    replace = 'payload = json.loads(event.get("body") or "{}")\nif not payload:\n    return None\nreturn payload["value"]\n'
    result = apply_edits(tree, [Edit(path="app/handler.py", search=search, replace=replace)])
    assert result.ok, result
    assert (
        '    payload = json.loads(event.get("body") or "{}")\n    if not payload:\n        return None\n'
        '    return payload["value"]\n' in read(tree)
    )
    compile(read(tree), "handler.py", "exec")


def test_missing_blank_line_in_search(tree: Path) -> None:
    search = '        return "pong"\n    payload = json.loads(event["body"])\n'
    replace = '        return "pong"\n\n    payload = json.loads(event["body"] or "{}")\n'
    result = apply_edits(tree, [Edit(path="app/handler.py", search=search, replace=replace)])
    assert result.ok, result
    assert '        return "pong"\n\n    payload = json.loads(event["body"] or "{}")\n' in read(tree)


def test_ambiguous_search_is_a_miss(tree: Path) -> None:
    (tree / "app" / "handler.py").write_text(SOURCE + "\n\ndef third(event):\n    return None\n")
    result = apply_edits(tree, [Edit(path="app/handler.py", search="return None\n", replace="return 0\n")])
    assert not result.ok
    (miss,) = result.misses
    assert "2 places" in miss.reason and miss.closest_start_line == 13


def test_miss_gives_the_closest_region_and_writes_nothing(tree: Path) -> None:
    edits = [
        Edit(path="app/handler.py", search='        return "pong"\n', replace='        return "PONG"\n'),
        Edit(
            path="app/handler.py",
            search='    payload = json.loads(event["data"])\n    return payload["val"]\n',
            replace="    return 1\n",
        ),
    ]
    result = apply_edits(tree, edits)
    assert not result.ok and read(tree) == SOURCE  # all or nothing
    (miss,) = result.misses
    assert miss.reason.startswith("SEARCH text not found")
    assert miss.closest == '    payload = json.loads(event["body"])\n    return payload["value"]\n'
    assert miss.closest_start_line == 8


def test_missing_file_and_new_file(tree: Path) -> None:
    result = apply_edits(tree, [Edit(path="app/nope.py", search="x = 1\n", replace="x = 2\n")])
    assert not result.ok and "does not exist" in result.misses[0].reason
    result = apply_edits(tree, [Edit(path="app/sub/new.py", search="", replace="VALUE = 1\n")])
    assert result.ok and (tree / "app" / "sub" / "new.py").read_text() == "VALUE = 1\n"
    assert "--- /dev/null\n+++ b/app/sub/new.py\n" in result.diff


def test_python_that_does_not_compile_is_not_written(tree: Path) -> None:
    result = apply_edits(
        tree, [Edit(path="app/handler.py", search="def other(event):\n", replace="def other(event:\n")]
    )
    assert not result.ok and read(tree) == SOURCE
    assert result.errors and result.errors[0].startswith("app/handler.py:12: does not compile")


def test_crlf_file_keeps_its_line_endings(tree: Path) -> None:
    (tree / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    result = apply_edits(tree, [Edit(path="w.txt", search="two\n", replace="TWO\n")])
    assert result.ok and (tree / "w.txt").read_bytes() == b"one\r\nTWO\r\nthree\r\n"


# --- rejections -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, reason",
    [
        ("../x.py", "'..'"),
        ("app/../../x.py", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x.py", "absolute"),
        (".git/config", ".git"),
        ("sub/.GIT/hooks/x", ".git"),
        ("", "empty"),
    ],
)
def test_paths_outside_are_rejected(tree: Path, path: str, reason: str) -> None:
    with pytest.raises(ChangeRejected, match=reason):
        apply_edits(tree, [Edit(path=path, search="", replace="x\n")])


def test_symlink_escape_and_symlink_into_git(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.py").write_text("s = 1\n")
    (tree / "link").symlink_to(outside)
    (tree / "linkfile.py").symlink_to(outside / "secret.py")
    (tree / ".git").mkdir()
    (tree / "gitlink").symlink_to(tree / ".git")
    for path in ("link/new.py", "linkfile.py", "link/secret.py"):
        with pytest.raises(ChangeRejected, match="outside the repository"):
            apply_edits(tree, [Edit(path=path, search="", replace="x = 1\n")])
    with pytest.raises(ChangeRejected, match=r"\.git"):
        apply_edits(tree, [Edit(path="gitlink/hooks/post-commit", search="", replace="x\n")])
    assert (outside / "secret.py").read_text() == "s = 1\n" and sorted(os.listdir(outside)) == ["secret.py"]


def test_binary_content_is_rejected(tree: Path) -> None:
    (tree / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ChangeRejected, match="binary"):
        apply_edits(tree, [Edit(path="blob.bin", search="a", replace="b")])
    with pytest.raises(ChangeRejected, match="binary"):
        apply_edits(tree, [Edit(path="new.txt", search="", replace="a\x00b")])


# --- unified diffs ----------------------------------------------------------------------------------


def test_patch_with_shifted_line_numbers_applies_nearest(tree: Path) -> None:
    diff = (
        "--- a/app/handler.py\n+++ b/app/handler.py\n@@ -20,3 +20,3 @@\n \n"
        '-    payload = json.loads(event["body"])\n'
        '+    payload = json.loads(event.get("body") or "{}")\n'
        '     return payload["value"]\n'
    )
    assert looks_like_diff(diff)
    result = apply_patch(tree, diff)
    assert result.ok, result
    assert '    payload = json.loads(event.get("body") or "{}")\n' in read(tree)


def test_patch_new_deleted_and_renamed_files(tree: Path) -> None:
    (tree / "old.txt").write_text("a\nb\n")
    (tree / "gone.txt").write_text("bye\n")
    diff = """\
diff --git a/new.txt b/new.txt
new file mode 100644
--- /dev/null
+++ b/new.txt
@@ -0,0 +1,2 @@
+hello
+world
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old.txt b/moved.txt
similarity index 50%
rename from old.txt
rename to moved.txt
--- a/old.txt
+++ b/moved.txt
@@ -1,2 +1,2 @@
 a
-b
+B
"""
    result = apply_patch(tree, diff)
    assert result.ok, result
    assert (tree / "new.txt").read_text() == "hello\nworld\n"
    assert not (tree / "gone.txt").exists() and not (tree / "old.txt").exists()
    assert (tree / "moved.txt").read_text() == "a\nB\n"
    assert sorted(result.touched) == ["gone.txt", "moved.txt", "new.txt", "old.txt"]


def test_patch_no_newline_at_end(tree: Path) -> None:
    (tree / "n.txt").write_text("x\ny\n")
    diff = "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n\\ No newline at end of file\n"
    assert apply_patch(tree, diff).ok
    assert (tree / "n.txt").read_text() == "x\nz"


HUNK = (
    "@@ -20,3 +20,3 @@\n \n"
    '-    payload = json.loads(event["body"])\n'
    '+    payload = json.loads(event.get("body") or "{}")\n'
    '     return payload["value"]\n'
)


@pytest.mark.parametrize(
    "header",
    [
        "diff --git b/app/handler.py a/app/handler.py\n--- b/app/handler.py\n+++ a/app/handler.py\n",  # git diff -R
        "diff --git app/handler.py app/handler.py\n--- app/handler.py\n+++ app/handler.py\n",  # --no-prefix
        "--- app/handler.py\t2026-01-01\n+++ app/handler.py\t2026-01-02\n",  # diff -u
        "--- old/app/handler.py\n+++ new/app/handler.py\n",  # any one-component prefix, as git apply -p1
    ],
    ids=["reversed", "no-prefix", "plain", "other-prefix"],
)
def test_path_prefixes_are_stripped_as_git_apply_does(tree: Path, header: str) -> None:
    result = apply_patch(tree, header + HUNK)
    assert result.ok, result
    assert result.touched == ["app/handler.py"]
    assert '    payload = json.loads(event.get("body") or "{}")\n' in read(tree)


def test_a_new_file_in_a_no_prefix_diff_keeps_its_folder(tree: Path) -> None:
    diff = (
        "diff --git app/handler.py app/handler.py\n--- app/handler.py\n+++ app/handler.py\n" + HUNK
        + "diff --git app/extra.py app/extra.py\nnew file mode 100644\n--- /dev/null\n+++ app/extra.py\n"
        "@@ -0,0 +1 @@\n+X = 1\n"
    )
    result = apply_patch(tree, diff)
    assert result.ok, result
    assert (tree / "app" / "extra.py").read_text() == "X = 1\n"


def test_patch_that_does_not_apply_is_a_miss(tree: Path) -> None:
    diff = '--- a/app/handler.py\n+++ b/app/handler.py\n@@ -5,2 +5,2 @@\n-    if event.get("type") == "ping":\n+    if event.get("type") in ("ping", "health"):\n         return "pong"\n'
    result = apply_patch(tree, diff)
    assert not result.ok and read(tree) == SOURCE
    (miss,) = result.misses
    assert "hunk 1" in miss.reason and "does not apply" in miss.reason
    assert miss.closest_start_line == 5 and 'event.get("kind") == "ping"' in (miss.closest or "")


@pytest.mark.parametrize(
    "diff, reason",
    [
        ("this is not a diff at all", "neither a unified diff"),
        ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n", "not a valid unified diff"),
        (
            "diff --git a/s b/s\nnew file mode 160000\n--- /dev/null\n+++ b/s\n@@ -0,0 +1 @@\n+Subproject commit 0\n",
            "submodules",
        ),
    ],
)
def test_invalid_changes_are_rejected(tree: Path, diff: str, reason: str) -> None:
    with pytest.raises(ChangeRejected, match=reason):
        apply_change(tree, diff)


# --- worktrees --------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_worktree_is_removed_on_errors_and_interrupts(tmp_path: Path, exc: type[BaseException]) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "f.txt").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "c")
    seen: list[Path] = []
    with pytest.raises(exc), isolated_worktree(repo) as tree:
        seen.append(tree)
        assert (tree / "f.txt").read_text() == "one\n"
        (tree / "f.txt").write_text("changed\n")
        raise exc()
    assert not seen[0].exists() and not seen[0].parent.exists()
    assert (repo / "f.txt").read_text() == "one\n"
    assert _git(repo, "worktree", "list").count("\n") == 1
    assert _git(repo, "status", "--porcelain") == ""


# --- overrides, environment, comparison -------------------------------------------------------------


def test_parse_overrides() -> None:
    assert parse_overrides(["model=gpt-4o", "temperature=0", 'tools=["a"]', "flag=true", 'name="7"']) == {
        "model": "gpt-4o",
        "temperature": 0,
        "tools": ["a"],
        "flag": True,
        "name": "7",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["novalue"])


def test_sandbox_env_allowlist() -> None:
    env = sandbox_env(
        ["OPENAI_API_KEY"],
        {
            "PATH": "/bin",
            "HOME": "/h",
            "PYTHONHASHSEED": "0",
            "PYTHONSTARTUP": "/tmp/evil.py",
            "PYTHONINSPECT": "1",
            "TRACEMEND_PROJECT": "p",
            "TRACEMEND_DB": "/x.db",
            "TRACEMEND_SECRET_TOKEN": "t0ken",
            "TRACEMEND_API_KEY": "k2",
            "OPENAI_API_KEY": "k",
            "ANTHROPIC_API_KEY": "a",
            "AWS_SECRET_ACCESS_KEY": "s",
        },
    )
    # Names, never prefixes: TRACEMEND_* and PYTHON* variables outside the list stay in the parent.
    assert env == {
        "PATH": "/bin",
        "HOME": "/h",
        "PYTHONHASHSEED": "0",
        "TRACEMEND_PROJECT": "p",
        "OPENAI_API_KEY": "k",
    }


def test_sandbox_env_takes_the_variables_named_in_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.tracemend]\nrerun_env = ["SHOP_API_KEY"]\n')
    monkeypatch.setenv("TRACEMEND_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("SHOP_API_KEY", "shop-key")
    monkeypatch.setenv("TRACEMEND_SECRET_TOKEN", "t0ken")
    env = sandbox_env()
    assert env["SHOP_API_KEY"] == "shop-key" and "TRACEMEND_SECRET_TOKEN" not in env


def _result(tid: str, status: str, output: object = None, error: str | None = None) -> RerunResult:
    return RerunResult(
        source_trace_id=tid,
        status=status,  # type: ignore[arg-type]
        output=output,
        error=ErrorInfo(type=error, message="m") if error else None,
    )


def test_compare_kinds_and_verdicts() -> None:
    before = [
        _result("a", "error", error="KeyError"),
        _result("b", "error", error="KeyError"),
        _result("c", "error", error="KeyError"),
        _result("d", "ok", 1),
        _result("e", "ok", 1),
    ]
    after = [
        _result("a", "ok", 2),
        _result("b", "error", error="KeyError"),
        _result("c", "timeout", error="timeout"),
        _result("d", "ok", 1),
        _result("e", "ok", 3),
    ]
    comparison = compare(before, after, {"a", "b", "c"})
    assert [i.change for i in comparison.items] == [
        "fixed",
        "still_failing",
        "new_error",
        "unchanged_ok",
        "changed_ok",
    ]
    assert comparison.verdict == "partially_fixed"
    assert compare(before[:1], after[:1], {"a"}).verdict == "fixed"
    assert compare(before[1:3], after[1:3], {"b", "c"}).verdict == "not_fixed"
    broke = compare(
        [*before[:1], _result("d", "ok", 1)], [after[0], _result("d", "crashed", error="crashed")], {"a"}
    )
    assert broke.verdict == "regressed_elsewhere" and broke.items[1].change == "broke"
    assert compare(before[3:], after[3:], set()).verdict == "unchanged"


def test_two_spellings_of_one_path_accumulate(tree: Path) -> None:
    edits = [
        Edit(path="app/handler.py", search='        return "pong"\n', replace='        return "PONG"\n'),
        Edit(path="./app//handler.py", search='        return "PONG"\n', replace='        return "P0NG"\n'),
    ]
    result = apply_edits(tree, edits)
    assert result.ok and result.touched == ["app/handler.py"]
    assert 'return "P0NG"' in read(tree)


def test_the_root_itself_is_not_a_file(tree: Path) -> None:
    with pytest.raises(ChangeRejected, match="repository itself"):
        apply_edits(tree, [Edit(path="./", search="", replace="x\n")])


def test_patch_with_miscounted_hunk_and_stripped_blank_context(tree: Path) -> None:
    # As models and editors write them: the header says 9 lines, and the blank context line lost its space.
    diff = (
        "--- a/app/handler.py\n+++ b/app/handler.py\n@@ -5,9 +5,9 @@\n"
        '     if event.get("kind") == "ping":\n'
        '         return "pong"\n'
        "\n"
        '-    payload = json.loads(event["body"])\n'
        '+    payload = json.loads(event.get("body") or "{}")\n'
        '     return payload["value"]\n'
    )
    result = apply_patch(tree, diff)
    assert result.ok, result
    assert '        return "pong"\n\n    payload = json.loads(event.get("body") or "{}")\n' in read(tree)
