"""Errors the variant lifecycle adds to :mod:`swarmvar.errors`.

Each subclasses the closest shared error, so ``except CorruptState`` or
``except InvalidVariant`` in callers keeps catching them.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    CorruptState,
    InvalidParameter,
    InvalidVariant,
    SwarmVarError,
    keep_message,
)

# The causes :class:`VariantStoreUnwritable` names (SQLite's SQLITE_FULL, SQLITE_READONLY,
# SQLITE_IOERR; PostgreSQL's disk_full, read_only_sql_transaction, io_error): the shared
# storage rules' (one copy, in swarmvar.storerules).
from ..storerules import DISK_FULL as DISK_FULL
from ..storerules import IO_ERROR as IO_ERROR
from ..storerules import READ_ONLY as READ_ONLY


class InvalidCapabilities(InvalidVariant):
    """An agent profile's capabilities, preferences or versions are malformed."""


class InvalidConfig(InvalidParameter):
    """An evolution config value is out of range."""


class UnsupportedStore(SwarmVarError, ValueError):
    """A store URL names a backend this installation cannot open."""


class UnknownState(SwarmVarError, LookupError):
    """No stored state for an agent (or for that version of it)."""


class UnknownRollbackPoint(SwarmVarError, LookupError):
    """A rollback point id that is not stored (or has expired)."""


class InvalidTransition(InvalidVariant):
    """A variant status change the lifecycle does not allow (e.g. retired -> active)."""


class WrongKey(CorruptState):
    """An encrypted state was read with a key other than the one it was written with."""


class KeyRequired(CorruptState):
    """An encrypted state was read without any key."""


class InvalidKey(SwarmVarError, ValueError):
    """An encryption key is not 32 bytes (raw, hex or base64)."""


class InvalidMetric(SwarmVarError, ValueError):
    """A performance record has a missing, non-finite or out-of-range value."""


class CorruptStore(SwarmVarError, RuntimeError):
    """The lifecycle database is not one (garbage, another application's) or is damaged:
    SQLite's SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA;
    PostgreSQL's data_corrupted ``XX001``, index_corrupted ``XX002``. No other error is
    taken for damage."""


class VariantStoreUnavailable(SwarmVarError):
    """SQLite cannot open the variant (lifecycle) database, or its ``-wal``/``-shm``,
    *now*: no file descriptor left in this process or the system (EMFILE, ENFILE;
    SQLite's "unable to open database file"), the file there (or not yet created). Nothing
    was changed and nothing says the file is damaged: a retry may pass (the service
    answers 503 with ``Retry-After``). Its subclasses: a disk full, read-only or I/O
    error, :class:`VariantStoreUnwritable`; a PostgreSQL server out of reach,
    :class:`VariantStoreUnreachable`; any other error that is not damage,
    :class:`VariantStoreFailed`.

    Parameters
    ----------
    path : str
        The database file.
    detail : str
        What SQLite (and the check of the file) said.
    """

    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(f"the variant store {path} cannot be opened now ({detail}); "
                         "nothing was changed and it is not damaged: retry later (if this "
                         "process keeps running out of file descriptors, raise its limit, "
                         "ulimit -n)")
        self.path = path
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.detail), self.__dict__)


#: What to do about each cause (the store itself being fine).
_REMEDY = {
    DISK_FULL: "free space on its disk (or raise the database's size limit), then retry",
    READ_ONLY: "make its file, its folder or its database writable by this process, "
               "then retry",
    IO_ERROR: "check its disk (the system log says what failed), then run PRAGMA "
              "quick_check on it (on PostgreSQL: the server's log, amcheck) before using "
              "or moving it",
}


class VariantStoreUnwritable(VariantStoreUnavailable):
    """The variant (lifecycle) database cannot be written, or read, for a cause outside
    its data: its disk is full, it is read-only to this process, or the disk failed a read
    or write (``cause``: :data:`DISK_FULL`, :data:`READ_ONLY`, :data:`IO_ERROR`). The
    write was rolled back whole, so nothing was changed (the service answers 503 with
    ``Retry-After``, as :class:`VariantStoreUnavailable`). A disk full or read-only store
    is not damaged (not to be moved away); after an I/O error it may be intact, which
    the disk and ``PRAGMA quick_check`` tell, not this error. An I/O error that is
    damage itself (SQLite's SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA) is
    :class:`CorruptStore`.

    Parameters
    ----------
    path : str
        The database file (on PostgreSQL ``"database"``: the message says "the variant
        store database", never the URL, which the store logs).
    cause : str
        :data:`DISK_FULL`, :data:`READ_ONLY` or :data:`IO_ERROR`.
    detail : str
        What SQLite said (for PostgreSQL a fixed name of the cause and the SQLSTATE,
        never psycopg's words).
    """

    def __init__(self, path: str, cause: str, detail: str = "") -> None:
        if cause == IO_ERROR:
            doing = "read or written"
            state = "the store may be intact"
        else:
            doing = "written"
            state = "the store is not damaged (do not move it away)"
        SwarmVarError.__init__(
            self, f"the variant store {path} cannot be {doing}: {cause} ({detail}); nothing "
                  f"was changed and {state}: {_REMEDY.get(cause, 'retry later')}")
        self.path = path
        self.cause = cause
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.cause, self.detail), self.__dict__)


class VariantStoreUnreachable(VariantStoreUnavailable):
    """The PostgreSQL server of the variant (lifecycle) database cannot be reached now:
    the connection failed or was lost (SQLSTATE class ``08``, no SQLSTATE at all), the
    server is shutting down or starting (``57P01``-``57P03``) or takes no more
    connections (``53300``). Nothing was changed and nothing says the database is
    damaged: a retry may pass (503 with ``Retry-After``, as
    :class:`VariantStoreUnavailable`).

    One case is uncertain: the connection lost while a write's COMMIT was answered
    (``landed``). The write may then be stored or not; it is not sent again. Read the
    store (the variant, the state version) before writing it again.

    The message names "the variant store database", never its URL nor psycopg's words (a
    service's 503 body shows it); ``path`` keeps the URL without its password, and the
    store logs it (logger ``swarmvar.evolution``) with what psycopg said, as the ledger's
    ``LedgerUnreachable``.

    Parameters
    ----------
    path : str
        The PostgreSQL URL, without its password (for the log; not in the message).
    detail : str
        A fixed category (``connection refused``, ``authentication failed``, ``no such
        database``, ``server shutting down``, ...) and the SQLSTATE, never psycopg's words
        (they hold the resolved address, the user, the database, paths).
    landed : bool
        The connection was lost while a write was committed: it may have landed.
    """

    def __init__(self, path: str, detail: str = "", landed: bool = False) -> None:
        said = f" ({detail})" if detail else ""
        if landed:
            message = (
                f"the connection to the variant store database was lost while a write was "
                f"committed{said}: the write may have landed or not, and it was not sent "
                "again; read before writing again. Nothing says the store is damaged (do "
                "not move it away): check that its server is up and takes connections")
        else:
            message = (
                f"cannot connect to the variant store database now{said}; nothing was "
                "changed and nothing says it is damaged: check that its server is up and "
                "takes connections (and the URL's host, port, user and database), then "
                "retry")
        SwarmVarError.__init__(self, message)
        self.path = path
        self.detail = detail
        self.landed = landed

    def __reduce__(self) -> tuple[Any, ...]:
        # the message itself travels too: a caller may reword it (evolution.noted does),
        # and a pickled copy (a worker's) keeps those words, as the ledger's errors do
        return (type(self), (self.path, self.detail, self.landed),
                {**self.__dict__, "_message": self.args})

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        keep_message(self, state)


class VariantStoreFailed(VariantStoreUnavailable):
    """A read or write of the variant (lifecycle) database met an error that says nothing
    about its data: neither damage (:class:`CorruptStore`) nor a cause named by the
    other classes (SQLite's SQLITE_NOMEM, SQLITE_INTERRUPT, SQLITE_PROTOCOL, a
    constraint a code bug broke; PostgreSQL's any SQLSTATE but those). The write was
    rolled back whole, nothing was changed, and the store is not said to be damaged nor
    intact (503 with ``Retry-After``, as :class:`VariantStoreUnavailable`).

    Parameters
    ----------
    path : str
        The database file (on PostgreSQL ``"database"``: the message says "the variant
        store database", never the URL, which the store logs).
    detail : str
        What SQLite said, with its error's name (for PostgreSQL psycopg's class name of
        the error and its SQLSTATE, ``LockNotAvailable, SQLSTATE 55P03``, never its
        words).
    """

    def __init__(self, path: str, detail: str = "") -> None:
        SwarmVarError.__init__(
            self, f"the variant store {path} failed ({detail}); nothing was changed, and "
                  "the error does not say the store is damaged: retry later; if it keeps "
                  "failing, run PRAGMA quick_check on it (on PostgreSQL: read the "
                  "server's log) and report the error")
        self.path = path
        self.detail = detail


class VariantStoreClosed(SwarmVarError, RuntimeError):
    """A PostgreSQL variant (lifecycle) store used after its ``close()``: a caller's
    mistake, not the database's nor its server's (the store never opens a connection again
    once closed), as the ledger's :class:`~swarmvar.errors.LedgerClosed`. Open the store
    again."""


class VariantStoreMissing(SwarmVarError, RuntimeError):
    """SQLite cannot open the variant (lifecycle) database for good: its file or its home
    is gone, or closed to this process (``why``), which a retry does not mend (the
    service answers 500 naming it). The file is not said to be damaged.

    Parameters
    ----------
    path : str
        The database file.
    why : str
        Why it cannot be opened (``No such file or directory``, ``Permission denied``, ...).
    detail : str
        What SQLite said.
    """

    def __init__(self, path: str, why: str = "", detail: str = "") -> None:
        said = f"{why}; SQLite: {detail}" if detail else why
        super().__init__(f"the variant store {path} cannot be opened ({said}): its file or "
                         "its home is gone or closed to this "
                         "process, which a retry does not mend; restore it, or point --home "
                         "at the home that holds it")
        self.path = path
        self.why = why
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.why, self.detail), self.__dict__)
