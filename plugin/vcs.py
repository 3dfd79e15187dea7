"""Git access for triage and diagnosis, on gitpython (imported lazily: ``import tracemend`` never pays for it).

Everything here reads the repository, except :func:`apply_to_working_tree` and :func:`commit_to_branch`,
which run only after a person approved a change. ``commit_to_branch`` builds the commit in a temporary
worktree, so the user's checkout, index and current branch are never touched by it.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tracemend.errors import VcsError

if TYPE_CHECKING:
    import git


ChangeStatus = Literal["added", "deleted", "modified", "renamed", "copied", "type_changed"]
_STATUS = {"A": "added", "D": "deleted", "M": "modified", "R": "renamed", "C": "copied", "T": "type_changed"}


@dataclass(frozen=True)
class FileChange:
    path: str
    status: ChangeStatus
    old_path: str | None = None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    summary: str
    author: str
    date: datetime

    @property
    def short(self) -> str:
        return self.sha[:10]


def open_repo(path: Path | str = ".") -> git.Repo:
    """The repository containing ``path`` (searching parent folders)."""
    import git

    try:
        return git.Repo(Path(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise VcsError(f"{path}: not inside a git repository") from exc


def repo_root(repo: git.Repo) -> Path:
    if repo.working_tree_dir is None:
        raise VcsError("bare repositories are not supported")
    return Path(repo.working_tree_dir).resolve()


def resolve(repo: git.Repo, rev: str) -> str:
    """A revision (sha prefix, branch, ``HEAD~1``) → the full commit sha."""
    import git

    if not isinstance(rev, str) or not rev or rev.startswith("-"):
        raise VcsError(f"invalid revision {rev!r}")
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        raise VcsError(f"unknown revision {rev!r} in {repo_root(repo)}") from exc


def has_revision(repo: git.Repo, rev: str) -> bool:
    try:
        resolve(repo, rev)
    except VcsError:
        return False
    return True


def diff(repo: git.Repo, base: str, head: str = "HEAD", paths: list[str] | None = None) -> str:
    """Unified diff from ``base`` to ``head`` (text; binary files are summarised by git)."""
    import git

    args = ["--no-color", "--no-ext-diff", "-M", resolve(repo, base), resolve(repo, head)]
    if paths:
        args += ["--", *paths]
    try:
        out = repo.git.diff(*args)
    except git.GitCommandError as exc:
        raise VcsError(f"git diff {base}..{head} failed: {exc.stderr.strip()}") from exc
    return out + "\n" if out and not out.endswith("\n") else out


def changed_files(repo: git.Repo, base: str, head: str = "HEAD") -> list[FileChange]:
    """Files that differ between two revisions, with their status (renames detected)."""
    out = repo.git.diff("--name-status", "-M", "--no-color", resolve(repo, base), resolve(repo, head))
    changes: list[FileChange] = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        status = _STATUS.get(parts[0][:1], "modified")
        if status in ("renamed", "copied") and len(parts) >= 3:
            changes.append(FileChange(path=parts[2], status=status, old_path=parts[1]))  # type: ignore[arg-type]
        else:
            changes.append(FileChange(path=parts[1], status=status))  # type: ignore[arg-type]
    return changes


def file_at(repo: git.Repo, rev: str, path: str) -> str | None:
    """A file's text at a revision, or None when it does not exist there."""
    import git

    try:
        blob = repo.commit(resolve(repo, rev)).tree / path
    except KeyError:
        return None
    except git.BadName as exc:
        raise VcsError(f"unknown revision {rev!r}") from exc
    return blob.data_stream.read().decode("utf-8", errors="replace")


def files_at(repo: git.Repo, rev: str) -> list[str]:
    """Every file path tracked at a revision."""
    return [item.path for item in repo.commit(resolve(repo, rev)).tree.traverse() if item.type == "blob"]


def commits_between(repo: git.Repo, base: str, head: str = "HEAD") -> list[CommitInfo]:
    """Commits reachable from ``head`` but not ``base``, oldest first."""
    rng = f"{resolve(repo, base)}..{resolve(repo, head)}"
    out = []
    for c in repo.iter_commits(rng):
        out.append(
            CommitInfo(
                sha=c.hexsha,
                summary=c.summary if isinstance(c.summary, str) else c.summary.decode(),
                author=str(c.author.name),
                date=datetime.fromtimestamp(c.committed_date, UTC),
            )
        )
    return list(reversed(out))


def parent_of(repo: git.Repo, rev: str) -> str | None:
    commit = repo.commit(resolve(repo, rev))
    return commit.parents[0].hexsha if commit.parents else None


def revert_command(repo: git.Repo, base: str, head: str) -> str:
    """The exact command that undoes every commit in ``base..head`` on top of the current branch."""
    commits = commits_between(repo, base, head)
    if not commits:
        return "# nothing to revert: no commits between the two revisions"
    if len(commits) == 1:
        return f"git revert --no-edit {commits[0].short}"
    return f"git revert --no-edit {resolve(repo, base)[:10]}..{resolve(repo, head)[:10]}"


def _check_patch(repo: git.Repo, patch_file: Path, cwd: Path) -> None:
    import git

    try:
        git.Git(str(cwd)).apply("--check", str(patch_file))
    except git.GitCommandError as exc:
        raise VcsError(f"the change does not apply to {cwd}: {exc.stderr.strip()}") from exc


def apply_to_working_tree(repo: git.Repo, patch: str) -> list[str]:
    """Apply a unified diff to the working tree (not the index). Checked first: all or nothing."""
    root = repo_root(repo)
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False, encoding="utf-8") as fh:
        fh.write(patch if patch.endswith("\n") else patch + "\n")
        patch_file = Path(fh.name)
    try:
        _check_patch(repo, patch_file, root)
        import git

        git.Git(str(root)).apply(str(patch_file))
    finally:
        patch_file.unlink(missing_ok=True)
    return _patch_paths(patch)


def commit_to_branch(repo: git.Repo, patch: str, branch: str, message: str, *, rev: str = "HEAD") -> str:
    """Create ``branch`` at ``rev`` with one commit holding ``patch``; returns the commit sha.

    Built in a temporary worktree so the user's checkout, index and current branch stay as they are.
    """
    import git

    if branch in [h.name for h in repo.heads]:
        raise VcsError(f"branch {branch!r} already exists; choose another name with --branch")
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError as exc:
        raise VcsError(f"{branch!r} is not a valid branch name") from exc
    base = resolve(repo, rev)
    tmp = Path(tempfile.mkdtemp(prefix="tracemend-commit-"))
    wt = tmp / "wt"
    created = False
    try:
        repo.git.worktree("add", "-b", branch, str(wt), base)
        created = True
        with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False, encoding="utf-8") as fh:
            fh.write(patch if patch.endswith("\n") else patch + "\n")
            patch_file = Path(fh.name)
        try:
            _check_patch(repo, patch_file, wt)
            wt_repo = git.Repo(wt)
            wt_repo.git.apply("--index", str(patch_file))
            wt_repo.git.commit("-m", message, "--no-verify")
            sha = wt_repo.head.commit.hexsha
        finally:
            patch_file.unlink(missing_ok=True)
    except Exception:
        if created:
            repo.git.worktree("remove", "--force", str(wt))
            created = False
            repo.git.branch("-D", branch)
        raise
    finally:
        if created:
            repo.git.worktree("remove", "--force", str(wt))
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return sha


def _patch_paths(patch: str) -> list[str]:
    paths: list[str] = []
    for line in patch.splitlines():
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            p = line[4:].strip()
            paths.append(p[2:] if p.startswith("b/") else p)
    return paths


def undo_working_tree_command(paths: list[str]) -> str:
    """How to undo an applied change to these files (restores them from HEAD)."""
    return "git checkout -- " + " ".join(shlex.quote(p) for p in paths) if paths else "# nothing to undo"
