"""A real PostgreSQL server on loopback for the Phoenix-on-PostgreSQL tests.

CI (``.ci/run``) starts one cluster for the whole run and exports ``TRACEMEND_TEST_POSTGRES_URL``
(``postgresql://postgres@127.0.0.1:PORT/postgres``) and ``TRACEMEND_TEST_POSTGRES_BIN`` (where
``createdb`` lives). Without them, :func:`postgres` starts a throwaway cluster itself from the Debian
``postgresql`` package (``/usr/lib/postgresql/<v>/bin``), in a temporary folder, on a free port; as root
it runs ``initdb`` and ``pg_ctl`` under ``runuser -u postgres``, since PostgreSQL refuses to run as root.
Missing binaries fail the test with the command that installs them: the tests are part of CI and are not
skipped silently.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers.phoenix import free_port

URL_VAR = "TRACEMEND_TEST_POSTGRES_URL"
BIN_VAR = "TRACEMEND_TEST_POSTGRES_BIN"


def bin_dir() -> Path:
    explicit = os.environ.get(BIN_VAR)
    if explicit:
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    pytest.fail(
        "PostgreSQL is not installed: `apt-get install -y postgresql` (or set "
        f"{URL_VAR} to a server the tests may create databases on)",
        pytrace=False,
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    url: str  # the maintenance database: postgresql://postgres@127.0.0.1:PORT/postgres
    bin: Path
    data: Path | None = None  # set when this process started the cluster (and stops it)

    def create_database(self, prefix: str = "phoenix") -> str:
        """A new, empty database on this server; its URL."""
        parts = urlsplit(self.url)
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        user = parts.username or "postgres"
        done = subprocess.run(
            [str(self.bin / "createdb"), "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
             "-U", user, name],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"createdb {name} failed: {done.stderr.strip()}")
        return f"postgresql://{parts.netloc}/{name}"

    def stop(self) -> None:
        if self.data is not None:
            subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
                           capture_output=True, timeout=60)
            shutil.rmtree(self.data.parent, ignore_errors=True)
            self.data = None


def start_postgres() -> Postgres:
    """The server CI started, else a new cluster of our own (stop it with :meth:`Postgres.stop`)."""
    bindir = bin_dir()
    if os.environ.get(URL_VAR):
        return Postgres(os.environ[URL_VAR], bindir)
    root = Path(tempfile.mkdtemp(prefix="tracemend-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = free_port()
    steps = [
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        _as_postgres([
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            "start",
        ]),
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = (root / "log").read_text(errors="replace")[-2000:] if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise AssertionError(f"{' '.join(step)} failed ({done.returncode}):\n{done.stderr}\n{log}")
    return Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", bindir, data)
