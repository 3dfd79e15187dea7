"""One Phoenix server on PostgreSQL for the source tests that need it (a session's worth of ~40 s start).

Every test that uses it carries ``xdist_group("phoenix")``, so with ``--dist loadgroup`` they all run on
one worker and share the server; each test reads and writes projects of its own. While developing,
``TRACEMEND_TEST_PHOENIX_URL`` points the tests at a Phoenix already running (on PostgreSQL) instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from helpers.phoenix import PhoenixServer, start_phoenix
from helpers.postgres import start_postgres


@pytest.fixture(scope="session")
def phoenix_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    running = os.environ.get("TRACEMEND_TEST_PHOENIX_URL")
    if running:
        yield PhoenixServer(running.rstrip("/"), 0, None, tmp_path_factory.mktemp("unused") / "log", None, 0.0)  # type: ignore[arg-type]
        return
    postgres = start_postgres()
    try:
        database = postgres.create_database()
        server = start_phoenix(tmp_path_factory.mktemp("phoenix-pg"), database_url=database)
        install = "cached venv" if server.install_seconds is None else f"{server.install_seconds:.1f} s"
        print(f"\n[phoenix/postgres] install: {install}; start with migrations: {server.start_seconds:.1f} s")
        try:
            yield server
        finally:
            server.stop()
    finally:
        postgres.stop()


@pytest.fixture
def recorded(store_path):
    """A store with two traces of the export agent, recorded by the real ``@track``: one ok, one failing."""
    import tracemend
    from tracemend.store import Store

    from helpers.export_agent import ToolFailure, answer

    answer("refunds")
    with pytest.raises(ToolFailure):
        answer("boom")
    tracemend.flush()
    store = Store(store_path)
    yield store
    store.close()
