"""The judge's verdict cache: one SQLite file, project-local, meant to be committed or restored in CI.

A verdict is reused only when everything that could change it is the same: the judge model, the judge prompt
version, the assertion text, the normalized output and input, and the sample index. So unchanged outputs
cost no model calls, and any change to them asks the judge again. The file uses the rollback journal (not
WAL), so the ``.db`` file alone is the whole cache — safe to commit, and safe for pytest-xdist workers
writing at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

CacheMode = Literal["default", "no-cache", "cache-only"]
CACHE_MODES: tuple[str, ...] = ("default", "no-cache", "cache-only")
DEFAULT_CACHE_PATH = Path(".tracemend") / "judge_cache.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key            TEXT PRIMARY KEY,
    judge_model    TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    assertion      TEXT NOT NULL,
    output_hash    TEXT NOT NULL,
    input_hash     TEXT NOT NULL,
    sample         INTEGER NOT NULL,
    passed         INTEGER NOT NULL,
    reasoning      TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS categories (
    key      TEXT PRIMARY KEY,
    category TEXT NOT NULL
);
"""
# Failure categories (online judging) sit in a table of their own, so files written by this version still
# work with older ones, whose inserts name every column of ``verdicts``.


def normalize_text(text: str) -> str:
    """Line endings and trailing whitespace do not change a verdict, so they do not change the key."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def normalize_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return normalize_text(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    judge_model: str
    prompt_version: str
    assertion: str
    output_hash: str
    input_hash: str
    sample: int

    @property
    def key(self) -> str:
        return _sha(
            json.dumps(
                [
                    self.judge_model,
                    self.prompt_version,
                    self.assertion.strip(),
                    self.output_hash,
                    self.input_hash,
                    self.sample,
                ]
            )
        )


def make_key(
    *, judge_model: str, prompt_version: str, assertion: str, output: Any, input: Any, sample: int
) -> CacheKey:
    return CacheKey(
        judge_model=judge_model,
        prompt_version=prompt_version,
        assertion=assertion,
        output_hash=_sha(normalize_value(output)),
        input_hash=_sha(normalize_value(input)),
        sample=sample,
    )


@dataclass
class CachedVerdict:
    passed: bool
    reasoning: str
    category: str | None = None


def default_cache_path() -> Path:
    """``TRACEMEND_JUDGE_CACHE``, else ``[tool.tracemend] judge_cache``, else ``.tracemend/judge_cache.db``,
    relative to the project root."""
    from tracemend import settings
    from tracemend.project import project_root

    return settings.path("judge_cache") or project_root() / DEFAULT_CACHE_PATH


class VerdictCache:
    """``get(key)`` / ``put(key, passed, reasoning)``; the mode decides what is read and written:
    ``default`` reads and fills, ``no-cache`` neither reads nor writes, ``cache-only`` reads and never asks the
    judge (a miss raises :class:`JudgeCacheMiss`). New verdicts are written on :meth:`flush` / :meth:`close`
    (or every ``FLUSH_EVERY``); use it as a context manager."""

    FLUSH_EVERY = 200

    def __init__(self, path: Path | str | None = None, mode: CacheMode = "default") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"unknown judge cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}")
        self.path = Path(path) if path is not None else default_cache_path()
        self.mode: CacheMode = mode
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._pending_categories: dict[str, str] = {}

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.mode == "cache-only" and not self.path.exists():
                # Nothing to read, and cache-only must not create files in CI.
                self._conn = sqlite3.connect(":memory:", check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                self._conn.execute("PRAGMA journal_mode=DELETE")
            self._conn.executescript(_SCHEMA)
        return self._conn

    @property
    def reads(self) -> bool:
        return self.mode != "no-cache"

    @property
    def writes(self) -> bool:
        return self.mode == "default"

    def get(self, key: CacheKey) -> CachedVerdict | None:
        if not self.reads:
            return None
        with self._lock:
            queued = self._pending.get(key.key)
            if queued is not None:
                self.hits += 1
                category = self._pending_categories.get(key.key)
                return CachedVerdict(passed=bool(queued[7]), reasoning=queued[8], category=category)
            row = (
                self._connect()
                .execute(
                    "SELECT v.passed, v.reasoning, c.category FROM verdicts v "
                    "LEFT JOIN categories c ON c.key = v.key WHERE v.key = ?",
                    (key.key,),
                )
                .fetchone()
            )
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            return CachedVerdict(passed=bool(row[0]), reasoning=row[1], category=row[2])

    def put(self, key: CacheKey, passed: bool, reasoning: str, *, category: str | None = None) -> None:
        """Queue a verdict; queued verdicts are written in one transaction (every ``FLUSH_EVERY`` or on
        :meth:`flush` / :meth:`close`), since a commit per verdict would stall a concurrent suite on fsync."""
        if not self.writes:
            return
        row = (
            key.key,
            key.judge_model,
            key.prompt_version,
            key.assertion,
            key.output_hash,
            key.input_hash,
            key.sample,
            int(passed),
            reasoning,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._lock:
            self._pending[key.key] = row
            if category:
                self._pending_categories[key.key] = category
            full = len(self._pending) >= self.FLUSH_EVERY
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._pending:
                return
            rows = list(self._pending.values())
            categories = list(self._pending_categories.items())
            conn = self._connect()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                if categories:
                    conn.executemany("INSERT OR REPLACE INTO categories VALUES (?, ?)", categories)
            self._pending.clear()
            self._pending_categories.clear()

    def count(self) -> int:
        self.flush()
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
