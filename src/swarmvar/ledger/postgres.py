"""A ledger store in PostgreSQL, for several processes or replicas sharing one ledger.

``Ledger("postgresql://user@host/db")`` opens it. Rows live in
``ledger_entries`` (same columns as the SQLite store; ``bytea`` hashes) and
the hash algorithm and creation time in ``ledger_meta``. An append locks
``ledger_entries`` in EXCLUSIVE mode for its transaction - readers go on,
other appenders wait - then reads the head, chains the batch to it
(:func:`~swarmvar.ledger.store.seal_batch`), inserts and commits; so any
number of processes appending to one database keep one gap-free chain, and a
batch is all or nothing. Triggers refuse UPDATE and DELETE on entries, as in
SQLite. Schema creation is serialized with an advisory lock, so processes
opening a new database at once do not collide.

A server out of reach (no connection made, the connection lost, the server shutting down
or full) is :class:`~swarmvar.errors.LedgerUnreachable`, never damage: the store notices a
broken connection and opens a new one on its next call (one attempt per call, no loop).
Messages say "the ledger database", never its URL nor psycopg's words (a service's 503
body shows them; psycopg's text holds the resolved address, the port, the user and
database taken from the environment, socket and certificate paths): they carry a fixed
category (:func:`category`) and the SQLSTATE. The URL, without its password, and
psycopg's own words go to the log (logger ``swarmvar.ledger``).

psycopg (3) is imported here only; the rest of the ledger never needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from .. import storerules as rules
from ..errors import (
    InvalidParameter,
    LedgerClosed,
    LedgerCorrupted,
    LedgerFailed,
    LedgerUnreachable,
    LedgerUnwritable,
)
from ..storerules import BACKOFF_S as BACKOFF_S

# The PostgreSQL rules both stores share (one copy, in swarmvar.storerules); the public
# ones re-exported here, where the CLI, the service and tests take them.
from ..storerules import (
    DAMAGE_STATES,
    NO_TABLE,
    OUTSIDE_STATES,
    OUTSIDE_WORDS,
    named,
    primary,
    said,
)
from ..storerules import UNREACHABLE_STATES as UNREACHABLE_STATES
from ..storerules import category as category
from ..storerules import connect_seconds as connect_seconds
from ..storerules import scrubbed as scrubbed
from ..storerules import shown as shown
from ..storerules import unreachable as unreachable
from .entry import ZERO_HASH
from .merkle import HashAlgorithm, NodeKey, frontier_keys
from .store import Draft, Durability, Frontier, Row, node_from_row, node_row, seal_batch

#: pg_advisory_xact_lock key for schema creation ("swarmvar ledger" in 63 bits).
_SCHEMA_LOCK = 0x5357_4C45_4447_4552 & ((1 << 63) - 1)
_CHUNK = 50_000
#: Batches from this size on are sent with COPY; smaller ones as one INSERT.
_COPY_FROM = 64
#: Seconds :meth:`PostgresStore.holds` waits for an append still committing (its lock).
HOLDS_LOCK_TIMEOUT_S = 10.0
_COLUMNS = "idx, timestamp, kind, data, previous_hash, hash, nodes"
#: What :class:`~swarmvar.errors.LedgerUnwritable` names instead of the URL.
_WHERE = "database"
log = logging.getLogger("swarmvar.ledger")

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS ledger_entries (
        idx BIGINT PRIMARY KEY,
        timestamp TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        previous_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        nodes BYTEA NOT NULL
    )""",
    """CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'ledger entries are append-only'; END; $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS ledger_entries_no_update ON ledger_entries",
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()""",
    "DROP TRIGGER IF EXISTS ledger_entries_no_truncate ON ledger_entries",
    """CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()""",
]


class PostgresStore:
    """Ledger rows in a PostgreSQL database.

    Parameters
    ----------
    url : str
        ``postgresql://user[:password]@host[:port]/database`` (libpq URL;
        ``?host=/socket/dir`` for a unix socket).
    created : str
        Creation time recorded if the database holds no ledger yet.
    hash_algorithm : HashAlgorithm or None
        For a new ledger; an existing one keeps its own (asking for another
        raises LedgerCorrupted).
    durability : Durability
        ``POWER`` commits with ``synchronous_commit = on``; ``PROCESS`` lets
        the server acknowledge before its WAL flush (``off``): a server crash
        may lose the last commits, a killed client never does.
    create : bool
        If False, a database without the ledger's tables raises
        LedgerCorrupted and nothing is created.
    connect_timeout : float
        Seconds a connection (the first, or a new one after a broken one) may take, unless
        the URL says (``?connect_timeout=``, or libpq's ``PGCONNECT_TIMEOUT``) a number
        above 0 (0, libpq's "wait for ever", is this default).

    A broken connection (the server restarted, the connection cut) is noticed - psycopg's
    ``broken``/``closed`` - and a new one is opened at the start of the next call: one
    attempt per call, no loop. A call whose connection breaks raises; it is not tried
    again (the server rolled its transaction back). After a connect that failed, calls for
    :data:`BACKOFF_S` seconds fail at once without connecting.

    Raises
    ------
    LedgerUnreachable
        No connection could be made (at the start, or on a call after the connection
        broke), or it was lost in the call (SQLSTATE class 08, 57P01-57P03, 53300, or
        none; or any error but damage, a cause outside the data or the tables gone that
        left the connection broken): nothing was written, the ledger not said to be
        damaged; the next call opens a new connection. An append whose COMMIT answer was
        lost says it may have landed (``landed``) and is not sent again.
    LedgerUnwritable
        Opening, reading or appending met a disk full, a read-only transaction or an
        I/O error (SQLSTATE 53100, 25006, 58030): named, the append rolled back (nothing
        was written), the ledger not said to be damaged.
    LedgerCorrupted
        The database holds no ledger (without ``create``), its tables or metadata are
        gone, or its data is damaged (XX001, XX002).
    LedgerFailed
        Any other database error (a lock or statement timeout, a refused privilege, a
        deadlock, ...): nothing written, the ledger said neither damaged nor intact.
    InvalidParameter
        The URL is malformed (its text is not echoed), its port not a number from 1 to
        65535, its ``connect_timeout`` (or ``PGCONNECT_TIMEOUT``) not a number, or a
        parameter's value one libpq refuses (``sslmode=bogus``).
    LedgerClosed
        A call after :meth:`close`.

    Every message names "the ledger database", never the URL nor psycopg's words (a
    category, psycopg's class name, the SQLSTATE): the log has them.
    """

    def __init__(
        self,
        url: str,
        created: str,
        hash_algorithm: HashAlgorithm | None = None,
        durability: Durability = Durability.PROCESS,
        *,
        create: bool = True,
        connect_timeout: float = 10.0,
    ):
        self.url = url
        self._lock = threading.RLock()
        self._cache: tuple[int, bytes, Frontier] | None = None
        self._sync = "on" if durability is Durability.POWER else "off"
        self._shut = False
        #: When the last connect failed and its error: a call within :data:`BACKOFF_S`
        #: of it fails at once, without connecting.
        self._failed: tuple[float, LedgerUnreachable] | None = None
        self._params = url_params(url)
        #: the URL's or PGCONNECT_TIMEOUT's when it has one above 0, else the store's
        self._timeout = connect_seconds(self._params, max(1, int(connect_timeout)))
        self._conn = self._connect("open")
        try:
            self._setup(created, hash_algorithm, create)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, doing: str) -> psycopg.Connection[Any]:
        """A new connection, its ``synchronous_commit`` set. ``connect_timeout`` is the
        URL's own (or libpq's ``PGCONNECT_TIMEOUT``) when it has one above 0, else the
        store's (:func:`connect_seconds`).

        Raises
        ------
        LedgerUnreachable
            It cannot be made, logged with the URL and psycopg's words; a call within
            :data:`BACKOFF_S` of a failed connect raises it again at once, not connecting.
        InvalidParameter
            The URL is malformed (a bad percent-escape, an unknown parameter), or libpq
            refused a parameter's value before any traffic (``sslmode=bogus``: the URL's or
            a ``PG…`` environment variable's, :func:`~swarmvar.storerules.bad_value`):
            never taken for a server out of reach, no back-off; its text is not echoed.
        """
        failed = self._failed
        if failed is not None and time.monotonic() - failed[0] < BACKOFF_S:
            err = failed[1]
            raise LedgerUnreachable(doing, f"{err.detail}; not tried again within "
                                    f"{BACKOFF_S:g} s of the last failed connect",
                                    where=err.where)
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self._timeout)
        except (psycopg.ProgrammingError, ValueError, TypeError) as exc:
            raise _url_error(self.url, exc) from None
        except psycopg.Error as exc:
            if rules.bad_value(exc):  # libpq refused a value before any traffic
                raise _url_error(self.url, exc) from None
            raise self._unreached(exc, doing) from None
        try:
            conn.execute(f"SET synchronous_commit = {self._sync}")
        except psycopg.Error as exc:
            conn.close()
            raise self._unreached(exc, doing) from None
        self._failed = None
        return conn

    def _unreached(self, exc: psycopg.Error, doing: str) -> Exception:
        """The error of a connect that failed with ``exc`` (logged), remembered for the
        back-off when it is :class:`~swarmvar.errors.LedgerUnreachable`."""
        err = _logged(self.url, exc, database_error(self.url, exc, doing, lost=True))
        if isinstance(err, LedgerUnreachable):
            self._failed = (time.monotonic(), err)
        return err

    def _live(self, doing: str) -> psycopg.Connection[Any]:
        """The connection, a new one if the last broke (one attempt: LedgerUnreachable if
        it cannot be made; the broken one is kept, so the next call tries again).

        Raises
        ------
        LedgerClosed
            The store was closed by :meth:`close`: it is never opened again.
        """
        if self._shut:
            raise LedgerClosed("the ledger store is closed (its close() was called); open "
                               "a new Ledger on the database")
        conn = self._conn
        if conn.broken or conn.closed:
            # another writer may have appended meanwhile: append checks the memo against
            # the head it reads (size and hash) anyway; dropped so a new connection starts
            # from what the database holds, never from this process's memory
            self._cache = None
            conn.close()
            self._conn = conn = self._connect(doing)
        return conn

    def _setup(self, created: str, algorithm: HashAlgorithm | None, create: bool) -> None:
        with self._errors("open"), self._conn.transaction():
            exists = self._conn.execute(
                "SELECT to_regclass('ledger_meta') IS NOT NULL "
                "AND to_regclass('ledger_entries') IS NOT NULL"
            ).fetchone()
            if not (exists and exists[0]):
                if not create:
                    raise LedgerCorrupted("the database holds no swarmvar ledger tables")
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    self._conn.execute(statement)
            meta = dict(self._conn.execute("SELECT key, value FROM ledger_meta").fetchall())
            if "hash_algorithm" not in meta:
                if not create:
                    raise LedgerCorrupted("the ledger database has no metadata (damaged)")
                meta = {
                    "hash_algorithm": (algorithm or HashAlgorithm.SHA3_256).value,
                    "created": created,
                    "format": "1",
                }
                with self._conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ledger_meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                        sorted(meta.items()),
                    )
                meta = dict(self._conn.execute("SELECT key, value FROM ledger_meta").fetchall())
        try:
            stored = HashAlgorithm(meta["hash_algorithm"])
        except (KeyError, ValueError):
            raise LedgerCorrupted(
                f"unknown hash algorithm {meta.get('hash_algorithm')!r} in ledger_meta"
            ) from None
        if algorithm is not None and algorithm is not stored:
            raise LedgerCorrupted(
                f"the database holds a {stored.value} ledger; it cannot be opened as "
                f"{algorithm.value}"
            )
        self._algorithm = stored
        self._created = str(meta.get("created", ""))

    def _errors(self, what: str) -> Any:
        return _PgErrors(what, self.url, self)

    def lost(self) -> bool:
        """True if the connection is broken or closed (the next call opens a new one)."""
        return bool(self._conn.broken or self._conn.closed)

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return self._algorithm

    @property
    def created(self) -> str:
        return self._created

    def size(self) -> int:
        with self._lock, self._errors("read"):
            row = self._live("read").execute("SELECT max(idx) FROM ledger_entries").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def row_count(self, below: int | None = None) -> int:
        """Entry rows stored whose index is below ``below`` (all if None), whatever else
        their indices are (verify compares it with the size it read)."""
        with self._lock, self._errors("read"):
            conn = self._live("read")
            row = (conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
                   if below is None else
                   conn.execute("SELECT count(*) FROM ledger_entries WHERE idx < %s",
                                (below,)).fetchone())
        return int(row[0]) if row else 0

    def append(self, drafts: Sequence[Draft], *, if_size: int | None = None) -> list[Row] | None:
        """Chain ``drafts`` to the head and store them, all or nothing (None, nothing
        written, if ``if_size`` is given and the ledger holds another number of entries).

        Raises
        ------
        LedgerUnreachable
            The connection could not be made or broke: nothing was written - unless it
            broke while the COMMIT was answered (``landed``): the append may be stored;
            it is not sent again (a later ``if_size`` append sees the head it made).
        """
        with self._lock, self._errors("append"):
            conn = self._live("append")
            committing = False
            try:
                with conn.transaction():
                    conn.execute("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
                    head = conn.execute(
                        "SELECT idx, hash FROM ledger_entries ORDER BY idx DESC LIMIT 1"
                    ).fetchone()
                    size, head_hash = (int(head[0]) + 1, bytes(head[1])) if head else (0, ZERO_HASH)
                    if if_size is not None and size != if_size:
                        return None
                    cache = self._cache
                    if cache is not None and cache[0] == size and cache[1] == head_hash:
                        frontier = cache[2]
                    else:  # another writer appended since our last batch
                        frontier = self._nodes(frontier_keys(size))
                    rows, frontier = seal_batch(drafts, size, head_hash, frontier, self._algorithm)
                    if len(rows) < _COPY_FROM:  # one statement, one round trip
                        marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
                        params = [value for row in rows for value in row]
                        conn.execute(f"INSERT INTO ledger_entries VALUES {marks}", params)
                    else:
                        with conn.cursor() as cur, cur.copy(
                            f"COPY ledger_entries ({_COLUMNS}) FROM STDIN"
                        ) as copy:
                            for row in rows:
                                copy.write_row(row)
                    committing = True  # the block's end sends COMMIT
            except BaseException as exc:
                self._cache = None
                if committing and isinstance(exc, psycopg.Error) and unreachable(
                        exc, lost=self.lost()):  # its answer lost: it may have landed
                    raise _logged(self.url, exc, LedgerUnreachable(
                        "append", said(exc), where=shown(self.url), landed=True)
                    ) from exc
                raise
            if rows:
                self._cache = (size + len(rows), rows[-1][5], frontier)
            return rows

    def holds(self, index: int, kind: str, text: str) -> bool:
        """Whether entry ``index`` is of ``kind`` with canonical data ``text``, read after
        ``LOCK TABLE ledger_entries IN SHARE MODE`` in one transaction: an append still
        committing holds the table's EXCLUSIVE lock until its COMMIT ends (on the server,
        whatever became of its client's connection), so it is waited for, and "no" is a
        fact (:meth:`~swarmvar.ledger.Ledger.holds`). The wait is at most
        :data:`HOLDS_LOCK_TIMEOUT_S` (``SET LOCAL lock_timeout``). The size is read in the
        same transaction: a row missing below it is damage, as for the generic look.

        Raises
        ------
        LedgerCorrupted
            No row at ``index`` though the ledger holds entries above it.
        LedgerFailed
            The lock was not granted in time (SQLSTATE 55P03) or another database error:
            whether the entry is there is not known.
        LedgerUnreachable
            The connection could not be made or broke (nothing known either).
        """
        wait_ms = max(1, int(HOLDS_LOCK_TIMEOUT_S * 1000))
        with self._lock, self._errors("read"):
            conn = self._live("read")
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                conn.execute("LOCK TABLE ledger_entries IN SHARE MODE")
                row = conn.execute("SELECT kind, data FROM ledger_entries WHERE idx = %s",
                                   (index,)).fetchone()
                top = None if row is not None else conn.execute(
                    "SELECT max(idx) FROM ledger_entries").fetchone()
        if row is None:
            if top is not None and top[0] is not None and index <= int(top[0]):
                raise LedgerCorrupted(f"entry {index} is missing from the store below its "
                                      f"size {int(top[0]) + 1}; run `swarmvar ledger verify`")
            return False
        return (str(row[0]), str(row[1])) == (kind, text)

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        stop = self.size() if stop is None else stop
        lo = start
        while lo < stop:
            with self._lock, self._errors("read"):
                chunk = self._live("read").execute(
                    f"SELECT {_COLUMNS} FROM ledger_entries WHERE idx >= %s AND idx < %s "
                    "ORDER BY idx LIMIT %s",
                    (lo, stop, _CHUNK),
                ).fetchall()
            for idx, ts, kind, data, prev, digest, nodes in chunk:
                yield (int(idx), ts, kind, data, bytes(prev), bytes(digest), bytes(nodes))
            if len(chunk) < _CHUNK:
                return
            lo = int(chunk[-1][0]) + 1

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        with self._lock, self._errors("read"):
            self._live("read")
            return self._nodes(keys)

    def _nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        if not keys:
            return []
        wanted = sorted({node_row(k) for k in keys})
        found = {
            int(idx): (bytes(h), bytes(nodes))
            for idx, h, nodes in self._conn.execute(
                "SELECT idx, hash, nodes FROM ledger_entries WHERE idx = ANY(%s)", (wanted,)
            ).fetchall()
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
        """Close the connection for good: a later call raises
        :class:`~swarmvar.errors.LedgerClosed`, never connecting again."""
        with self._lock:
            self._shut = True
            self._conn.close()


def url_params(url: str) -> dict[str, Any]:
    """:func:`swarmvar.storerules.url_params`, a malformed URL said by :func:`_url_error`.

    Raises
    ------
    InvalidParameter
        ``url`` is malformed, or a port in it is not a number from 1 to 65535.
    """
    return rules.url_params(url, _url_error)


def _url_error(url: str, exc: BaseException) -> InvalidParameter:
    """:func:`swarmvar.storerules.url_error` as this store says it ("the ledger database",
    logged on ``log``)."""
    return rules.url_error(url, exc, "the ledger database", log)


def database_error(url: str, exc: psycopg.Error, what: str, *, lost: bool = False
                   ) -> LedgerCorrupted | LedgerUnwritable | LedgerUnreachable | LedgerFailed:
    """What to raise for PostgreSQL's ``exc`` met ``what`` (``"open"``, ``"read"``,
    ``"append"``) on the ledger database at ``url`` (the transaction was rolled back):
    :class:`~swarmvar.errors.LedgerUnwritable` for a disk full, a read-only transaction or
    an I/O error (:data:`OUTSIDE_STATES`); :class:`~swarmvar.errors.LedgerUnreachable`
    for a server out of reach (:func:`unreachable`; any error but those when ``lost``:
    a connection that could not be made, or broke);
    :class:`~swarmvar.errors.LedgerCorrupted` for damage (XX001, XX002) or the ledger's
    tables gone (42P01); else :class:`~swarmvar.errors.LedgerFailed` (a lock or statement
    timeout, a refused privilege, a deadlock, ...: the ledger not said damaged nor intact).
    Each names "the ledger database", never the URL nor psycopg's words (:func:`_logged`
    logs both): a category or psycopg's class name, and the SQLSTATE; only damage keeps
    what the server said of the data, without the URL's parts (:func:`scrubbed`)."""
    doing = what if what in ("append", "open") else "read"
    state = getattr(exc, "sqlstate", None) or ""
    cause = OUTSIDE_STATES.get(state)
    if cause is not None:
        return LedgerUnwritable(_WHERE, cause, f"{OUTSIDE_WORDS[state]}, SQLSTATE {state}",
                                doing)
    if unreachable(exc, lost=lost):
        return LedgerUnreachable(doing, said(exc), where=shown(url))
    if state in DAMAGE_STATES:
        return LedgerCorrupted(f"the ledger database is damaged ({what}: "
                               f"{scrubbed(primary(exc), url)}; SQLSTATE {state}): restore it "
                               "from a backup")
    if state == NO_TABLE:
        return LedgerCorrupted(f"the ledger database has lost its ledger tables ({what}: "
                               f"{named(exc)}): restore it from a backup")
    return LedgerFailed(doing, named(exc), where=shown(url))


def _logged(url: str, exc: BaseException, err: Exception) -> Exception:
    """``err``, once the URL (without its password) and psycopg's own words, which its
    message leaves out, are logged (WARNING; ERROR for damage)."""
    level = logging.ERROR if isinstance(err, LedgerCorrupted) else logging.WARNING
    log.log(level, "the ledger database %s: %s (psycopg: %s; SQLSTATE %s)", shown(url),
            type(err).__name__, " ".join(str(exc).split()),
            getattr(exc, "sqlstate", None) or "none")
    return err


class _PgErrors:
    """Raise database errors as :func:`database_error` says: LedgerUnwritable,
    LedgerUnreachable (also any error that left the connection broken), LedgerCorrupted
    or LedgerFailed, each logged with the URL and psycopg's words."""

    def __init__(self, what: str, url: str, store: PostgresStore | None = None) -> None:
        self.what = what
        self.url = url
        self.store = store

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, psycopg.Error):
            lost = self.store is not None and self.store.lost()
            # the cause kept: a caller tells a refused privilege (SQLSTATE 42501) from damage
            raise _logged(self.url, exc, database_error(self.url, exc, self.what, lost=lost)
                          ) from exc
