"""The storage rules both engines' stores share: the ledger's
(:mod:`swarmvar.ledger.sqlite`, :mod:`swarmvar.ledger.postgres`) and the variant store's
(:mod:`swarmvar.evolution.db`, :mod:`swarmvar.evolution.postgres`).

One copy of what an SQLite or a PostgreSQL error means for a store (engines do not import
each other, so the rules live below both, in layer 1):

* SQLite: a lock wait (:func:`is_lock_wait`), a file SQLite cannot open
  (:func:`cannot_open`, :func:`missing`, :func:`never_opens`, :func:`out_of_descriptors`),
  damage (:func:`is_damage`), a cause outside the file (:func:`outside`: disk full,
  read-only, I/O error) and the full-disk reading of an I/O error (:func:`full_disk`), with
  the result codes they read.
* PostgreSQL: a URL's parameters (:func:`url_params`) and connect timeout
  (:func:`connect_seconds`), the URL without its password (:func:`shown`), psycopg's words
  without the URL's parts (:func:`scrubbed`), what a message says of an error
  (:func:`category`, :func:`primary`, :func:`said`, :func:`named`: a fixed category or
  psycopg's class name, and the SQLSTATE, never psycopg's text), whether an error is a
  server out of reach (:func:`unreachable`), the SQLSTATEs of each cause and the back-off
  after a failed connect (:data:`BACKOFF_S`).

What differs between the stores (their names, "the ledger database" / "the variant store
database", their error classes, their loggers) stays in each store: it is passed in
(``url_params``' ``url_error``) or is the store's own code around these rules. Imports the
standard library, :mod:`swarmvar.errors` (layer 0) and psycopg lazily (inside the
functions that need it).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidParameter

if TYPE_CHECKING:
    import psycopg

#: SQLite primary result codes of a lock wait (SQLITE_BUSY, SQLITE_LOCKED).
LOCK_CODES = frozenset({5, 6})
#: SQLite's SQLITE_CANTOPEN (primary code): a file SQLite could not open.
CANTOPEN = 14
#: ``open(2)`` errors that say "this process (or the system) has no file descriptor left".
NO_DESCRIPTOR = frozenset({errno.EMFILE, errno.ENFILE})
#: SQLite primary result codes meaning "this file is damaged" (SQLITE_CORRUPT, SQLITE_NOTADB).
DAMAGE_CODES = frozenset({11, 26})
#: SQLite's I/O errors that are damage: SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA (a
#: checksum mismatch).
DAMAGE_IOERR = frozenset({8458, 8202})

#: The causes outside the file each store's error names (the keys of
#: :class:`~swarmvar.errors.LedgerUnwritable`'s ``REMEDY`` and of the variant store's).
DISK_FULL = "disk full"
READ_ONLY = "read-only"
IO_ERROR = "I/O error"
#: SQLite primary result codes of a cause outside the file: SQLITE_FULL, SQLITE_READONLY,
#: SQLITE_IOERR (damage is SQLITE_CORRUPT 11, SQLITE_NOTADB 26: never one of these).
OUTSIDE_CODES = {13: DISK_FULL, 8: READ_ONLY, 10: IO_ERROR}
#: SQLite's messages of the same, for an error that carries no code.
OUTSIDE_TEXT = (("database or disk is full", DISK_FULL),
                ("attempt to write a readonly database", READ_ONLY),
                ("disk I/O error", IO_ERROR))
#: SQLite's I/O errors a full file system gives (:func:`full_disk` reads only these as a disk
#: full): SQLITE_IOERR_SHMSIZE (4874: the unix VFS grows the ``-shm`` by writing one byte
#: per 4 KiB page, ``unixShmMap``, and a failed write there is this code, whatever the
#: errno) and a plain SQLITE_IOERR (10: no cause said). A write's ENOSPC is SQLITE_FULL
#: (``unixWrite``), so every other I/O error (SQLITE_IOERR_WRITE, _FSYNC, _READ,
#: _TRUNCATE, _SHMMAP, ...) stays an I/O error on a nearly full disk too: a failing disk.
FULL_IOERR = frozenset({10, 4874})
#: Free bytes below which the file system of a database that met an I/O error is full
#: (:func:`full_disk`): SQLite's WAL index (the ``-shm``) grows by regions of 32 KiB, and
#: with less room than one region its growth fails as SQLITE_IOERR_SHMSIZE ("disk I/O
#: error"), not SQLITE_FULL.
FULL_BELOW = 32 * 1024


def is_lock_wait(exc: BaseException) -> bool:
    """True if ``exc`` is SQLite waiting for another connection's lock (busy, locked)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in LOCK_CODES:
        return True
    return "locked" in str(exc) or "busy" in str(exc)


def cannot_open(exc: BaseException) -> bool:
    """True if ``exc`` is SQLite's SQLITE_CANTOPEN ("unable to open database file"): the
    database, its ``-wal``/``-shm`` or a temporary file could not be opened. It says
    nothing about damage; :func:`missing` tells a file gone from no descriptor left."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == CANTOPEN) or (
        "unable to open database file" in str(exc))


def missing(path: str | Path) -> str | None:
    """Why SQLite cannot open the database file ``path`` for good, or None when it opens,
    or fails only for want of a file descriptor (EMFILE, ENFILE: a retry may pass).

    Checked: the file (``stat`` first: it needs no descriptor, so a file gone is told even
    at the limit; then ``open``: ``Permission denied``, ...), and its folder when the
    file's ``-wal`` or ``-shm`` is not there: SQLite creates them beside the file in WAL
    mode, so a folder this process may not write is "unable to open database file" at
    every attempt. A ``-wal``/``-shm`` that is there but closed to this process (another
    user's) is not checked: its SQLITE_CANTOPEN is answered as one that may pass.
    """
    try:
        os.stat(path)
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in NO_DESCRIPTOR:
            return None
        return exc.strerror or str(exc)
    os.close(fd)
    folder = Path(path).parent
    sides = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    if not all(p.exists() for p in sides) and not os.access(folder, os.W_OK | os.X_OK):
        return (f"its folder {folder} may not be written by this process, and SQLite "
                "creates the file's -wal and -shm there")
    return None


def never_opens(path: str | Path, create: bool) -> str | None:
    """Why an open of database file ``path`` that met SQLITE_CANTOPEN cannot pass on a
    retry, or None (a retry may pass).

    The file there (or a symbolic link, even dangling): :func:`missing`. Not there: with
    ``create``, its folder gone or not writable (a creator racing this open makes the file
    in a folder that is there); without, the file was needed.
    """
    if os.path.lexists(path):
        return missing(Path(path))
    if not create:
        return "No such file or directory"
    folder = Path(path).parent
    if not folder.is_dir():
        return f"its folder {folder} is gone"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} may not be written by this process"
    return None


def out_of_descriptors() -> bool:
    """True if this process cannot open a file now for want of a descriptor (EMFILE, ENFILE)."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as exc:
        return exc.errno in NO_DESCRIPTOR
    os.close(fd)
    return False


def is_damage(exc: BaseException) -> bool:
    """True if ``exc`` says the file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB,
    SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA, or text that is not UTF-8), not that it
    could not be read just now."""
    if isinstance(exc, UnicodeDecodeError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF in DAMAGE_CODES or code in DAMAGE_IOERR)


def outside(exc: BaseException) -> str | None:
    """The cause outside the store that SQLite's ``exc`` names (:data:`DISK_FULL`,
    :data:`READ_ONLY`, :data:`IO_ERROR`: its disk, not its file), or None. By SQLite's
    primary result code when ``exc`` has one, else by its message."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return OUTSIDE_CODES.get(code & 0xFF)
    text = str(exc)
    return next((cause for words, cause in OUTSIDE_TEXT if words in text), None)


def full_disk(exc: BaseException, path: str | Path) -> str | None:
    """Why SQLite's I/O error ``exc`` (SQLITE_IOERR, not one of the damage ones, which the
    caller has told apart) met on database file ``path`` is its disk full, or None.

    A full file system is not always SQLITE_FULL: SQLite maps a write's ENOSPC to
    SQLITE_FULL, but the ``-shm`` of a WAL database grows by a write of one byte per
    page, whose failure is SQLITE_IOERR_SHMSIZE (so an open, or the first write of a
    connection, on a full disk says "disk I/O error"). So for SQLITE_IOERR_SHMSIZE, a
    plain SQLITE_IOERR or an error without a code (:data:`FULL_IOERR`: the I/O errors a
    full disk gives; any other, a write's, an ``fsync``'s, a read's, is a failing disk
    whatever the room) the file system of ``path``'s folder (a symbolic link followed:
    SQLite's ``-wal``/``-shm`` are beside its target) is asked (``os.statvfs``): fewer
    than :data:`FULL_BELOW` bytes free to this process (the blocks reserved for root
    count for root) is a disk full, named with the bytes free. None when the file system
    cannot be asked (or has no ``statvfs``).
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code not in FULL_IOERR:
        return None
    folder = os.path.dirname(os.path.realpath(path))
    try:
        fs = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: no statvfs (not POSIX)
        return None
    free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
    if free >= FULL_BELOW:
        return None
    return f"{free} bytes free on the file system of {folder}"


# PostgreSQL

#: SQLSTATEs of a cause outside a store's data (as SQLite's SQLITE_FULL, SQLITE_READONLY,
#: SQLITE_IOERR above): disk_full, read_only_sql_transaction (a standby,
#: default_transaction_read_only), io_error: each store's "unwritable" error. A server out
#: of reach (:data:`UNREACHABLE_STATES`) is its "unreachable" one; damage (data_corrupted
#: XX001, index_corrupted XX002) its "corrupted" one; any other error its "failed" one.
OUTSIDE_STATES = {"53100": DISK_FULL, "25006": READ_ONLY, "58030": IO_ERROR}
#: SQLSTATEs of a server out of reach besides class 08 (connection_exception): admin_shutdown,
#: crash_shutdown, cannot_connect_now, too_many_connections. psycopg's
#: OperationalError without a SQLSTATE (a connection refused, lost or closed) is one too.
UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: SQLSTATEs of damage (data_corrupted, index_corrupted): damage, whatever else.
DAMAGE_STATES = frozenset({"XX001", "XX002"})
#: SQLSTATE undefined_table: a store's tables dropped under an open store (damage).
NO_TABLE = "42P01"
#: The connection parameters :func:`scrubbed` replaces.
_HIDDEN = ("host", "hostaddr", "port", "user", "password", "dbname", "options", "service")
#: What a message says of each of :data:`OUTSIDE_STATES` (psycopg's words left out).
OUTSIDE_WORDS = {"53100": "disk full", "25006": "read-only transaction", "58030": "I/O error"}
#: Seconds after a failed connect during which a call fails at once, without connecting
#: (so calls queued behind the store's lock on a black-holed host do not wait for a
#: connect timeout each).
BACKOFF_S = 1.5
#: What a message says of a server out of reach, or of a refused privilege (42501), by
#: SQLSTATE (:func:`category`, :func:`named`).
_STATE_CATEGORIES = {"57P01": "connection ended by the server (shutting down, or an "
                              "administrator's command)",
                     "57P02": "server shutting down",
                     "57P03": "server starting or shutting down",
                     "53300": "too many connections", "28000": "authentication failed",
                     "28P01": "authentication failed", "3D000": "no such database",
                     "42501": "permission denied"}
#: What a message says of a connection that failed without a SQLSTATE (psycopg's connect
#: errors have none), by words of psycopg's text (lower case; the first found wins), read
#: only after its last ``failed: `` (the server's answer, not the host or socket tried) and
#: with quoted names emptied (a database ``password_x``, a role ``"bob"``). The text itself
#: never reaches a message: only the category does.
_WORD_CATEGORIES = (
    ("resolve host", "host name not found"), ("translate host name", "host name not found"),
    ("too many", "too many connections"), ("connection slots", "too many connections"),
    # before the TLS words: the server's 'no pg_hba.conf entry ..., SSL encryption'
    ("no pg_hba.conf entry", "authentication failed"),
    # a TLS connection lost (libpq's words for it name SSL): closed, not a TLS set-up
    ("ssl syscall error", "connection closed"), ("ssl connection has been closed",
                                                 "connection closed"),
    # libpq's TLS set-up: a certificate or key file missing or unreadable (before
    # 'permission denied': 'could not open certificate file "": Permission denied'), a
    # server without TLS, a certificate that does not verify
    ("certificate", "TLS or certificate failure"), ("private key", "TLS or certificate "
                                                                   "failure"),
    ("ssl", "TLS or certificate failure"),
    ("permission denied", "permission denied"),  # CONNECT revoked, before 'database "'
    ("refused", "connection refused"),
    ("no such file or directory", "connection refused"),  # no server socket there
    ("timeout expired", "connection timed out"), ("timed out", "connection timed out"),
    ("authentication", "authentication failed"),
    ('role "', "authentication failed"), ("password", "authentication failed"),
    ("not currently accepting connections", "database not accepting connections"),
    ('database "', "no such database"),
    ("shutting down", "server shutting down"),
    ("starting up", "server starting or shutting down"),
    ("recovery mode", "server starting or shutting down"),
    ("closed the connection", "connection closed"), ("connection is closed",
                                                    "connection closed"),
    ("connection is lost", "connection closed"), ("consuming input failed",
                                                  "connection closed"),
)


def url_params(url: str, url_error: Callable[[str, BaseException], Exception]
               ) -> dict[str, Any]:
    """``url``'s connection parameters; a malformed ``url`` raises ``url_error(url, exc)``
    (the store's own: it names and logs the store, never the URL's text).

    Raises
    ------
    InvalidParameter
        ``url`` is malformed (what ``url_error`` returns, the stores' an InvalidParameter),
        or a port in it is not a number from 1 to 65535 in ASCII
        digits (libpq would take it for a host it cannot resolve: a server out of reach).
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except (psycopg.ProgrammingError, ValueError, TypeError) as exc:
        raise url_error(url, exc) from None
    ports = str(params.get("port") or "").split(",")
    if not all(not p or (p.isascii() and p.isdigit() and 0 < int(p) < 65536) for p in ports):
        raise InvalidParameter("not a usable PostgreSQL URL: its port is not a number from 1 "
                               "to 65535")
    return params


def connect_seconds(params: dict[str, Any], default: int) -> int:
    """The seconds a connect may take: ``params``' ``connect_timeout`` (the URL's), else
    libpq's ``PGCONNECT_TIMEOUT``, else ``default``; 0 or less (libpq's "wait for ever",
    which psycopg makes 130 s, spent under the store's lock) is ``default`` too.

    Raises
    ------
    InvalidParameter
        The value is not a number (ASCII digits, as psycopg reads it: ``2.5`` is 2), naming
        where it came from (the URL, or the environment variable), not echoing it.
    """
    given = str(params.get("connect_timeout") or "").strip()
    where = "not a usable PostgreSQL URL: its connect_timeout"
    if not given:
        given = os.environ.get("PGCONNECT_TIMEOUT", "").strip()
        where = "the environment variable PGCONNECT_TIMEOUT"
    if not given:
        return default
    try:
        if not given.isascii():
            raise ValueError(given)
        seconds = int(float(given))
    except (ValueError, OverflowError):
        raise InvalidParameter(f"{where} is not a number of seconds") from None
    return seconds if seconds > 0 else default


def shown(url: str) -> str:
    """``url`` as an error may show it: without its password (``user:password@``, or a
    query parameter whose decoded name holds ``password``: ``sslpassword=``,
    ``p%61ssword=``)."""
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
    database or options of ``url`` (each replaced by ``…``). Not enough for a message:
    psycopg's text also holds the resolved address, the user and database taken from the
    environment, socket and certificate paths: only a damage message (XX001, XX002: what
    the server says of the data) shows it; the others carry :func:`category` or psycopg's
    class name, and the SQLSTATE."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except (psycopg.Error, ValueError, TypeError):
        params = {}
    parts = {p for key in _HIDDEN for p in str(params.get(key) or "").split(",") if p}
    for part in sorted(parts, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(part)}(?!\w)", "…", text)
    return " ".join(text.split())


def unreachable(exc: BaseException, *, lost: bool = False) -> bool:
    """True if PostgreSQL's ``exc`` says the server is out of reach (each store's
    "unreachable" error): SQLSTATE class 08 or one of :data:`UNREACHABLE_STATES`; or, unless
    it names damage (:data:`DAMAGE_STATES`) or a cause of :data:`OUTSIDE_STATES`, no SQLSTATE
    on an ``OperationalError`` (a connection refused, lost or closed) or any error on a
    connection that is now broken or was never made (``lost``: the server ended the session,
    an idle timeout's 57P05, a FATAL of any SQLSTATE, or a connect that failed). A store's
    tables gone (:data:`NO_TABLE`) on a connection that is fine is not out of reach: each
    store asks this rule first, then calls it damage (so on a broken connection both say
    out of reach, and the next call, on a new connection, meets it as damage)."""
    import psycopg

    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith("08") or state in UNREACHABLE_STATES:
        return True
    if state in DAMAGE_STATES or state in OUTSIDE_STATES:
        return False
    return lost or (not state and isinstance(exc, psycopg.OperationalError))


def category(exc: BaseException) -> str:
    """What a message says of a connection's failure ``exc``: a fixed phrase (connection
    refused, connection timed out, authentication failed, no such database, host name not
    found, too many connections, permission denied, TLS or certificate failure, server
    shutting down, server starting or shutting down, connection closed, connection failed or
    lost), from its SQLSTATE or, without one, from words of psycopg's text after its last
    ``failed: `` with quoted names emptied (:data:`_WORD_CATEGORIES`), which itself never
    reaches a message (it holds the resolved address, the port, the user and database,
    paths)."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in _STATE_CATEGORIES:
        return _STATE_CATEGORIES[state]
    # quoted names (database, role, host, socket) emptied; then only the last answer
    text = re.sub(r'"[^"\n]*"', '""', str(exc).lower()).rpartition("failed: ")[2]
    for words, phrase in _WORD_CATEGORIES:
        if words in text:
            return phrase
    return "connection failed or lost"


#: libpq's refusal of a connection parameter's value, checked before any traffic (psycopg
#: raises it as a connect error without a SQLSTATE): ``invalid sslmode value: "…"``,
#: ``invalid integer value "…" for connection option "…"``, ``invalid port number``.
_BAD_VALUE = re.compile(
    r'invalid "?\w+"?( \w+)? (value|number)\b'  # invalid sslmode value, invalid "x" value
    r"|invalid SSL protocol version range"
    r'|could not parse network address "')


def bad_value(exc: BaseException) -> bool:
    """True if psycopg's connect error ``exc`` is libpq refusing a connection parameter's
    value (an ``sslmode``, ``target_session_attrs``, ``keepalives``, ... it does not know,
    the URL's or a ``PG…`` environment variable's) before any traffic: a usage error that
    no retry mends, never a server out of reach. Read as :func:`category` reads: after the
    last ``failed: `` (or psycopg's ``connection is bad: ``), so a server's own ``FATAL:
    invalid value for parameter`` is not one."""
    if getattr(exc, "sqlstate", None):
        return False
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    tail = text.rpartition("failed: ")[2]
    tail = tail.removeprefix("connection is bad: ")
    return _BAD_VALUE.match(tail) is not None


def primary(exc: psycopg.Error) -> str:
    """What a damage message shows of ``exc`` (before :func:`scrubbed`): the server's
    primary message only, never its DETAIL, HINT or CONTEXT (which may quote rows, names
    or statements); the first line of its text for an error psycopg made itself."""
    text = exc.diag.message_primary
    return text if text else (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def said(exc: psycopg.Error) -> str:
    """What a message shows of a server out of reach: :func:`category` and the SQLSTATE."""
    state = getattr(exc, "sqlstate", None)
    return category(exc) + (f", SQLSTATE {state}" if state else "")


def named(exc: psycopg.Error) -> str:
    """What a message shows of any other error: a category where one is known (``permission
    denied`` for 42501), psycopg's class of its SQLSTATE (a fixed name,
    ``LockNotAvailable``) and the SQLSTATE, never its text."""
    state = getattr(exc, "sqlstate", None) or ""
    known = _STATE_CATEGORIES.get(state)
    return (f"{known}, " if known else "") + f"{type(exc).__name__}, SQLSTATE {state or 'none'}"


def url_error(url: str, exc: BaseException, name: str, log: logging.Logger
              ) -> InvalidParameter:
    """The error of a malformed ``url`` (psycopg's ``exc``; or libpq's refusal of a
    parameter's value at the connect, :func:`bad_value`): what is wrong in fixed words,
    never the URL's text (psycopg's quotes it, a password's fragment too); the URL without
    its password is logged on the store's ``log`` under the store's database ``name``
    ("the ledger database", "the variant store database")."""
    text = str(exc).lower()
    what = ("an invalid value for a connection parameter (the URL's, or a PG... environment "
            "variable's)" if bad_value(exc) else
            "a bad percent-escape (% and two hex digits)" if "percent" in text else
            "an unknown or malformed parameter" if "parameter" in text or "option" in text
            else "malformed")
    log.warning("%s %s: not a usable PostgreSQL URL (%s)", name, shown(url),
                type(exc).__name__)
    return InvalidParameter(f"not a usable PostgreSQL URL: {what}")
