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

psycopg (3) is imported here only; the rest of the ledger never needs it.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ..errors import LedgerCorrupted, LedgerUnwritable
from .damage import DISK_FULL, IO_ERROR, READ_ONLY
from .entry import ZERO_HASH
from .merkle import HashAlgorithm, NodeKey, frontier_keys
from .store import Draft, Durability, Frontier, Row, node_from_row, node_row, seal_batch

#: pg_advisory_xact_lock key for schema creation ("swarmvar ledger" in 63 bits).
_SCHEMA_LOCK = 0x5357_4C45_4447_4552 & ((1 << 63) - 1)
_CHUNK = 50_000
#: Batches from this size on are sent with COPY; smaller ones as one INSERT.
_COPY_FROM = 64
_COLUMNS = "idx, timestamp, kind, data, previous_hash, hash, nodes"
#: SQLSTATEs of a cause outside the ledger's data (as SQLite's SQLITE_FULL, SQLITE_READONLY,
#: SQLITE_IOERR in :mod:`~swarmvar.ledger.sqlite`): disk_full, read_only_sql_transaction
#: (a standby, default_transaction_read_only), io_error: LedgerUnwritable. Damage
#: (data_corrupted XX001, index_corrupted XX002) and any other error stay LedgerCorrupted.
#: The variant store's ``swarmvar.evolution.postgres`` has the same (a test compares them).
OUTSIDE_STATES = {"53100": DISK_FULL, "25006": READ_ONLY, "58030": IO_ERROR}

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

    Raises
    ------
    LedgerUnwritable
        Opening, reading or appending met a disk full, a read-only transaction or an
        I/O error (SQLSTATE 53100, 25006, 58030): named, the URL without its password,
        the append rolled back (nothing was written), the ledger not said to be damaged.
    LedgerCorrupted
        The server cannot be reached, the URL is not one, the database holds no ledger
        (without ``create``) or any other database error.
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
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout))
        except psycopg.Error as exc:
            raise LedgerCorrupted(f"cannot connect to the ledger database: {exc}") from None
        except (ValueError, TypeError) as exc:  # a malformed URL
            raise LedgerCorrupted(f"not a usable PostgreSQL URL: {exc}") from None
        try:
            sync = "on" if durability is Durability.POWER else "off"
            self._conn.execute(f"SET synchronous_commit = {sync}")
            self._setup(created, hash_algorithm, create)
        except BaseException:
            self._conn.close()
            raise

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
        return _PgErrors(what, self.url)

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return self._algorithm

    @property
    def created(self) -> str:
        return self._created

    def size(self) -> int:
        with self._lock, self._errors("read"):
            row = self._conn.execute("SELECT max(idx) FROM ledger_entries").fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def row_count(self, below: int | None = None) -> int:
        """Entry rows stored whose index is below ``below`` (all if None), whatever else
        their indices are (verify compares it with the size it read)."""
        with self._lock, self._errors("read"):
            row = (self._conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
                   if below is None else
                   self._conn.execute("SELECT count(*) FROM ledger_entries WHERE idx < %s",
                                      (below,)).fetchone())
        return int(row[0]) if row else 0

    def append(self, drafts: Sequence[Draft], *, if_size: int | None = None) -> list[Row] | None:
        with self._lock, self._errors("append"):
            conn = self._conn
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
            except BaseException:
                self._cache = None
                raise
            if rows:
                self._cache = (size + len(rows), rows[-1][5], frontier)
            return rows

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        stop = self.size() if stop is None else stop
        lo = start
        while lo < stop:
            with self._lock, self._errors("read"):
                chunk = self._conn.execute(
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
        with self._lock:
            self._conn.close()


def shown(url: str) -> str:
    """``url`` as an error may show it: without its password (``user:password@``, or a
    query parameter whose decoded name holds ``password``: ``sslpassword=``,
    ``p%61ssword=``). The variant store's ``swarmvar.evolution.postgres`` has the same code
    (a test compares them)."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user = f"{parts.username}@" if parts.username else ""
            netloc = user + netloc.rpartition("@")[2]
        query = "&".join(p for p in parts.query.split("&")
                         if "password" not in urllib.parse.unquote(p.partition("=")[0]).lower())
        return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
                + (f"#{parts.fragment}" if parts.fragment else ""))
    except ValueError:
        return "the PostgreSQL database"


def database_error(url: str, exc: psycopg.Error,
                   what: str) -> LedgerCorrupted | LedgerUnwritable:
    """What to raise for PostgreSQL's ``exc`` met ``what`` (``"open"``, ``"read"``,
    ``"append"``) on the ledger database at ``url``: :class:`~swarmvar.errors.LedgerUnwritable`
    for a disk full, a read-only transaction or an I/O error (:data:`OUTSIDE_STATES`; the
    transaction was rolled back), else :class:`~swarmvar.errors.LedgerCorrupted`."""
    cause = OUTSIDE_STATES.get(getattr(exc, "sqlstate", None) or "")
    if cause is not None:
        doing = what if what in ("append", "open") else "read"
        return LedgerUnwritable(shown(url), cause, str(exc).strip(), doing)
    return LedgerCorrupted(f"ledger database error ({what}): {exc}")


class _PgErrors:
    """Raise database errors (other than lock waits being cancelled) as
    :func:`database_error` says: LedgerUnwritable, or LedgerCorrupted."""

    def __init__(self, what: str, url: str) -> None:
        self.what = what
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, psycopg.Error):
            # the cause kept: a caller tells a refused privilege (SQLSTATE 42501) from damage
            raise database_error(self.url, exc, self.what) from exc
