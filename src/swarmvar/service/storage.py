"""How the service answers an SQLite error that reaches the app: which read may be retried.

A *read* is a request of a route whose API key needs only the reader role (its
``POST /v1/ledger/verify`` too: it recomputes, it stores nothing), or any ``GET`` /
``HEAD``. A read that meets

- a lock held past the busy timeout (SQLITE_BUSY, SQLITE_LOCKED), or SQLite's
  "unable to open database file" (SQLITE_CANTOPEN) while the ledger file is there
  and this process has no file descriptor left (EMFILE, ENFILE), is a 503
  ``LedgerUnavailable`` with ``Retry-After``: it passes;
- SQLITE_CANTOPEN when the ledger file, or its home, is gone (or may not be opened),
  or its folder may not be written while its ``-wal``/``-shm`` are not there
  (:func:`~swarmvar.ledger.damage.missing`), is a 500 ``LedgerMissing`` naming the
  file: a retry would meet it again, forever.

The ledger engine raises the first two as :class:`~swarmvar.errors.LedgerUnavailable`,
an ``sqlite3.OperationalError`` first (then a ``SwarmVarError``), which reaches the app's
``sqlite3.OperationalError`` handler and is answered here as SQLite's own error is.

Its subclass :class:`~swarmvar.errors.LedgerUnwritable` - the ledger's disk full, its
file (or PostgreSQL transaction) read-only, or an I/O error - is a 503 ``LedgerUnwritable``
with ``Retry-After`` for a read and a write alike, its message kept (the cause, the
file, that nothing was written or changed, what to do): the engine raises it only once
the append was rolled back whole, and nothing says the ledger is damaged, so a request
sent again once the disk is mended passes (as the variant store's
``VariantStoreUnwritable``).

A write's other SQLite error, a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB) and any
other SQLite error are not answered here (None: the app's 500 for the unexpected). The
variant store's errors are not the ledger's: the evolution database raises them as
``SwarmVarError`` classes the app answers by status, naming that store
(:class:`~swarmvar.evolution.db.VariantStoreLocked` and
:class:`~swarmvar.evolution.errors.VariantStoreUnavailable` 503, its subclass
:class:`~swarmvar.evolution.errors.VariantStoreUnwritable` too - a disk full, read-only
or I/O error, named, nothing changed, the store not damaged: the body's type says which
and its message the cause -; :class:`~swarmvar.evolution.errors.VariantStoreMissing` and
:class:`~swarmvar.evolution.errors.CorruptStore` 500). Each route documents the
statuses of the store it reads (:func:`swarmvar.service.responses.generic_statuses`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi import Request

from ..errors import LedgerUnwritable
from ..ledger import ledger_path
from ..ledger.damage import CANTOPEN, NO_DESCRIPTOR, cannot_open, is_damage, is_lock_wait, missing
from .keys import Role
from .strict import auth_of

__all__ = ["CANTOPEN", "NO_DESCRIPTOR", "cannot_open", "is_read", "ledger_file",
           "ledger_unavailable", "missing", "storage_answer"]


def is_read(request: Request) -> bool:
    """True if ``request`` only reads: a ``GET``/``HEAD``, or a route of the reader role."""
    if request.method in ("GET", "HEAD"):
        return True
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    guard = None if dependant is None else auth_of(dependant)
    return guard is not None and guard[0] is Role.READER


def ledger_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` may say the SQLite ledger cannot be read *now*: a lock held past the
    timeout (``database is locked``, busy) or a file it cannot open. A damaged file
    (SQLITE_CORRUPT, SQLITE_NOTADB) is not: it stays a 500."""
    if not isinstance(exc, sqlite3.OperationalError) or is_damage(exc):
        return False
    return is_lock_wait(exc) or cannot_open(exc)


def ledger_file(request: Request) -> Path | None:
    """The SQLite ledger file the app serves (None with a PostgreSQL ledger)."""
    desk = getattr(request.app.state, "desk", None)
    store = getattr(getattr(desk, "ledger", None), "store", None)
    path = getattr(store, "path", None)
    if isinstance(path, Path):
        return path
    config = getattr(request.app.state, "config", None)
    if config is None or getattr(config, "db", None):
        return None
    return ledger_path(config.home)


def storage_answer(request: Request, exc: BaseException) -> tuple[int, str, str] | None:
    """(status, error type, message) of a read's SQLite error that the service answers
    itself (503 ``LedgerUnavailable``, 500 ``LedgerMissing``), or of a read's or a
    write's :class:`~swarmvar.errors.LedgerUnwritable` (503, its message), or None: a
    write's other error, a damaged file's or another error, left to the app's 500 for the
    unexpected."""
    if isinstance(exc, LedgerUnwritable):
        return 503, "LedgerUnwritable", str(exc)
    if not is_read(request) or not ledger_unavailable(exc):
        return None
    if cannot_open(exc):
        path = ledger_file(request)
        why = None if path is None else missing(path)
        if path is not None and why is not None:
            return 500, "LedgerMissing", (
                f"the ledger file {path} cannot be opened ({why}; SQLite: {exc}): its file "
                "or its home is gone or closed to this server, which a retry does not "
                "mend; restore it, or restart the service on its home")
    return 503, "LedgerUnavailable", (f"the ledger cannot be read now ({exc}); nothing was "
                                      "changed: retry after Retry-After seconds")
