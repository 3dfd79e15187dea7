"""A fresh, throw-away git worktree of the user's repository, so nothing the sandbox does touches theirs.

``git worktree add`` writes only below ``.git/worktrees/`` of the repository (never the user's working
tree or index); the checkout itself lives in a temporary directory. It is removed on exit, on errors and
on Ctrl-C, and stale registrations are pruned.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tracemend.errors import SandboxError

__all__ = ["SandboxError", "isolated_worktree", "worktree_commit"]


def _git(repo: Path):  # -> git.Repo, imported lazily (gitpython is heavy)
    import git

    try:
        return git.Repo(repo, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise SandboxError(f"{repo}: not a git repository") from exc


@contextmanager
def isolated_worktree(repo: Path, rev: str = "HEAD") -> Iterator[Path]:
    """A detached checkout of ``rev`` in a temporary directory; always removed afterwards.

    Only committed content is checked out: uncommitted changes in the user's tree are not part of it.
    Hooks are disabled for the checkout (``core.hooksPath``) so that no repository hook runs.
    """
    import git

    repository = _git(Path(repo))
    try:
        commit = repository.commit(rev).hexsha
    except (git.BadName, ValueError) as exc:
        raise SandboxError(f"{repo}: unknown revision {rev!r}") from exc
    tmp = Path(tempfile.mkdtemp(prefix="tracemend-sandbox-"))
    path = tmp / "worktree"
    added = False
    restore = _terminate_as_interrupt()
    try:
        repository.git.execute(
            [
                "git",
                "-c",
                "core.hooksPath=/dev/null",
                "worktree",
                "add",
                "--detach",
                "--quiet",
                str(path),
                commit,
            ]
        )
        added = True
        yield path
    finally:
        if added:
            try:
                repository.git.execute(["git", "worktree", "remove", "--force", "--force", str(path)])
            except git.GitCommandError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            repository.git.execute(["git", "worktree", "prune"])
        except git.GitCommandError:
            pass
        repository.close()
        restore()


def _terminate_as_interrupt() -> Callable[[], None]:
    """While a worktree exists, SIGTERM unwinds like Ctrl-C (so cleanup runs) instead of killing outright.

    Only in the main thread and only when SIGTERM has its default action; returns the undo.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (AttributeError, ValueError):
        return lambda: None
    if previous is not signal.SIG_DFL:
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def worktree_commit(path: Path) -> str:
    """The commit checked out at ``path``."""
    repository = _git(path)
    try:
        return repository.head.commit.hexsha
    finally:
        repository.close()
