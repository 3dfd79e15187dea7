"""Suite-wide safety: no network, no cloud SDK side effects, and no test writes into the repository's store."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# The shared helpers package (tests/helpers) is importable from every test folder.
sys.path.insert(0, str(Path(__file__).parent))
pytest_plugins = ["helpers.fixtures"]

# Set before anything imports opik or litellm (both reach for the network by default).
os.environ.setdefault("OPIK_URL_OVERRIDE", "http://127.0.0.1:9/api")
os.environ.setdefault("OPIK_SENTRY_ENABLE", "false")
os.environ.setdefault("OPIK_ANALYTICS_ENABLE", "false")
os.environ.setdefault("OPIK_PYTEST_EXPERIMENT_ENABLED", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TRACEMEND_ALLOW_MODEL_REQUESTS", "false")
# Traces recorded by tests in this process go to a scratch store unless a test chooses another.
os.environ.setdefault("TRACEMEND_DB", str(Path(tempfile.mkdtemp(prefix="tracemend-tests-")) / "traces.db"))


@pytest.fixture
def store_path(tmp_path: Path):
    """A fresh store file for this test; @track in this process writes there."""
    import tracemend

    path = tmp_path / "traces.db"
    tracemend.configure(db_path=path)
    yield path
    tracemend.flush()
    tracemend.configure(db_path=os.environ["TRACEMEND_DB"])
