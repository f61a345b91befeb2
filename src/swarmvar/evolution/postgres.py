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
:class:`~swarmvar.evolution.errors.VariantStoreUnreachable`. Every message of a
PostgreSQL error names "the variant store database", never its URL nor psycopg's words (a
service's 503 body shows them; psycopg's text holds the resolved address, the port, the
user and database taken from the environment, socket and certificate paths): it carries a
fixed category (:func:`category`) or psycopg's class name, and the SQLSTATE. The URL,
without its password, and psycopg's own words go to the log (logger
``swarmvar.evolution``). These are the ledger's rules: the functions and constants are
:mod:`swarmvar.storerules`' (one copy, below both engines: evolution does not import the
ledger); the names and the error classes are this store's own.

psycopg (3) is imported here only.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from .. import storerules as rules
from ..errors import InvalidParameter
from ..storerules import BACKOFF_S as BACKOFF_S

# The PostgreSQL rules both stores share (one copy, in swarmvar.storerules), under the
# names this module has always given them; the public ones re-exported.
from ..storerules import DAMAGE_STATES, NO_TABLE, OUTSIDE_WORDS, named, primary, said
from ..storerules import OUTSIDE_STATES as _OUTSIDE_STATES
from ..storerules import category as category
from ..storerules import connect_seconds as connect_seconds
from ..storerules import scrubbed as scrubbed
from ..storerules import shown as shown
from ..storerules import unreachable as unreachable
from .db import _SCHEMA, Database
from .errors import (
    CorruptStore,
    VariantStoreClosed,
    VariantStoreFailed,
    VariantStoreUnavailable,
    VariantStoreUnreachable,
    VariantStoreUnwritable,
)

#: seconds a connect (the first, or one that replaces a lost connection) may take.
_CONNECT_TIMEOUT = 10
#: pg_advisory_xact_lock key serializing lifecycle writes ("swarmvar evolution").
_WRITE_LOCK = 0x5357_4556_4F4C_5645 & ((1 << 63) - 1)

#: What :class:`~swarmvar.evolution.errors.VariantStoreUnwritable`,
#: :class:`~swarmvar.evolution.errors.VariantStoreFailed` and the
#: :class:`~swarmvar.evolution.errors.VariantStoreUnreachable` message name instead of the
#: URL ("the variant store database").
_WHERE = "database"
log = logging.getLogger("swarmvar.evolution")
_E = TypeVar("_E", bound=Exception)


def url_params(url: str) -> dict[str, Any]:
    """:func:`swarmvar.storerules.url_params`, a malformed URL said by :func:`_url_error`.

    Raises
    ------
    InvalidParameter
        ``url`` is malformed, or a port in it is not a number from 1 to 65535.
    """
    return rules.url_params(url, _url_error)


def _url_error(url: str, exc: BaseException) -> InvalidParameter:
    """:func:`swarmvar.storerules.url_error` as this store says it ("the variant store database",
    logged on ``log``)."""
    return rules.url_error(url, exc, "the variant store database", log)


def database_error(url: str, exc: psycopg.Error, *, landed: bool = False, lost: bool = False
                   ) -> CorruptStore | VariantStoreUnavailable:
    """What to raise for PostgreSQL's ``exc`` on the lifecycle database at ``url`` (the
    transaction was rolled back, nothing changed - unless ``landed``, below), as the
    ledger's ``database_error``: :class:`~swarmvar.evolution.errors.CorruptStore` for
    damage (:data:`DAMAGE_STATES`) or the store's tables gone (42P01, on a connection
    not ``lost``: as the ledger's, a broken one is out of reach first);
    :class:`~swarmvar.evolution.errors.VariantStoreUnwritable` for a disk full, a
    read-only transaction or an I/O error (:data:`_OUTSIDE_STATES`);
    :class:`~swarmvar.evolution.errors.VariantStoreUnreachable` for a server out of reach
    (:func:`unreachable`: SQLSTATE class ``08``, 57P01-57P03, 53300, psycopg's
    ``OperationalError`` with no SQLSTATE - a connection refused, lost or closed -, or,
    when ``lost``, any error but those on a connection now broken or never made: an idle
    session ended by the server, 57P05), its ``landed`` set when ``landed`` (the connection
    lost while a COMMIT was answered: the write may be stored); any other error the neutral
    :class:`~swarmvar.evolution.errors.VariantStoreFailed`. Each names "the variant store
    database", never the URL nor psycopg's words (:func:`_logged` logs both): a category
    (:func:`category`) or psycopg's class name, and the SQLSTATE; only damage keeps what
    the server said of the data, without the URL's parts (:func:`scrubbed`)."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in DAMAGE_STATES:
        return CorruptStore(f"the variant store database is damaged "
                            f"({scrubbed(primary(exc), url)}; SQLSTATE {state}): restore it "
                            "from a backup")
    cause = _OUTSIDE_STATES.get(state)
    if cause is not None:
        return VariantStoreUnwritable(_WHERE, cause, f"{OUTSIDE_WORDS[state]}, SQLSTATE "
                                                     f"{state}")
    if unreachable(exc, lost=lost):  # before the tables gone, in the ledger's order
        return VariantStoreUnreachable(shown(url), said(exc), landed)
    if state == NO_TABLE:
        return CorruptStore(f"the variant store database has lost its tables "
                            f"({named(exc)}): restore it from a backup")
    return VariantStoreFailed(_WHERE, named(exc))


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
    new one first: one connect per call (``connect_timeout`` 10 s unless the URL says,
    ``?connect_timeout=``, or libpq's ``PGCONNECT_TIMEOUT``), no loop; while the server is
    down each call fails so, and once it is back the calls work again. After a connect
    that failed, calls for :data:`BACKOFF_S` seconds (1.5, the ledger's) fail at once,
    without connecting: calls waiting behind a connect to a host that does not answer do
    not each wait the timeout again. A write whose COMMIT
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
        may be stored: read before writing it again).
    VariantStoreFailed
        Any other database error that is not damage (a lock or statement timeout, a
        refused privilege, ...): psycopg's class named, rolled back, nothing changed.
    CorruptStore
        The data is damaged (SQLSTATE XX001, XX002) or the store's tables are gone
        (42P01).
    InvalidParameter
        The URL is malformed, its port is not a number, its ``connect_timeout`` (or
        ``PGCONNECT_TIMEOUT``) not a number, or a parameter's value one libpq refuses
        (``sslmode=bogus``); its text is not echoed.
    VariantStoreClosed
        A call after :meth:`close` (outside a transaction already open).

    Every message names "the variant store database", never the URL nor psycopg's words
    (a category or psycopg's class name, and the SQLSTATE): the log has them (logger
    ``swarmvar.evolution``).
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
        #: when (monotonic seconds) the last connect failed, and its error: calls within
        #: :data:`BACKOFF_S` of it fail at once (:meth:`_reopen`)
        self._failed: tuple[float, VariantStoreUnreachable] | None = None
        self._params = url_params(url)
        #: the URL's or PGCONNECT_TIMEOUT's when it has one above 0, else 10 s
        self._timeout = connect_seconds(self._params, _CONNECT_TIMEOUT)
        self._pg = self._dial()
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
        """A new connection: one try, bounded by the connect timeout (the URL's own, or
        libpq's ``PGCONNECT_TIMEOUT``, when it has one above 0, else 10 s:
        :func:`connect_seconds`). One that cannot be
        made because the server is out of reach is logged with the URL and noted: calls
        within :data:`BACKOFF_S` of it fail at once (:meth:`_reopen`).

        Raises
        ------
        VariantStoreUnreachable
            The server cannot be reached.
        VariantStoreUnavailable, CorruptStore
            What :func:`database_error` says of another error of the connect.
        InvalidParameter
            The URL is malformed, or libpq refused a parameter's value before any traffic
            (``sslmode=bogus``: :func:`~swarmvar.storerules.bad_value`; no back-off); its
            text is not echoed.
        """
        try:
            pg = psycopg.connect(self.path, autocommit=True, connect_timeout=self._timeout)
        except (psycopg.ProgrammingError, ValueError, TypeError) as exc:
            raise _url_error(self.path, exc) from None
        except psycopg.Error as exc:
            if rules.bad_value(exc):  # libpq refused a value before any traffic
                raise _url_error(self.path, exc) from None
            err = _logged(self.path, exc, database_error(self.path, exc, lost=True))
            if isinstance(err, VariantStoreUnreachable):
                self._failed = (time.monotonic(), err)
            # the URL and psycopg's words are in the log, not the message: no cause kept
            raise err from None
        self._failed = None
        return pg

    def _reopen(self) -> None:
        """Open a new connection in place of one an earlier call found lost (the server
        restarted, the backend terminated: :class:`~swarmvar.evolution.errors.
        VariantStoreUnreachable` was raised for that call): one try per call, bounded by
        the connect timeout, no loop; none within :data:`BACKOFF_S` of the last failed
        connect. Not inside a transaction (its caller checks). Under the lock.

        Raises
        ------
        VariantStoreClosed
            :meth:`close` was called: no connection is opened again (a caller's mistake,
            never said as a server out of reach).
        VariantStoreUnreachable
            The server still cannot be reached, or a connect failed less than
            :data:`BACKOFF_S` ago (not tried: a call after that tries again).
        VariantStoreUnavailable, CorruptStore
            What :func:`database_error` says of another error of the connect.
        """
        if self._shut:
            raise VariantStoreClosed("the variant store database is closed (its close() was "
                                     "called); open the store again")
        if not (self._lost or self._pg.broken):
            return
        failed = self._failed
        if failed is not None and time.monotonic() - failed[0] < BACKOFF_S:
            err = failed[1]
            raise VariantStoreUnreachable(err.path, f"{err.detail}; not tried again within "
                                          f"{BACKOFF_S:g} s of the last failed connect")
        pg = self._dial()
        self._pg.close()  # (closed already when broken: a no-op then)
        self._pg, self._wrapped = pg, _Connection(pg, self._sql_cache)
        self._lost = False

    def _error(self, exc: psycopg.Error, *, landed: bool = False
               ) -> CorruptStore | VariantStoreUnavailable:
        """What :func:`database_error` says of ``exc`` (logged), any error that left the
        connection broken or closed a server out of reach (``lost``, as the ledger's); a
        server out of reach also makes the next call (outside a transaction) open a new
        connection."""
        lost = bool(self._pg.broken or self._pg.closed)  # a FATAL of any SQLSTATE too
        err = _logged(self.path, exc, database_error(self.path, exc, landed=landed, lost=lost))
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
        """Close the connection for good: a later call raises
        :class:`~swarmvar.evolution.errors.VariantStoreClosed`, never connecting again."""
        with self.lock:
            self._shut = True
            self._pg.close()


def _logged(url: str, exc: BaseException, err: _E) -> _E:
    """``err``, once the URL (without its password) and psycopg's own words, which its
    message leaves out, are logged (WARNING; ERROR for damage), as the ledger's
    ``_logged``."""
    level = logging.ERROR if isinstance(err, CorruptStore) else logging.WARNING
    landed = isinstance(err, VariantStoreUnreachable) and err.landed
    log.log(level, "the variant store database %s: %s%s (psycopg: %s; SQLSTATE %s)",
            shown(url), type(err).__name__, " (may have landed)" if landed else "",
            " ".join(str(exc).split()), getattr(exc, "sqlstate", None) or "none")
    return err
