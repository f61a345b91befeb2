"""The lifecycle database on PostgreSQL, for several processes or replicas.

``open_home("postgresql://user@host/db", state_root=...)`` (or
:func:`~swarmvar.evolution.db.open_database`) gives the same stores over a
:class:`PostgresDatabase`: the same tables (``DOUBLE PRECISION`` for REAL,
``BYTEA`` for BLOB, ``BIGINT`` for INTEGER) and the same SQL, translated once
per statement (``?`` placeholders, SQLite's ``TOTAL``, two-argument
``MIN``/``MAX``, the time buckets). SQLite's ``BEGIN IMMEDIATE`` - one writer
at a time - becomes a transaction-scoped advisory lock taken first in every
write, so the stores' read-then-write steps stay serialized across processes.
State packs stay files under ``state_root`` (a volume every replica mounts);
their index lives in the database. A lost connection is opened again by the next call
(:class:`PostgresDatabase`). A server out of reach is
:class:`~swarmvar.evolution.errors.VariantStoreUnreachable`, whose message names "the
variant store database", never its URL (a service's 503 body shows it): the URL, without
its password, and psycopg's own words go to the log (logger ``swarmvar.evolution``), as
the ledger's :mod:`~swarmvar.ledger.postgres` does.

psycopg (3) is imported here only.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .db import _SCHEMA, Database
from .errors import (
    DISK_FULL,
    IO_ERROR,
    READ_ONLY,
    CorruptStore,
    VariantStoreFailed,
    VariantStoreUnavailable,
    VariantStoreUnreachable,
    VariantStoreUnwritable,
)

#: seconds a connect (the first, or one that replaces a lost connection) may take.
_CONNECT_TIMEOUT = 10
#: pg_advisory_xact_lock key serializing lifecycle writes ("swarmvar evolution").
_WRITE_LOCK = 0x5357_4556_4F4C_5645 & ((1 << 63) - 1)

#: SQLSTATEs of a cause outside the database's data (as SQLite's SQLITE_FULL, SQLITE_READONLY,
#: SQLITE_IOERR in :mod:`~swarmvar.evolution.db`): disk_full, read_only_sql_transaction
#: (a standby, default_transaction_read_only), io_error.
_OUTSIDE_STATES = {"53100": DISK_FULL, "25006": READ_ONLY, "58030": IO_ERROR}
#: SQLSTATEs of damage (as SQLite's SQLITE_CORRUPT, SQLITE_NOTADB): data_corrupted,
#: index_corrupted. No other error is CorruptStore.
_DAMAGE_STATES = frozenset({"XX001", "XX002"})
#: SQLSTATEs of a server out of reach (besides class 08, connection_exception):
#: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: The connection parameters a message never shows (:func:`scrubbed`; the ledger's own).
_HIDDEN = ("host", "hostaddr", "port", "user", "password", "dbname", "options", "service")
log = logging.getLogger("swarmvar.evolution")
_E = TypeVar("_E", bound=Exception)


def shown(url: str) -> str:
    """``url`` as an error may show it: without its password (``user:password@``, or a
    query parameter whose decoded name holds ``password``: ``sslpassword=``, ``p%61ssword=``)."""
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


def scrubbed(text: str, url: str) -> str:
    """psycopg's words ``text`` on one line, without the host, port, user, password,
    database or options of ``url`` (each replaced by ``…``): what a message may show
    (the ledger's :func:`swarmvar.ledger.postgres.scrubbed`, held equal by a test)."""
    try:
        params = conninfo_to_dict(url)
    except (psycopg.Error, ValueError, TypeError):
        params = {}
    parts = {p for key in _HIDDEN for p in str(params.get(key) or "").split(",") if p}
    for part in sorted(parts, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", "…", text)
    return " ".join(text.split())


def database_error(url: str, exc: psycopg.Error, *, landed: bool = False
                   ) -> CorruptStore | VariantStoreUnavailable:
    """What to raise for PostgreSQL's ``exc`` on the lifecycle database at ``url`` (the
    transaction was rolled back, nothing changed - unless ``landed``, below):
    :class:`~swarmvar.evolution.errors.
    CorruptStore` for damage only (:data:`_DAMAGE_STATES`);
    :class:`~swarmvar.evolution.errors.VariantStoreUnwritable` for a disk full, a
    read-only transaction or an I/O error (:data:`_OUTSIDE_STATES`);
    :class:`~swarmvar.evolution.errors.VariantStoreUnreachable` for a server out of reach
    (SQLSTATE class ``08``, :data:`_UNREACHABLE_STATES`, or psycopg's
    ``OperationalError`` with no SQLSTATE: a connection refused, lost or closed), which
    names "the variant store database", not the URL, and keeps psycopg's words scrubbed of
    it (:func:`scrubbed`), its ``landed`` set when ``landed`` (the connection lost while a
    COMMIT was answered: the write may be stored); any other error the neutral
    :class:`~swarmvar.evolution.errors.VariantStoreFailed`. The others show the URL
    without its password (:func:`shown`)."""
    state = getattr(exc, "sqlstate", None) or ""
    said = str(exc).strip()
    if state in _DAMAGE_STATES:
        return CorruptStore(f"the lifecycle database {shown(url)} is damaged ({said}; "
                            f"SQLSTATE {state}): restore it from a backup")
    cause = _OUTSIDE_STATES.get(state)
    if cause is not None:
        return VariantStoreUnwritable(shown(url), cause, said)
    if state.startswith("08") or state in _UNREACHABLE_STATES or (
            not state and isinstance(exc, psycopg.OperationalError)):
        return VariantStoreUnreachable(shown(url), scrubbed(said, url), landed)
    return VariantStoreFailed(shown(url), f"{said}; SQLSTATE {state or 'none'}")


_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\boffset\b"), '"offset"'),
    (re.compile(r"TOTAL\((\w+)\)"), r"COALESCE(SUM(\1), 0)"),
    (re.compile(r"MIN\((\w+), excluded\.(\w+)\)"), r"LEAST(\1, excluded.\2)"),
    (re.compile(r"MAX\((\w+), excluded\.(\w+)\)"), r"GREATEST(\1, excluded.\2)"),
    (re.compile(r"CAST\(CAST\(ts / (\d+) AS BIGINT\) \* \1 AS DOUBLE PRECISION\)"),
     r"(floor(ts / \1) * \1)"),
    (re.compile(r"CAST\(strftime\('%s', ts, 'unixepoch', 'start of month'\) AS "
                r"DOUBLE PRECISION\)"),
     "CAST(extract(epoch FROM date_trunc('month', to_timestamp(ts) AT TIME ZONE 'UTC')) "
     "AS DOUBLE PRECISION)"),
    # ON CONFLICT ... SET n=n+excluded.n: PostgreSQL wants the target's columns named
    (re.compile(r"\b(n|total)=(n|total)\+excluded"), r"\1=metric_rollups.\2+excluded"),
    (re.compile(r"(LEAST|GREATEST)\((lo|hi), excluded"), r"\1(metric_rollups.\2, excluded"),
    (re.compile(r"\?"), "%s"),
)


def translate(sql: str) -> str:
    """SQLite SQL of the lifecycle stores as PostgreSQL SQL."""
    for pattern, repl in _REWRITES:
        sql = pattern.sub(repl, sql)
    return sql


class _Connection:
    """What the stores use of a sqlite3 connection, over a psycopg one."""

    def __init__(self, conn: psycopg.Connection[Any], cache: dict[str, str]) -> None:
        self._conn = conn
        self._cache = cache

    def _sql(self, sql: str) -> str:
        got = self._cache.get(sql)
        if got is None:
            got = self._cache[sql] = translate(sql)
        return got

    def execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.executemany(self._sql(sql), list(rows))
        return cur


class PostgresDatabase(Database):
    """The lifecycle schema in a PostgreSQL database; one connection, thread-safe.

    A connection lost (the server restarted or stopped, the backend terminated) fails the
    call that finds it, :class:`~swarmvar.evolution.errors.VariantStoreUnreachable` (a
    transaction in flight is rolled back by the server, whole), and the next call opens a
    new one first: one connect per call (``connect_timeout`` 10 s), no loop; while the
    server is down each call fails so, and once it is back the calls work again. A connect
    that fails leaves the calls that come after it failing at once, without connecting, for
    as long as it took (at most the connect timeout): calls waiting behind a connect to a
    host that does not answer do not each wait the timeout again. A write whose COMMIT
    answer is lost (the connection lost then) may have landed: its error says so
    (``landed``), and it is not sent again.

    Parameters
    ----------
    url : str
        ``postgresql://user[:password]@host[:port]/database``.

    Raises
    ------
    VariantStoreUnwritable
        Any read or write met a disk full, a read-only transaction or an I/O error
        (:func:`database_error`): rolled back, nothing changed.
    VariantStoreUnreachable
        The server cannot be reached now, or the connection was lost (a 503: retry);
        ``landed`` when it was lost while a transaction's COMMIT was answered (the write
        may be stored: read before writing it again). Named "the variant store database";
        the URL is logged (logger ``swarmvar.evolution``).
    VariantStoreFailed
        Any other database error that is not damage: named, rolled back, nothing changed.
    CorruptStore
        The URL is not one, or the data is damaged (SQLSTATE XX001, XX002).
    """

    def __init__(self, url: str) -> None:  # noqa: D107 - the class says it
        self.path = url
        self.lock = threading.RLock()
        self._depth = 0
        self._sql_cache: dict[str, str] = {}
        #: a call found the server out of reach: the next call opens a new connection
        self._lost = False
        #: :meth:`close` was called: no call opens a connection again
        self._shut = False
        #: until when (monotonic seconds) calls fail at once after a failed connect, and
        #: that connect's error (:meth:`_reopen`)
        self._failed: tuple[float, VariantStoreUnreachable] | None = None
        try:
            self._pg = self._dial()
        except (ValueError, TypeError) as exc:
            raise CorruptStore(f"not a usable PostgreSQL URL: {exc}") from None
        self._wrapped = _Connection(self._pg, self._sql_cache)
        try:
            with self.transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except BaseException:
            self._pg.close()
            raise

    @property
    def home(self) -> Path | None:
        """None: a server database has no data-home folder (give ``state_root``)."""
        return None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """An all-or-nothing write, serialized with every other writer of the database."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._wrapped
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            committing = False
            try:
                self._reopen()
                try:
                    with self._pg.transaction():
                        self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                        yield self._wrapped
                        committing = True  # the block's end sends COMMIT
                except psycopg.Error as exc:
                    # lost while the COMMIT was answered: it may have landed
                    raise self._error(exc, landed=committing) from exc
            finally:
                self._depth = 0

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            if not self._depth:
                self._reopen()
            with self._errors():
                return list(self._wrapped.execute(sql, params).fetchall())

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        with self.lock:
            if not self._depth:
                self._reopen()
            with self._errors():
                row: tuple[Any, ...] | None = self._wrapped.execute(sql, params).fetchone()
                return row

    def _dial(self) -> psycopg.Connection[Any]:
        """A new connection: one try, bounded by the connect timeout. One that cannot be
        made because the server is out of reach is logged with the URL and noted: the
        calls of the next moments (as long as it took) fail at once (:meth:`_reopen`).

        Raises
        ------
        VariantStoreUnreachable
            The server cannot be reached.
        VariantStoreUnavailable, CorruptStore
            What :func:`database_error` says of another error of the connect.
        """
        began = time.monotonic()
        try:
            pg = psycopg.connect(self.path, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            err = _logged(self.path, exc, database_error(self.path, exc))
            if isinstance(err, VariantStoreUnreachable):
                now = time.monotonic()
                self._failed = (now + min(now - began, _CONNECT_TIMEOUT), err)
            # the URL is in the log, psycopg's words in the message: no cause kept
            raise err from None
        self._failed = None
        return pg

    def _reopen(self) -> None:
        """Open a new connection in place of one an earlier call found lost (the server
        restarted, the backend terminated: :class:`~swarmvar.evolution.errors.
        VariantStoreUnreachable` was raised for that call): one try per call, bounded by
        the connect timeout, no loop; none while the last failed connect is recent (for as
        long as it took). Not inside a transaction (its caller checks), not after
        :meth:`close`. Under the lock.

        Raises
        ------
        VariantStoreUnreachable
            The server still cannot be reached, or a connect failed less than its own
            duration ago (not tried: the next call after that tries again).
        VariantStoreUnavailable, CorruptStore
            What :func:`database_error` says of another error of the connect.
        """
        if self._shut or not (self._lost or self._pg.broken):
            return
        if self._failed is not None:
            until, failed = self._failed
            left = until - time.monotonic()
            if left > 0:
                raise VariantStoreUnreachable(failed.path, (
                    f"{failed.detail}; a connect failed just before: not tried again for "
                    f"{left:.1f} s"))
        pg = self._dial()
        self._pg.close()  # (closed already when broken: a no-op then)
        self._pg, self._wrapped = pg, _Connection(pg, self._sql_cache)
        self._lost = False

    def _error(self, exc: psycopg.Error, *, landed: bool = False
               ) -> CorruptStore | VariantStoreUnavailable:
        """What :func:`database_error` says of ``exc`` (logged when the server is out of
        reach); a server out of reach also makes the next call (outside a transaction)
        open a new connection."""
        err = _logged(self.path, exc, database_error(self.path, exc, landed=landed))
        if isinstance(err, VariantStoreUnreachable):
            self._lost = True
        return err

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            # the cause kept: a caller tells a refused privilege (SQLSTATE 42501) from damage
            raise self._error(exc) from exc

    def close(self) -> None:
        with self.lock:
            self._shut = True
            self._pg.close()


def _logged(url: str, exc: BaseException, err: _E) -> _E:
    """``err``, once the URL (without its password) and psycopg's own words are logged
    for a :class:`~swarmvar.evolution.errors.VariantStoreUnreachable`, whose message
    leaves them out (the ledger's ``_logged`` for ``LedgerUnreachable``)."""
    if isinstance(err, VariantStoreUnreachable):
        log.warning("the variant store database %s: %s%s (psycopg: %s; SQLSTATE %s)",
                    shown(url), type(err).__name__, " (may have landed)" if err.landed else "",
                    " ".join(str(exc).split()), getattr(exc, "sqlstate", None) or "none")
    return err
