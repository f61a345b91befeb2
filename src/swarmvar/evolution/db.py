"""The SQLite database behind the lifecycle stores: one file under the data home.

SQLite's tables are the B-tree index the design document asks for. One
:class:`Database` is one connection guarded by a lock (thread-safe within a
process); separate processes open their own and SQLite's file locks, WAL
journal and ``BEGIN IMMEDIATE`` serialize the writers. Every write that spans
several rows or tables runs inside one :meth:`Database.transaction`, so it is
all-or-nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UnsupportedStore

DB_FILE = "evolution.sqlite"
BUSY_TIMEOUT_MS = 60_000
_WAL_ATTEMPTS = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS variants (
    id TEXT PRIMARY KEY,
    agent_class TEXT NOT NULL,
    description TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS variants_status ON variants(status);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS breakers (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    failures INTEGER NOT NULL,
    reset_attempts INTEGER NOT NULL,
    opened_at REAL
);
CREATE TABLE IF NOT EXISTS assignments (
    agent_id TEXT PRIMARY KEY,
    variant_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state_versions (
    agent_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    pack TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunk_bytes INTEGER NOT NULL,
    digest TEXT NOT NULL,
    key_id TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (agent_id, version)
);
CREATE TABLE IF NOT EXISTS state_chunks (
    agent_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    raw INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    PRIMARY KEY (agent_id, version, idx)
);
CREATE TABLE IF NOT EXISTS state_current (
    agent_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollback_points (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    created REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    variant_id TEXT NOT NULL,
    ts REAL NOT NULL,
    success_rate REAL NOT NULL,
    latency_s REAL NOT NULL,
    resource_usage REAL NOT NULL,
    throughput REAL NOT NULL,
    breach_rate REAL,
    kupiec_p REAL,
    pinball_loss REAL
);
CREATE INDEX IF NOT EXISTS metrics_variant_ts ON metrics(variant_id, ts);
CREATE TABLE IF NOT EXISTS metric_rollups (
    variant_id TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket REAL NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    lo REAL NOT NULL,
    hi REAL NOT NULL,
    PRIMARY KEY (variant_id, granularity, bucket, name)
);
"""


def resolve(location: str | Path, home_file: str = DB_FILE) -> str:
    """The SQLite path for a store location.

    Accepts a data-home directory (the file ``evolution.sqlite`` inside it), a
    file path ending in a suffix (``.sqlite``, ``.db``), ``sqlite:///rel/path``
    or ``sqlite:////abs/path`` (SQLAlchemy's form), or ``:memory:``. Server URLs
    (``postgresql://...``) are refused with a clear message.
    """
    text = str(location)
    if text == ":memory:":
        return text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme != "sqlite":
            raise UnsupportedStore(
                f"store URL scheme {scheme!r} is not supported by the evolution stores; "
                "use a path, sqlite:///path or :memory:"
            )
        # SQLAlchemy's convention: sqlite:///rel/path, sqlite:////abs/path
        text = rest[1:] if rest.startswith("/") else rest
        if text == ":memory:":
            return text
    path = Path(text)
    if path.is_dir() or (not path.suffix and not path.exists()):
        path.mkdir(parents=True, exist_ok=True)
        path = path / home_file
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


class Database:
    """One SQLite connection with the lifecycle schema, safe to share between threads.

    Parameters
    ----------
    location : str or Path
        Data home directory, SQLite file, ``sqlite:///path`` URL or ``:memory:``.
    """

    def __init__(self, location: str | Path) -> None:
        self.path = resolve(location)
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if self.path != ":memory:":
            self._switch_to_wal()
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._depth = 0
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                with self.transaction() as conn:
                    conn.execute(statement)

    def _switch_to_wal(self) -> None:
        # Switching the journal mode needs a moment with no other connection
        # in the file; when several processes open a fresh home at once, one
        # may see SQLITE_BUSY here without the busy handler being consulted.
        for attempt in range(_WAL_ATTEMPTS):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))

    @property
    def home(self) -> Path | None:
        """The directory holding the database file (None for ``:memory:``)."""
        return None if self.path == ":memory:" else Path(self.path).parent

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An all-or-nothing write (``BEGIN IMMEDIATE``); nests by joining the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query (reads see the last committed state)."""
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        """The first row of one query, or None."""
        with self.lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return row

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
