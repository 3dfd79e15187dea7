"""What the diagnosing agent's tools may open, and how they read and search it.

- Files that hold secrets by name (``.env*``, keys and certificates, credentials files, ``.netrc``…) and
  files the repository's ``.gitignore`` hides (untracked and ignored: local settings, build output, stores)
  are not readable unless ``[tool.tracemend] diagnose_allow_files`` names them.
- Only regular files are opened, without blocking: a FIFO, a socket or a device in the repository is
  refused, never waited on.
- Searches use RE2 (linear time: no pattern can make a search hang) and a total time budget.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from tracemend.errors import ToolRefused

# Basenames (globs, case-insensitive) of files that exist to hold secrets.
SECRET_FILES = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.ppk",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    "*service-account*.json",
    "client_secret*.json",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    "secrets.*",
    "*.secrets",
    "*.tfstate",
    "*.tfvars",
)
SEARCH_SECONDS = 10.0


def looks_secret(rel: str) -> bool:
    """Whether the file at ``rel`` (relative to the root) is one that holds secrets by its name."""
    path = PurePosixPath(rel)
    name = path.name.lower()
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_FILES):
        return True
    # ~/.aws/credentials, .docker/config.json, .kube/config and the like, kept in a repository.
    parts = [p.lower() for p in path.parts]
    return (
        (".aws" in parts and name in ("credentials", "config"))
        or (".docker" in parts and name == "config.json")
        or (".kube" in parts and name == "config")
        or ".ssh" in parts
    )


class GitIgnored:
    """The untracked files and folders the repository's ignore rules hide (empty outside a git repository)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: set[str] | None = None
        self._dirs: tuple[str, ...] = ()

    def _load(self) -> None:
        files: set[str] = set()
        dirs: list[str] = []
        try:
            out = subprocess.run(
                ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"],
                cwd=self.root,
                capture_output=True,
                timeout=30,
                check=False,
            )
            if out.returncode == 0:
                for item in out.stdout.decode("utf-8", "surrogateescape").split("\0"):
                    if item.endswith("/"):
                        dirs.append(item)
                    elif item:
                        files.add(item)
        except (OSError, subprocess.SubprocessError):
            pass
        self._files, self._dirs = files, tuple(dirs)

    def __contains__(self, rel: str) -> bool:
        if self._files is None:
            self._load()
        assert self._files is not None
        return rel in self._files or rel.startswith(self._dirs) or (rel + "/") in self._dirs


class FilePolicy:
    """Which files of one repository the tools may read."""

    def __init__(self, root: Path, allow: Iterable[str] = ()) -> None:
        self.root = root
        self.allow = tuple(allow)
        self.ignored = GitIgnored(root)

    def refusal(self, rel: str) -> str | None:
        """Why ``rel`` may not be read, or None."""
        if any(fnmatch.fnmatchcase(rel, pattern) for pattern in self.allow):
            return None
        if looks_secret(rel):
            return (
                f"{rel}: not readable: the name says it holds secrets (allow it with "
                "[tool.tracemend] diagnose_allow_files)"
            )
        if rel in self.ignored:
            return f"{rel}: not readable: .gitignore hides it (allow it with [tool.tracemend] diagnose_allow_files)"
        return None


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file (opened without blocking)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ToolRefused(f"cannot open: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ToolRefused("not a regular file (a pipe, socket or device is never opened)")
        chunks = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Pattern:
    """A model's search pattern, compiled by RE2 (linear time); a pattern RE2 cannot take is searched as
    literal text, and the note says so."""

    def __init__(self, pattern: str) -> None:
        self.note = ""
        self._literal: str | None = None
        self._rx: Any = None
        try:
            import re2
        except ImportError:  # pragma: no cover - google-re2 is a dependency
            self._literal = pattern
            self.note = "(regular expressions need google-re2; searched literally)\n"
            return
        options = re2.Options()
        options.log_errors = False
        try:
            self._rx = re2.compile(pattern, options)
        except re2.error as exc:
            self._literal = pattern
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            self.note = f"(not a valid regex in RE2 syntax: {reason}; searched literally)\n"

    def search(self, line: str) -> bool:
        if self._literal is not None:
            return self._literal in line
        return self._rx.search(line) is not None


class Deadline:
    """The total time a search may take."""

    def __init__(self, seconds: float = SEARCH_SECONDS) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() > self.end
