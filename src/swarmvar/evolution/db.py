"""The SQLite database behind the lifecycle stores: one file under the data home.

SQLite's tables are the B-tree index the design document asks for. One
:class:`Database` is one connection guarded by a lock (thread-safe within a
process); separate processes open their own and SQLite's file locks, WAL
journal and ``BEGIN IMMEDIATE`` serialize the writers. Every write that spans
several rows or tables runs inside one :meth:`Database.transaction`, so it is
all-or-nothing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import SwarmVarError

# The SQLite rules both stores share (one copy, in swarmvar.storerules), under the names
# this module has always given them.
from ..storerules import cannot_open as _cannot_open
from ..storerules import full_disk as _full_disk
from ..storerules import is_damage as _is_damage
from ..storerules import is_lock_wait as _is_lock_wait
from ..storerules import missing as _missing
from ..storerules import never_opens as _never_opens
from ..storerules import out_of_descriptors as _out_of_descriptors
from ..storerules import outside as _outside
from .errors import (
    DISK_FULL,
    IO_ERROR,
    CorruptStore,
    UnsupportedStore,
    VariantStoreFailed,
    VariantStoreMissing,
    VariantStoreUnavailable,
    VariantStoreUnwritable,
)

DB_FILE = "evolution.sqlite"
BUSY_TIMEOUT_MS = 60_000
_WAL_ATTEMPTS = 50
#: Attempts to open a file another process is creating at the same moment.
_OPEN_ATTEMPTS = 50
#: Tables the lifecycle schema creates (a database with other tables only is refused).
_TABLES = frozenset({"variants", "agents", "breakers", "assignments", "state_versions",
                     "state_chunks", "state_current", "rollback_points", "metrics",
                     "metric_rollups"})


class VariantStoreLocked(SwarmVarError, sqlite3.OperationalError):
    """The lifecycle (variant) database is locked by another connection past the busy
    timeout: SQLite's lock wait, named by the database file (``path``).

    Still an ``sqlite3.OperationalError`` (with SQLite's error code and name), so a caller
    that retries a lock wait keeps catching it; a :class:`~swarmvar.errors.SwarmVarError`,
    so the service answers it as the variant store's, not the ledger's (HTTP 503 with
    ``Retry-After``: nothing was changed, the store's writes being all-or-nothing).

    Parameters
    ----------
    path : str
        The database file.
    exc : sqlite3.OperationalError or str
        SQLite's lock wait (its code and name are kept; SQLITE_BUSY when only text is
        given, as when unpickled).
    """

    def __init__(self, path: str, exc: sqlite3.OperationalError | str = "") -> None:
        self.detail = str(exc)
        super().__init__(f"the variant store {path} is locked by another connection past "
                         f"the {BUSY_TIMEOUT_MS / 1000:g} s busy timeout ({self.detail}); "
                         "nothing was changed")
        self.path = path
        self.sqlite_errorcode: int = getattr(exc, "sqlite_errorcode", 5)
        self.sqlite_errorname: str = getattr(exc, "sqlite_errorname", "SQLITE_BUSY")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail), self.__dict__)


def _named(exc: BaseException) -> str:
    """What SQLite said, with its error's name (``... (SQLITE_NOMEM)``) when it has one."""
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def _store_error(path: str, exc: sqlite3.DatabaseError, damaged: str) -> Exception:
    """The error to raise for SQLite's ``exc`` on the store at ``path``.

    A lock wait is :class:`VariantStoreLocked`; "unable to open database file" is
    :class:`~swarmvar.evolution.errors.VariantStoreUnavailable` while the file is there
    or this process has no descriptor left (a retry may pass: a missing file is created
    by the next open), else :class:`~swarmvar.evolution.errors.VariantStoreMissing`
    naming why (gone for good, closed to this process); damage (:func:`_is_damage`:
    "database disk image is malformed", "file is not a database", the two I/O errors that
    are damage) is :class:`~swarmvar.evolution.errors.CorruptStore` with the message
    ``damaged``; a disk full, read-only file or other I/O error (:func:`_outside`) is
    :class:`~swarmvar.evolution.errors.VariantStoreUnwritable` naming it (an I/O error
    on a file system with no room left a disk full: :func:`_full_disk`;
    VariantStoreMissing when the file is gone: SQLite's "readonly database" of a file
    moved away); any other error (SQLITE_NOMEM, SQLITE_INTERRUPT, a constraint broken)
    is the neutral :class:`~swarmvar.evolution.errors.VariantStoreFailed` naming it: only
    damage is taken for damage, as the ledger does.
    """
    if isinstance(exc, SwarmVarError):
        return exc
    if isinstance(exc, sqlite3.OperationalError) and _is_lock_wait(exc):
        return VariantStoreLocked(path, exc)
    if _cannot_open(exc):
        if _out_of_descriptors():
            return VariantStoreUnavailable(
                path, f"{exc}; this process has no file descriptor left")
        why = None if path == ":memory:" else _missing(path)
        if why is not None:
            return VariantStoreMissing(path, why, str(exc))
        return VariantStoreUnavailable(path, str(exc))
    if _is_damage(exc):
        return CorruptStore(damaged)
    cause = _outside(exc)
    if cause is not None:
        why = None if path == ":memory:" else _missing(path)
        if why is not None:
            return VariantStoreMissing(path, why, str(exc))
        detail = str(exc)
        full = None if cause != IO_ERROR or path == ":memory:" else _full_disk(exc, path)
        if full is not None:  # the -shm could not grow on a full disk: SQLITE_IOERR_SHMSIZE
            cause, detail = DISK_FULL, f"{detail}; {full}"
        return VariantStoreUnwritable(path, cause, detail)
    return VariantStoreFailed(path, _named(exc))


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


def resolve(location: str | Path, home_file: str = DB_FILE, *, create: bool = True) -> str:
    """The SQLite path for a store location.

    Accepts a data-home directory (the file ``evolution.sqlite`` inside it), a
    file path ending in a suffix (``.sqlite``, ``.db``), ``sqlite:///rel/path``
    or ``sqlite:////abs/path`` (SQLAlchemy's form), or ``:memory:``. Other
    server URLs are refused with a clear message (``postgresql://`` URLs are
    opened by :func:`open_database`, not here). With ``create`` the home folder
    (or the file's folder) is made if missing; without, nothing is made and the file
    must be there.

    Raises
    ------
    UnsupportedStore
        Another URL scheme, a folder that cannot be made, a directory where the file is.
    VariantStoreMissing
        Not ``create``, and the file (or its home) is not there.
    """
    text = str(location)
    if text == ":memory:":
        return text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme != "sqlite":
            raise UnsupportedStore(
                f"store URL scheme {scheme!r} is not supported by the evolution stores; "
                "use a path, sqlite:///path, postgresql://... or :memory:"
            )
        # SQLAlchemy's convention: sqlite:///rel/path, sqlite:////abs/path
        text = rest[1:] if rest.startswith("/") else rest
        if text == ":memory:":
            return text
    path = Path(text)
    if not create:
        if path.is_dir() or (not path.suffix and not path.is_file()):
            path = path / home_file
        if not os.path.lexists(path):
            folder = path.parent
            raise VariantStoreMissing(str(path), "No such file or directory" if folder.is_dir()
                                      else f"its home {folder} is gone")
        if path.is_dir():  # not a descriptor shortage to retry: a folder is no database
            raise UnsupportedStore(f"{path} is a directory, not a database file")
        return str(path)
    try:
        # is_file, not exists: another process may create the home folder between two
        # checks (four first opens at once), and a folder is what it makes
        if path.is_dir() or (not path.suffix and not path.is_file()):
            path.mkdir(parents=True, exist_ok=True)
            path = path / home_file
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnsupportedStore(f"cannot use {text!r} as a data home: {exc}") from None
    if path.is_dir():
        raise UnsupportedStore(f"{path} is a directory, not a database file")
    return str(path)


def _sqlite_or_empty(path: Path) -> bool:
    """True if ``path`` is missing, empty, or starts with SQLite's file header.

    SQLite itself would take a file shorter than its 100-byte header for an
    empty database and overwrite it.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # let SQLite report what is wrong with it
    return head == b"" or head == b"SQLite format 3\x00"


def open_database(location: str | Path, *, create: bool = True) -> Database:
    """The lifecycle database at ``location``: SQLite, or PostgreSQL for a ``postgresql://`` URL.

    ``create=False``: only an SQLite file that is there is opened (nothing made, a home
    deleted is :class:`~swarmvar.evolution.errors.VariantStoreMissing`, not a new empty
    store); a PostgreSQL URL is opened as ever.

    Raises
    ------
    InvalidParameter
        A PostgreSQL URL that is malformed (its text not echoed), whose port is not a
        number from 1 to 65535, or whose ``connect_timeout`` (or ``PGCONNECT_TIMEOUT``)
        is not a number.
    VariantStoreUnavailable, CorruptStore
        What :class:`Database` or
        :class:`~swarmvar.evolution.postgres.PostgresDatabase` raise on opening it (a
        server out of reach is ``VariantStoreUnreachable``; a home deleted, with
        ``create=False``, ``VariantStoreMissing``).
    """
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresDatabase  # psycopg only when asked for

        return PostgresDatabase(location)
    return Database(location, create=create)


class Database:
    """One SQLite connection with the lifecycle schema, safe to share between threads.

    Parameters
    ----------
    location : str or Path
        Data home directory, SQLite file, ``sqlite:///path`` URL or ``:memory:``.
    create : bool
        Make the home folder and the file if missing (default). False: open only a file
        that is there (``mode=rw``), for a process that made its home at its start and must
        not make a new empty store in a home deleted since.

    Raises
    ------
    VariantStoreLocked
        Opening it, or any read or write, met another connection's lock past the busy
        timeout (nothing was changed).
    VariantStoreUnavailable
        SQLite could not open the file, its ``-wal``/``-shm`` or a temporary file, the file
        there or no descriptor left (EMFILE, ENFILE): a retry may pass.
    VariantStoreUnwritable
        Opening it, or any read or write, met its disk full, a read-only file or an I/O
        error (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR but its two damage codes; an
        I/O error on a file system with no room left, as the ``-shm`` failing to grow on
        an open, is named a disk full): the
        transaction was rolled back, nothing was changed; disk full or read-only, the
        file is not damaged; after an I/O error it may be intact (check the disk, then
        ``PRAGMA quick_check``).
    VariantStoreFailed
        Any other SQLite error that is not damage (SQLITE_NOMEM, SQLITE_INTERRUPT, a
        constraint broken): named, rolled back, nothing changed.
    VariantStoreMissing
        SQLite could not open the file for good (gone, closed to this process, its folder
        not writable for its ``-wal``/``-shm``); without ``create``, the file not there.
    CorruptStore
        The file is not a lifecycle database, or is damaged (SQLITE_CORRUPT,
        SQLITE_NOTADB, SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA): move it away.
    """

    def __init__(self, location: str | Path, *, create: bool = True) -> None:
        self.path = resolve(location, create=create)
        self._create = create
        self.lock = threading.RLock()
        self._depth = 0
        self._conn = self._connect()
        try:
            self._check_foreign()
            if self.path != ":memory:":
                self._switch_to_wal()
                self._conn.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            err = _store_error(self.path, exc, f"{self.path} is not a usable lifecycle "
                               f"database ({exc}): it is damaged; move it away, or point "
                               "--home elsewhere")
            if err is exc:
                raise
            raise err from (exc if isinstance(err, VariantStoreLocked) else None)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not _sqlite_or_empty(Path(self.path)):
            raise CorruptStore(f"{self.path} is not an SQLite database (another kind of file); "
                               "nothing was written to it - move it away or choose another "
                               "--home")
        memory = self.path == ":memory:"
        target = self.path if self._create or memory else (
            f"{Path(self.path).resolve().as_uri()}?mode=rw")
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                conn = sqlite3.connect(
                    target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                    check_same_thread=False, uri=not (self._create or memory),
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                return conn
            except sqlite3.OperationalError as exc:
                # "unable to open database file": another process is creating the
                # file or its WAL index at this instant; it is there a moment later.
                # Not so with no descriptor left, or the file or its folder gone or
                # closed for good (asked at the first: no retries then).
                if not _cannot_open(exc):
                    raise _store_error(self.path, exc,
                                       f"cannot open {self.path}: {exc}") from None
                why = None if memory else _never_opens(self.path, self._create)
                if why is not None:
                    raise VariantStoreMissing(self.path, why, str(exc)) from None
                if attempt == _OPEN_ATTEMPTS - 1 or _out_of_descriptors():
                    raise _store_error(self.path, exc, "") from None
                time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    def _check_foreign(self) -> None:
        tables = {str(r[0]) for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and not tables & _TABLES:
            raise CorruptStore(
                f"{self.path} is another application's SQLite database (tables: "
                f"{', '.join(sorted(tables))}); nothing was written to it")

    def _switch_to_wal(self) -> None:
        # Switching the journal mode needs a moment with no other connection
        # in the file; when several processes open a fresh home at once, one
        # may see SQLITE_BUSY here without the busy handler being consulted.
        for attempt in range(_WAL_ATTEMPTS):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                # a file or folder gone or closed for good is asked at the first
                # CANTOPEN: no retries then (nor at the descriptor limit)
                transient = _is_lock_wait(exc) or (
                    _cannot_open(exc) and not _out_of_descriptors()
                    and _never_opens(self.path, self._create) is None)
                if not transient or attempt == _WAL_ATTEMPTS - 1:
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
            with self._damage():
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException as exc:
                self._depth = 0
                self._roll_back()
                if isinstance(exc, sqlite3.DatabaseError):
                    err = _store_error(self.path, exc, f"{self.path}: the lifecycle database "
                                       f"is damaged ({exc}); the write changed nothing: "
                                       "move it away")
                    if err is not exc:
                        raise err from (exc if isinstance(err, VariantStoreLocked) else None)
                raise
            self._depth = 0
            try:
                with self._damage():
                    self._conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    def _roll_back(self) -> None:
        """End a failed transaction (its body raised, or its COMMIT) so that nothing of it
        is written and the next one begins; the first error is the one raised.

        SQLite rolls back by itself after most failed COMMITs (disk full, I/O error); a
        transaction still open is rolled back here. A ROLLBACK that fails too (an I/O
        error) raises nothing over the first error: the connection is closed, which
        discards the transaction (in WAL mode its pages were never in the file), and a
        new one opened (left closed if that fails: the next use raises; ``:memory:`` is
        left as it is, closing it would lose it).
        """
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            if self.path == ":memory:":  # closing it would lose the whole database
                return
            with suppress(sqlite3.Error):
                self._conn.close()
            with suppress(sqlite3.Error, SwarmVarError):
                conn = self._connect()
                conn.execute("PRAGMA synchronous=NORMAL")
                self._conn = conn

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query (reads see the last committed state)."""
        with self.lock, self._damage():
            return self._conn.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        """The first row of one query, or None."""
        with self.lock, self._damage():
            row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return row

    @contextmanager
    def _damage(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            err = _store_error(self.path, exc, f"{self.path}: the lifecycle database is "
                               f"damaged ({exc})")
            if err is exc:
                raise
            raise err from (exc if isinstance(err, VariantStoreLocked) else None)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self.lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
