"""The default ledger store: one SQLite file in WAL mode.

Appends run in ``BEGIN IMMEDIATE`` transactions, which SQLite serializes
across threads and processes, so concurrent appenders never fork the chain.
WAL mode makes a commit atomic: a process killed mid-batch leaves the last
committed prefix, and every committed batch survives the kill. Triggers
refuse UPDATE and DELETE on entries (defence in depth; tampering that drops
them is what ``verify_chain`` and signed heads are for).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LedgerCorrupted, LedgerUnavailable, LedgerUnwritable
from ..storerules import (
    DISK_FULL,
    IO_ERROR,
    READ_ONLY,
    cannot_open,
    full_disk,
    is_damage,
    is_lock_wait,
    missing,
    never_opens,
    out_of_descriptors,
    outside,
)
from .damage import PROCESS_MEMO, DamageMemo
from .entry import ZERO_HASH
from .merkle import HashAlgorithm, NodeKey, frontier_keys
from .store import (
    Draft,
    Durability,
    Frontier,
    Row,
    node_from_row,
    node_row,
    seal_batch,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    previous_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    nodes BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_append_only_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
"""

_INSERT = "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)"
#: Rows per multi-row INSERT. One statement per 100 rows costs ~0.8 us less
#: per row than executemany (one step per row); at most 700 parameters stay
#: under the 999 that older SQLite builds allow.
_ROWS_PER_INSERT = 100
_INSERT_MANY = "INSERT INTO entries VALUES " + ", ".join(
    ["(?, ?, ?, ?, ?, ?, ?)"] * _ROWS_PER_INSERT
)


def _insert_chained(rows: int) -> str:
    """INSERT of ``rows`` consecutive, chained rows that share their timestamp and kind.

    Parameters: ?1 the first index, ?2 the timestamp, ?3 the kind, ?4 the
    first row's previous hash, then data, hash and nodes of each row. A row's
    index is ``?1 + k`` and its previous hash is the hash parameter of the
    row before, so a row binds 3 values instead of 7 (~0.4 us less per row).
    """
    values = []
    for k in range(rows):
        previous = 4 if k == 0 else 3 * k + 3
        values.append(f"(?1 + {k}, ?2, ?3, ?{3 * k + 5}, ?{previous}, ?{3 * k + 6}, ?{3 * k + 7})")
    return "INSERT INTO entries VALUES " + ", ".join(values)


_INSERT_CHAINED = _insert_chained(_ROWS_PER_INSERT)
_INDEX, _TIMESTAMP, _KIND = itemgetter(0), itemgetter(1), itemgetter(2)
_PREVIOUS, _HASH = itemgetter(4), itemgetter(5)
_OWN = itemgetter(3, 5, 6)  # what _INSERT_CHAINED binds per row: data, hash, nodes
_COLUMNS = "idx, timestamp, kind, data, previous_hash, hash, nodes"
#: Rows fetched per query when streaming.
_CHUNK = 50_000
_TEXT_COLUMNS = ("timestamp", "kind", "data")
_E = TypeVar("_E", bound=Exception)


class UnreadableEntry(LedgerCorrupted):
    """A stored entry whose text (timestamp, kind or data) is not UTF-8: the file is
    damaged there. ``index`` names the entry, so verification can report it."""

    def __init__(self, index: int, column: str):
        self.index = index
        self.reason = f"its {column} is not UTF-8 text: the bytes stored there were changed"
        super().__init__(
            f"entry {index}: {self.reason}; the file is damaged, run `swarmvar ledger verify`"
        )


class SQLiteStore:
    """Ledger rows in one SQLite file (created if missing).

    Parameters
    ----------
    path : Path
        The database file.
    created : str
        Timestamp recorded as the ledger's creation time if the file is new.
    hash_algorithm : HashAlgorithm or None
        For a new file (default SHA3-256); an existing file keeps its own, and
        asking for a different one raises LedgerCorrupted.
    durability : Durability
    timeout : float
        Seconds to wait for another writer's lock.
    create : bool
        If False, only open an existing ledger file: an empty file, another
        application's database or a file without the ledger's tables raises
        LedgerCorrupted, and nothing is written to it.
    damage_memo : DamageMemo, optional
        Where :meth:`damage` answers are memoised by file state (default: the
        process's, shared by every store opened in it).

    Raises
    ------
    LedgerUnavailable
        Opening, reading or appending met a lock held past ``timeout``, or SQLite's
        "unable to open database file" with the file there (no descriptor left: EMFILE,
        ENFILE): a retry may pass, nothing was written.
    LedgerUnwritable
        Opening, reading, appending or a damage check met its disk full, a read-only
        file or an I/O error (SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR; the ``-shm``
        failing to grow, SQLITE_IOERR_SHMSIZE, or a plain SQLITE_IOERR on a file system
        with no room left is named a disk full): named, the append rolled back (nothing
        was written), the file not said to be damaged.
    LedgerCorrupted
        Any other SQLite error (a damaged file, not a ledger), or the file or its home
        gone or closed to this process (named: "cannot be opened (why ...)").
    """

    def __init__(
        self,
        path: Path,
        created: str,
        hash_algorithm: HashAlgorithm | None = None,
        durability: Durability = Durability.PROCESS,
        timeout: float = 60.0,
        *,
        create: bool = True,
        damage_memo: DamageMemo | None = None,
    ):
        self.path = Path(path)
        #: the file itself (a symbolic link followed, once): what the damage memo is
        #: given, so a head costs it no ``resolve`` (it resolves other paths itself)
        self._resolved = self.path.resolve()
        self._timeout = timeout
        self._damage_memo = PROCESS_MEMO if damage_memo is None else damage_memo
        self._lock = threading.RLock()
        self._cache: tuple[int, bytes, Frontier] | None = None
        self._conn = _connect(self.path, timeout, create)
        try:
            self._setup(created, hash_algorithm, durability, timeout, create)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            # UnicodeDecodeError: a damaged schema text that is not even UTF-8
            self._conn.close()
            err = _storage_error(exc, self.path)
            if isinstance(err, LedgerUnwritable):
                err = _coded(LedgerUnwritable(err.path, err.cause, err.detail, "open"), exc)
            elif isinstance(err, LedgerCorrupted) and not cannot_open(exc):
                err = LedgerCorrupted(f"{self.path} is not a usable ledger database: {exc}")
            raise err from None
        except BaseException:
            self._conn.close()
            raise

    def _setup(
        self,
        created: str,
        algorithm: HashAlgorithm | None,
        durability: Durability,
        timeout: float,
        create: bool,
    ) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and not {"meta", "entries"} <= tables:
            raise LedgerCorrupted(
                f"{self.path} is an SQLite database of another application (tables: "
                f"{', '.join(sorted(tables))}), not a swarmvar ledger; nothing was written to it"
            )
        if not create and not tables:
            raise LedgerCorrupted(
                f"{self.path} exists but holds no ledger (0 bytes or no tables: truncated?); "
                "nothing was written to it. To start a new ledger, move the file away"
            )
        deadline = time.monotonic() + timeout
        while True:  # switching to WAL can report "locked" without calling the busy handler
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if mode.lower() != "wal":
            raise LedgerCorrupted(f"{self.path}: SQLite would not switch to WAL mode ({mode})")
        sync = "FULL" if durability is Durability.POWER else "NORMAL"
        conn.execute(f"PRAGMA synchronous = {sync}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if create:
                for statement in _SCHEMA.split(";\n"):  # each statement is idempotent
                    if statement.strip():
                        conn.execute(statement)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if "hash_algorithm" not in meta:
                if not create:
                    raise LedgerCorrupted(
                        f"{self.path} exists but has no ledger metadata (damaged or "
                        "truncated); nothing was written to it. To start a new ledger, "
                        "move the file away"
                    )
                meta = {
                    "hash_algorithm": (algorithm or HashAlgorithm.SHA3_256).value,
                    "created": created,
                    "format": "1",
                }
                conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if "created" not in meta:
            raise LedgerCorrupted(f"{self.path} is damaged: the ledger metadata lacks its "
                                  "creation time")
        try:
            stored = HashAlgorithm(meta["hash_algorithm"])
        except ValueError:
            raise LedgerCorrupted(
                f"{self.path}: unknown hash algorithm {meta['hash_algorithm']!r} in meta"
            ) from None
        if algorithm is not None and algorithm is not stored:
            raise LedgerCorrupted(
                f"{self.path} is a {stored.value} ledger; it cannot be opened as {algorithm.value}"
            )
        self._algorithm = stored
        self._created = meta["created"]

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return self._algorithm

    @property
    def created(self) -> str:
        return str(self._created)

    def size(self) -> int:
        with self._lock, _damaged(self.path):
            row = self._conn.execute("SELECT max(idx) FROM entries").fetchone()
        if row[0] is not None and (type(row[0]) is not int or row[0] < 0):
            raise LedgerCorrupted(f"{self.path}: the highest entry index is {row[0]!r}; damaged")
        return 0 if row[0] is None else int(row[0]) + 1

    def damage(self, timeout: float | None = None) -> str | None:
        """What SQLite's own check finds wrong with the file, or None if nothing.

        ``PRAGMA quick_check`` (page structure, record formats, NOT NULL) on a
        fresh read-only connection, memoised per on-disk state of the file and
        its WAL (:class:`~swarmvar.ledger.damage.DamageMemo`): a second check
        of an unchanged file costs two ``stat`` calls. A lock wait past
        ``timeout`` seconds (default: the store's) or another error that says
        nothing about damage is raised as ``sqlite3.OperationalError``: a lock wait, or
        "unable to open database file" with the file there (no descriptor left), as
        :class:`~swarmvar.errors.LedgerUnavailable`; a disk full, read-only file or I/O
        error as :class:`~swarmvar.errors.LedgerUnwritable` (:func:`_passing`).
        """
        with _passing(self.path):
            return self._damage_memo.damage(self._resolved,
                                            self._timeout if timeout is None else timeout)

    def check_now(self, timeout: float | None = None) -> str | None:
        """:meth:`damage` past the memo and its cap: ``PRAGMA quick_check`` runs now
        (for a verification someone asked for); its answer is kept in the memo, so
        damage it finds is refused by the next :meth:`damage` at once
        (:meth:`~swarmvar.ledger.damage.DamageMemo.check_now`). Raises as :meth:`damage`
        does."""
        with _passing(self.path):
            return self._damage_memo.check_now(self._resolved,
                                               self._timeout if timeout is None else timeout)

    def row_count(self, below: int | None = None) -> int:
        """Entry rows stored whose index is below ``below`` (all if None), whatever else
        their indices are: verify compares it with the size it read, so rows a concurrent
        writer appends after that read are not counted as damage."""
        with self._lock, _damaged(self.path):
            if below is None:
                return int(self._conn.execute("SELECT count(*) FROM entries").fetchone()[0])
            return int(self._conn.execute("SELECT count(*) FROM entries WHERE idx < ?",
                                          (below,)).fetchone()[0])

    def append(self, drafts: Sequence[Draft], *, if_size: int | None = None) -> list[Row] | None:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")  # a lock wait here: LedgerUnavailable
                head = conn.execute(
                    "SELECT idx, hash FROM entries ORDER BY idx DESC LIMIT 1"
                ).fetchone()
                size, head_hash = (head[0] + 1, head[1]) if head else (0, ZERO_HASH)
                if if_size is not None and size != if_size:
                    conn.execute("ROLLBACK")
                    return None
                cache = self._cache
                if cache is not None and cache[0] == size and cache[1] == head_hash:
                    frontier = cache[2]
                else:  # another writer appended since our last batch
                    frontier = self._nodes(frontier_keys(size))
                rows, frontier = seal_batch(drafts, size, head_hash, frontier, self._algorithm)
                _insert(conn, rows)
                conn.execute("COMMIT")
            except BaseException as exc:
                self._cache = None
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, (sqlite3.DatabaseError, UnicodeDecodeError)):
                    raise _storage_error(exc, self.path, " to append") from None
                raise
            if rows:
                self._cache = (size + len(rows), rows[-1][5], frontier)
            return rows

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        stop = self.size() if stop is None else stop
        return _checked_rows(stream_rows(self._conn, start, stop, self._lock), self.path)

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        with self._lock, _damaged(self.path):
            return self._nodes(keys)

    def _nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        if not keys:
            return []
        wanted = sorted({node_row(k) for k in keys})
        marks = ",".join("?" * len(wanted))
        found = {
            idx: (h, nodes)
            for idx, h, nodes in self._conn.execute(
                f"SELECT idx, hash, nodes FROM entries WHERE idx IN ({marks})", wanted
            )
        }
        out = []
        for key in keys:
            row = found.get(node_row(key))
            if row is None:
                raise LedgerCorrupted(
                    f"entry {node_row(key)} is missing; it holds a Merkle node the proof needs"
                )
            out.append(node_from_row(key, row[0], row[1], self._algorithm))
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _storage_error(exc: BaseException, path: Path,
                   doing: str = "") -> LedgerCorrupted | LedgerUnavailable:
    """What to raise for SQLite's ``exc`` met on the ledger file at ``path`` (``doing``: what
    was being done, " to append"; "" for a read), the SQLite message kept in it.

    :class:`~swarmvar.errors.LedgerUnavailable` when it says nothing about the file and a
    retry may pass: a lock wait past the busy timeout, or "unable to open database file"
    (SQLITE_CANTOPEN: the file, its ``-wal``/``-shm`` or a temporary file) while the file
    is there, which is no descriptor left (EMFILE, ENFILE; the service answers both 503).
    Its subclass :class:`~swarmvar.errors.LedgerUnwritable` for a cause outside the file
    (:func:`~swarmvar.storerules.outside`: a disk full, a read-only file, an I/O error;
    the service answers it 503, a read's or a write's) while the file is there.
    :class:`~swarmvar.errors.LedgerCorrupted` naming why when the file or its home is
    gone or closed to this process (:func:`~swarmvar.storerules.missing`: SQLite's
    "readonly database" of a file moved away too); naming the damage when SQLite says the
    file is damaged (:func:`~swarmvar.storerules.is_damage`) or on a read; else (an
    append's other error) that it cannot append, with SQLite's message.
    """
    if is_lock_wait(exc):
        return _unavailable(exc, f"the ledger {path} is locked by another connection past "
                            f"the busy timeout{doing} ({exc}); nothing was written: retry")
    if cannot_open(exc):
        why = missing(path)
        if why is None:
            return _unavailable(exc, _no_descriptor(path, doing, exc))
        return _gone(path, why, exc, doing)
    cause = None if is_damage(exc) else outside(exc)  # damage first: CORRUPTFS is an IOERR
    if cause is not None:
        why = missing(path)
        if why is not None:
            return _gone(path, why, exc, doing)
        return _unwritable(exc, str(path), cause, "append" if doing else "read")
    if doing and not is_damage(exc):  # another error SQLite gives an append
        what = doing.strip().removeprefix("to ")
        return LedgerCorrupted(f"{path}: cannot {what}: {exc}; nothing was written")
    return LedgerCorrupted(f"{path} is damaged{doing and f' ({doing.strip()})'}: {exc}; "
                           "run `swarmvar ledger verify`")


def _gone(path: Path, why: str, exc: BaseException, doing: str = "") -> LedgerCorrupted:
    """The ledger at ``path`` cannot be opened for good: its file or home gone or closed to
    this process (``why``), SQLite having said ``exc``."""
    return LedgerCorrupted(f"the ledger {path} cannot be opened{doing} ({why}; SQLite: "
                           f"{exc}): its file or its home is gone or closed to this "
                           "process; restore it")


def _no_descriptor(path: Path, doing: str, exc: BaseException) -> str:
    """The message of SQLITE_CANTOPEN on ``path`` while its file is there."""
    why = ("this process has no file descriptor left" if out_of_descriptors() else
           "a file SQLite needs beside it (-wal, -shm, a temporary file) could not be "
           "opened, as when this process has no file descriptor left")
    return (f"the ledger {path} cannot be opened now{doing} ({exc}): {why}; nothing was "
            "written: retry, or raise the open-file limit (ulimit -n)")


def _unavailable(exc: BaseException, message: str) -> LedgerUnavailable:
    """:class:`~swarmvar.errors.LedgerUnavailable` carrying SQLite's codes of ``exc``."""
    return _coded(LedgerUnavailable(message), exc)


def _unwritable(exc: BaseException, path: str, cause: str, doing: str) -> LedgerUnwritable:
    """:class:`~swarmvar.errors.LedgerUnwritable` naming ``cause`` (of
    :func:`~swarmvar.storerules.outside`) met ``doing`` on the ledger at ``path``,
    carrying SQLite's message and codes of ``exc``. SQLITE_IOERR_SHMSIZE (a WAL
    database's ``-shm`` that cannot grow) or a plain SQLITE_IOERR on a file system with
    no room left is a disk full (:func:`~swarmvar.storerules.full_disk`), with the
    bytes free added to SQLite's message."""
    detail = str(exc)
    if cause == IO_ERROR:
        full = full_disk(exc, path)
        if full is not None:
            cause, detail = DISK_FULL, f"{detail}; {full}"
    return _coded(LedgerUnwritable(path, cause, detail, doing), exc)


def _coded(err: _E, exc: BaseException) -> _E:
    """``err`` given SQLite's ``sqlite_errorcode`` and ``sqlite_errorname`` of ``exc``."""
    for name in ("sqlite_errorcode", "sqlite_errorname"):
        if hasattr(exc, name):
            setattr(err, name, getattr(exc, name))
    return err


def at_target(err: LedgerCorrupted | LedgerUnavailable, tmp: Path,
              path: Path) -> LedgerCorrupted | LedgerUnavailable:
    """``err``, met while a new ledger was built in the temporary file ``tmp`` (deleted after
    a failure), as met on the ledger it was making at ``path``: the one rule of every
    ledger built aside and linked into place (``import_jsonl``; a new ledger's creation).

    A disk error (:class:`~swarmvar.errors.LedgerUnwritable`) is one the ledger at ``path``
    could not be created for, with the same cause and SQLite's message. A
    :class:`~swarmvar.errors.LedgerCorrupted` naming ``tmp`` while ``path``'s folder is
    there but may not be written by this process (a read-only file system, or its
    permissions: SQLite could not create ``tmp``, which :func:`_connect` tells as a file
    that never opens) is a read-only one too (:data:`~swarmvar.storerules.READ_ONLY`),
    nothing having been created. Another :class:`~swarmvar.errors.LedgerUnavailable` (a
    lock, no descriptor left) or ``LedgerCorrupted`` naming ``tmp`` says ``path`` where it
    said ``tmp``. SQLite's ``sqlite_errorcode``/``sqlite_errorname`` are kept. An error
    that does not name ``tmp`` (the export's own, say) is returned as it is.
    """
    new: LedgerCorrupted | LedgerUnavailable
    if isinstance(err, LedgerUnwritable):
        new = LedgerUnwritable(str(path), err.cause, err.detail, "create")
    elif str(tmp) not in str(err):
        return err
    elif isinstance(err, LedgerUnavailable):
        new = LedgerUnavailable(str(err).replace(str(tmp), str(path)))
    elif (why := _closed_folder(path.parent)) is not None:
        new = LedgerUnwritable(str(path), READ_ONLY, why, "create")
    else:
        new = LedgerCorrupted(str(err).replace(str(tmp), str(path)))
    return _coded(new, err)


def _closed_folder(folder: Path) -> str | None:
    """Why ``folder``, which is there, may not be written by this process (its file system
    mounted read-only, or its permissions), or None (gone, or writable)."""
    if not folder.is_dir() or os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (not POSIX)
        read_only = False
    if read_only:
        return f"its folder {folder} is on a file system mounted read-only"
    return f"its folder {folder} may not be written by this process"


@contextmanager
def _damaged(path: Path) -> Iterator[None]:
    """Turn SQLite errors into LedgerCorrupted (damage, a file gone) or LedgerUnavailable
    (a lock wait, a file that cannot be opened now for want of a descriptor):
    :func:`_storage_error`."""
    try:
        yield
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        if isinstance(exc, LedgerUnavailable):  # already told (an sqlite3 error too)
            raise
        raise _storage_error(exc, path) from None


@contextmanager
def _passing(path: Path) -> Iterator[None]:
    """Raise a lock wait, SQLITE_CANTOPEN, or a disk full, read-only or I/O error met by a
    damage check of ``path`` as :func:`_storage_error` says (LedgerUnavailable,
    LedgerUnwritable, or LedgerCorrupted naming the file gone); other errors as they are."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if isinstance(exc, LedgerUnavailable) or not (
                is_lock_wait(exc) or cannot_open(exc) or outside(exc)):
            raise
        raise _storage_error(exc, path) from None


def _checked_rows(rows: Iterator[Row], path: Path) -> Iterator[Row]:
    """``rows``, with SQLite errors and mistyped columns raised as LedgerCorrupted."""
    with _damaged(path):
        for row in rows:
            if not (
                type(row[0]) is int
                and type(row[1]) is str
                and type(row[2]) is str
                and type(row[3]) is str
                and type(row[4]) is bytes
                and type(row[5]) is bytes
                and type(row[6]) is bytes
            ):
                raise LedgerCorrupted(
                    f"{path}: entry row {row[0]!r} has columns of the wrong type; damaged"
                )
            yield row


#: Attempts to open a file that another process is creating at the same moment.
_OPEN_ATTEMPTS = 20


def _connect(path: Path, timeout: float, create: bool) -> sqlite3.Connection:
    """A connection; without ``create``, read-write but never creating the file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        head = b""
    if head not in (b"", b"SQLite format 3\x00"):
        # SQLite would take a file shorter than its header for an empty database
        raise LedgerCorrupted(f"{path} is not an SQLite database (another kind of file); "
                              "nothing was written to it")
    target = f"{path.resolve().as_uri()}?mode=rw" if not create else str(path)
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            return sqlite3.connect(
                target,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=not create,
            )
        except sqlite3.OperationalError as exc:
            # "unable to open database file": a racing creator (several processes
            # opening a new data home); the file appears a moment later. Not so with no
            # descriptor left, or the file or its folder gone or closed for good.
            if not cannot_open(exc):
                cause = None if is_damage(exc) else outside(exc)
                if cause is not None:
                    raise _unwritable(exc, str(path), cause, "open") from None
                raise LedgerCorrupted(f"cannot open the ledger {path}: {exc}") from None
            why = never_opens(path, create)  # told even at the limit (stat needs no fd)
            if why is not None:
                raise _gone(path, why, exc) from None
            if out_of_descriptors():
                raise _unavailable(exc, _no_descriptor(path, "", exc)) from None
            if attempt == _OPEN_ATTEMPTS - 1:
                raise _storage_error(exc, path) from None
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _insert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """INSERT ``rows``: whole groups of _ROWS_PER_INSERT per statement, then the rest."""
    step = _ROWS_PER_INSERT
    full = len(rows) - len(rows) % step
    for start in range(0, full, step):
        group = rows[start : start + step]
        if _chained_alike(group):
            first = group[0]
            params = [first[0], first[1], first[2], first[4]]
            params += chain.from_iterable(map(_OWN, group))
            conn.execute(_INSERT_CHAINED, params)
        else:
            conn.execute(_INSERT_MANY, list(chain.from_iterable(group)))
    if full < len(rows):
        conn.executemany(_INSERT, rows[full:])


def _chained_alike(rows: list[Row]) -> bool:
    """True if ``rows`` have consecutive indices, one timestamp and kind, and chain."""
    first = rows[0]
    n = len(rows)
    return (
        list(map(_INDEX, rows)) == list(range(first[0], first[0] + n))
        and list(map(_TIMESTAMP, rows)).count(first[1]) == n
        and list(map(_KIND, rows)).count(first[2]) == n
        and list(map(_PREVIOUS, rows[1:])) == list(map(_HASH, rows[:-1]))
    )


def stream_rows(
    conn: sqlite3.Connection,
    start: int,
    stop: int,
    lock: AbstractContextManager[Any] | None = None,
) -> Iterator[Row]:
    """Rows ``start <= idx < stop`` in index order, fetched _CHUNK at a time (under ``lock``)."""
    lock = lock or nullcontext()
    lo = start
    select = f"SELECT {_COLUMNS} FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?"
    while lo < stop:
        bad = None
        with lock:
            try:
                chunk = conn.execute(select, (lo, stop, _CHUNK)).fetchall()
            except (sqlite3.OperationalError, UnicodeDecodeError) as exc:
                if "decode" not in str(exc):
                    raise
                bad = _first_undecodable(conn, lo, stop)
                if bad is None:
                    raise
                # the rows before it read; verification checks them first, in order
                chunk = conn.execute(select, (lo, bad[0], _CHUNK)).fetchall()
        yield from chunk
        if bad is not None:
            raise UnreadableEntry(*bad)
        if len(chunk) < _CHUNK:
            return
        lo = chunk[-1][0] + 1


def _first_undecodable(conn: sqlite3.Connection, lo: int, stop: int) -> tuple[int, str] | None:
    """(index, column) of the first row in ``lo <= idx < stop`` (within a chunk) whose
    text is not UTF-8, or None."""
    casts = ", ".join(f"CAST({c} AS BLOB)" for c in _TEXT_COLUMNS)
    for idx, *texts in conn.execute(
        f"SELECT idx, {casts} FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?",
        (lo, stop, _CHUNK),
    ):
        for column, text in zip(_TEXT_COLUMNS, texts, strict=True):
            try:
                bytes(text or b"").decode("utf-8")
            except UnicodeDecodeError:
                return int(idx), column
    return None
