"""One exception hierarchy for swarmvar, rooted at :class:`SwarmVarError`.

Every error a user can cause (bad returns, unknown agents, forged signatures,
corrupted storage, oversized payloads, ...) raises a subclass of
``SwarmVarError`` whose message says what was wrong and how to fix it. Where a
builtin exception fits, the subclass also derives from it, so that
``except ValueError`` keeps working for callers who do not know swarmvar.

Numerical doubt is a warning, not an error: :class:`ConvergenceWarning`.

Engines define the errors they own here, in one place, so the hierarchy stays
visible at a glance.
"""

from __future__ import annotations

import sqlite3 as _sqlite3
from enum import Enum as _Enum
from typing import Any as _Any
from typing import ClassVar as _ClassVar


class SwarmVarError(Exception):
    """Root of every error swarmvar raises on purpose."""


# --- inputs and models ---------------------------------------------------


class InvalidReturns(SwarmVarError, ValueError):
    """A return or price series is unusable (NaN, inf, bad dates, too short, ...)."""


class UnknownDataset(SwarmVarError, LookupError):
    """A bundled data set name that swarmvar does not ship."""


class InvalidParameter(SwarmVarError, ValueError):
    """A constructor or call argument is out of its allowed range."""


class NotFitted(SwarmVarError, RuntimeError):
    """A model was asked to update or forecast before ``fit``."""


class InvalidState(SwarmVarError, ValueError):
    """A serialized model state cannot be restored (wrong model, version or content)."""


class WorkerFailed(SwarmVarError, RuntimeError):
    """A worker process died before returning its result (not an error in the work itself)."""


class UnknownAgent(SwarmVarError, LookupError):
    """An agent name or id that is not registered."""


# --- consensus -----------------------------------------------------------


class InvalidEstimate(SwarmVarError, ValueError):
    """An estimate is malformed (NaN, inf, negative VaR, inverted interval, ...)."""


class InvalidSignature(InvalidEstimate):
    """An estimate is unsigned, or its signature does not verify."""


class ReplayedEstimate(InvalidEstimate):
    """An estimate's sequence number does not increase for its agent."""


class NotEnoughAgents(SwarmVarError, ValueError):
    """Too few estimates for the aggregator's Byzantine tolerance bound."""


class StaleConsensus(SwarmVarError, RuntimeError):
    """Estimates are older than the policy's staleness bound."""


# --- ledger --------------------------------------------------------------


class InvalidEntry(SwarmVarError, ValueError):
    """A ledger entry cannot be written (not JSON, NaN, too large, unknown kind)."""


class LedgerCorrupted(SwarmVarError, RuntimeError):
    """Stored ledger content does not verify."""


class LedgerUnavailable(_sqlite3.OperationalError, SwarmVarError):
    """The SQLite ledger cannot be opened or read *now*, its file there and whole: a lock
    held past the busy timeout, or SQLite's "unable to open database file" for want of a
    file descriptor (EMFILE, ENFILE). A retry may pass; nothing was written.

    An ``sqlite3.OperationalError`` first (it carries SQLite's ``sqlite_errorcode``), so
    the service answers it as it answers SQLite's own (a read's 503 with Retry-After, a
    write's 500); a ``SwarmVarError`` too, so a command prints it as a usage error.
    """


def keep_message(err: BaseException, state: dict[str, _Any] | None) -> None:
    """Restore a pickled error's ``state``: its attributes, and its message as it was when
    pickled (``_message``: its ``args``, which a caller may have reworded) rather than the
    one its constructor rebuilt."""
    state = dict(state or {})
    message = state.pop("_message", None)
    err.__dict__.update(state)
    if message is not None:
        err.args = tuple(message)


class LedgerUnwritable(LedgerUnavailable):
    """The ledger cannot be written, or read, for a cause outside it: its disk is full, it
    is read-only to this process, or the disk failed a read or write (``cause``: ``"disk
    full"``, ``"read-only"``, ``"I/O error"``; SQLite's SQLITE_FULL, SQLITE_READONLY,
    SQLITE_IOERR, PostgreSQL's SQLSTATE 53100, 25006, 58030). A failed append was rolled
    back whole, so nothing was written, and nothing says the ledger is damaged: its disk is
    at fault, not the ledger, which must not be moved away. Free space, make it writable or
    check the disk, then retry.

    A :class:`LedgerUnavailable` (an ``sqlite3.OperationalError`` first): the service
    answers it, a read's or a write's, 503 with ``Retry-After``; a command prints it as a
    usage error (exit 2), never as a damaged ledger.

    Parameters
    ----------
    path : str
        The ledger file; for a PostgreSQL ledger ``"database"`` (the message says "the
        ledger database": a service's 503 body shows it; the store logs the URL).
    cause : str
        ``"disk full"``, ``"read-only"`` or ``"I/O error"`` (a key of :attr:`REMEDY`).
    detail : str
        What SQLite said (for PostgreSQL only the SQLSTATE, never psycopg's words).
    doing : str
        What met it: ``"append"``, ``"create"``, ``"open"`` or ``"read"`` (default).
    """

    #: What to do about each cause (the ledger itself not damaged).
    REMEDY: _ClassVar[dict[str, str]] = {
        "disk full": "free space on its disk, then retry",
        "read-only": "make its file, its folder or its database writable by this process, "
                     "then retry",
        "I/O error": "check its disk (the system log says what failed), then retry; "
                     "`swarmvar ledger verify` then tells whether anything stored was lost",
    }
    #: What the message says could not be done, by ``doing``.
    _DONE: _ClassVar[dict[str, str]] = {"append": "appended to", "create": "created",
                                        "open": "opened", "read": "read"}

    #: What to do about each cause when a new ledger could not be created (``doing``
    #: ``"create"``: nothing was made, so nothing to keep in place or to verify).
    CREATE_REMEDY: _ClassVar[dict[str, str]] = {
        "disk full": "free space on its disk, then retry",
        "read-only": "make its folder writable by this process, then retry",
        "I/O error": "check its disk (the system log says what failed), then retry",
    }

    def __init__(self, path: str, cause: str, detail: str = "", doing: str = "read") -> None:
        if doing == "create":  # nothing was made: nothing to keep in place, nothing to verify
            said = (f"the ledger {path} cannot be created: {cause} ({detail}); nothing was "
                    f"written, no ledger was made there: "
                    f"{self.CREATE_REMEDY.get(cause, 'retry later')}")
        else:
            changed = "changed" if doing == "read" else "written"
            said = (f"the ledger {path} cannot be {self._DONE.get(doing, doing)}: {cause} "
                    f"({detail}); nothing was {changed}, and nothing says the ledger is "
                    f"damaged (its disk is at fault, not the ledger: do not move it away): "
                    f"{self.REMEDY.get(cause, 'retry later')}")
        super().__init__(said)
        self.path = path
        self.cause = cause
        self.detail = detail
        self.doing = doing

    def __reduce__(self) -> tuple[_Any, ...]:
        # the message travels too: a caller may reword it (the service's desk), and a
        # pickled copy (a worker's) keeps those words, as LedgerUnreachable's does
        return (type(self), (self.path, self.cause, self.detail, self.doing),
                {**self.__dict__, "_message": self.args})

    def __setstate__(self, state: dict[str, _Any] | None) -> None:
        keep_message(self, state)


class LedgerUnreachable(SwarmVarError, ConnectionError):
    """The PostgreSQL server of the ledger cannot be reached now: no connection could be
    made (server down, wrong host or port, refused credentials, a database that is not
    there), or the connection was lost (SQLSTATE class ``08``, or none at all), the
    server is shutting down or starting (``57P01``-``57P03``) or takes no more
    connections (``53300``). The server rolled the transaction back, so nothing was
    written, and nothing says the ledger is damaged: it must not be moved away. The store
    opens a new connection on its next call, so a retry passes once the server is back.

    One case is uncertain: the connection lost while an append's COMMIT was answered
    (``landed``). The append may then be stored or not; it is not sent again. Read the
    ledger's head (a compare-and-append, ``if_size``, refuses a second copy) before
    appending it again.

    The message names "the ledger database", never its URL (a service's 503 body shows
    it), nor psycopg's words; ``where`` keeps the URL without its password, and the store
    logs it (logger ``swarmvar.ledger``) with what psycopg said. A ``SwarmVarError``:
    the service answers it 503 with ``Retry-After``, a command prints it as a usage
    error (exit 2), as the variant store's ``VariantStoreUnreachable``.

    Parameters
    ----------
    doing : str
        What met it: ``"append"``, ``"open"`` or ``"read"`` (default).
    detail : str
        A fixed category (``connection refused``, ``authentication failed``, ``no such
        database``, ``server shutting down``, ...) and the SQLSTATE, never psycopg's
        words (they hold the resolved address, the user, the database, paths).
    where : str
        The URL without its password (for the log; not in the message).
    landed : bool
        The connection was lost while an append was committed: it may have landed.
    """

    #: What the message says could not be done, by ``doing``.
    _DONE: _ClassVar[dict[str, str]] = {"append": "appended to", "open": "opened",
                                        "read": "read"}

    def __init__(self, doing: str = "read", detail: str = "", where: str = "",
                 landed: bool = False) -> None:
        said = f" ({detail})" if detail else ""
        if landed:
            message = (
                f"the connection to the ledger database was lost while an append was "
                f"committed{said}: the append may have landed or not, and it was not sent "
                "again; read the ledger's head before appending it again (a "
                "compare-and-append refuses a second copy). Nothing says the ledger is "
                "damaged (do not move it away): check that its PostgreSQL server is up")
        else:
            changed = "changed" if doing == "read" else "written"
            message = (
                f"the ledger database cannot be {self._DONE.get(doing, doing)} now: its "
                f"PostgreSQL server cannot be reached{said}; nothing was {changed}, and "
                "nothing says the ledger is damaged (do not move it away): check that the "
                "server is up and takes connections (and the URL's host, port, user and "
                "database), then retry")
        super().__init__(message)
        self.doing = doing
        self.detail = detail
        self.where = where
        self.landed = landed

    def __reduce__(self) -> tuple[_Any, ...]:
        # the message itself travels too: a caller may replace it (the service's desk
        # says what a client can do), and a pickled copy (a worker's) keeps those words
        return (type(self), (self.doing, self.detail, self.where, self.landed),
                {**self.__dict__, "_message": self.args})

    def __setstate__(self, state: dict[str, _Any] | None) -> None:
        keep_message(self, state)


def may_have_landed(exc: BaseException) -> bool:
    """Whether an append to the ledger that raised ``exc`` may have landed: a
    :class:`LedgerUnreachable` with ``landed`` (the connection lost while its COMMIT was
    answered), or an error the ledger does not know (psycopg's or the OS's own, a store's
    bug, an interrupt: nothing can tell); not the ledger's own errors, each of which says
    the append was rolled back (a full disk, a server out of reach before the COMMIT, a
    lock timeout, damage, ...). The one rule of the service's desk and of a variant
    change's note (:mod:`swarmvar.evolution.noted`)."""
    if isinstance(exc, LedgerUnreachable):
        return exc.landed
    return not isinstance(exc, SwarmVarError)


class LedgerFailed(SwarmVarError, RuntimeError):
    """A read of, or an append to, the PostgreSQL ledger met a database error that says
    nothing about its data: neither damage (:class:`LedgerCorrupted`: SQLSTATE ``XX001``,
    ``XX002``, its tables or metadata missing) nor a cause another class names
    (:class:`LedgerUnwritable`, :class:`LedgerUnreachable`): a lock or statement timeout
    (``55P03``, ``57014``), a refused privilege (``42501``), a deadlock (``40P01``), a
    serialization failure (``40001``), ... The server rolled the transaction back, so
    nothing was written, and the ledger is said to be neither damaged nor intact (as the
    variant store's ``VariantStoreFailed``). A ``SwarmVarError``: the service answers it
    503 with ``Retry-After``, a command prints it as a usage error (exit 2; ``ledger
    verify`` too, never "damaged").

    The message names "the ledger database" and psycopg's class of the SQLSTATE, never
    the URL nor psycopg's words, which the store logs (logger ``swarmvar.ledger``).

    Parameters
    ----------
    doing : str
        What met it: ``"append"``, ``"open"`` or ``"read"`` (default).
    detail : str
        psycopg's class name of the error and its SQLSTATE (``LockNotAvailable, SQLSTATE
        55P03``).
    where : str
        The URL without its password (for the log; not in the message).
    """

    #: What the message says could not be done, by ``doing``.
    _DONE: _ClassVar[dict[str, str]] = {"append": "appended to", "open": "opened",
                                        "read": "read"}

    def __init__(self, doing: str = "read", detail: str = "", where: str = "") -> None:
        changed = "changed" if doing == "read" else "written"
        said = f" ({detail})" if detail else ""
        super().__init__(
            f"the ledger database cannot be {self._DONE.get(doing, doing)} now: PostgreSQL "
            f"refused the request{said}; nothing was {changed}, and the error says nothing "
            "of the ledger's data (neither damaged nor intact): retry; if it keeps failing, "
            "read the server's log (the store's log line has what PostgreSQL said)")
        self.doing = doing
        self.detail = detail
        self.where = where

    def __reduce__(self) -> tuple[_Any, ...]:
        # the message travels too (a caller's rewording kept), as LedgerUnreachable's does
        return (type(self), (self.doing, self.detail, self.where),
                {**self.__dict__, "_message": self.args})

    def __setstate__(self, state: dict[str, _Any] | None) -> None:
        keep_message(self, state)


class LedgerClosed(SwarmVarError, RuntimeError):
    """A ledger store used after its ``close()``: a caller's mistake, not the database's
    (the store never opens a connection again once closed). Open a new ``Ledger``."""


class InvalidProof(SwarmVarError, ValueError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


# ledger and stores hardening (issue 20) ---------------------------------


class EntryNotFound(SwarmVarError, IndexError):
    """A ledger entry index outside the ledger (or of the wrong type)."""


class PayloadTooLarge(SwarmVarError, ValueError):
    """One call would hold more than a store accepts at once (entries, bytes)."""


# --- variant lifecycle ---------------------------------------------------


class UnknownVariant(SwarmVarError, LookupError):
    """A variant id that is not stored."""


class InvalidVariant(SwarmVarError, ValueError):
    """A variant's changes or capabilities do not validate."""


class VersionConflict(SwarmVarError, RuntimeError):
    """An optimistic-locking write saw a stale version."""


class CapacityExceeded(SwarmVarError, RuntimeError):
    """A bounded store (variants, rollback points) is full."""


class CircuitOpen(SwarmVarError, RuntimeError):
    """A call was refused because the variant's circuit breaker is open."""


class CorruptState(SwarmVarError, ValueError):
    """A stored agent state fails its checksum or cannot be decrypted."""


# --- service (swarmvar.service, HTTP face) ---------------------------------


class Unauthenticated(SwarmVarError, PermissionError):
    """A request carried no API key, or one that is unknown, malformed or revoked (HTTP 401)."""


class Forbidden(SwarmVarError, PermissionError):
    """A valid API key whose role may not use the route (HTTP 403)."""


class RateLimited(SwarmVarError, RuntimeError):
    """An API key sent more requests than its rate allows (HTTP 429)."""


class UnknownPortfolio(SwarmVarError, LookupError):
    """No portfolio of that name exists (HTTP 404)."""


class ConflictingInput(SwarmVarError, ValueError):
    """Input that contradicts what is stored: a new return dated not after the last
    recorded one, a second value for a recorded date, an existing portfolio name (HTTP
    409). Dates out of order inside one request are :class:`InvalidReturns` (422)."""


class KeysUnavailable(SwarmVarError, RuntimeError):
    """The server cannot check API keys: its key file is unreadable (HTTP 503; the
    operator restores the file, the request is retried)."""


class BatchTooLarge(SwarmVarError, ValueError):
    """An ingest request carries more returns than the server's per-request cap
    (``serve --max-batch``; HTTP 413): send them in several requests."""


class TooManyStreams(SwarmVarError, RuntimeError):
    """The process serves as many event streams as its cap (``serve --max-streams``;
    HTTP 503 with ``Retry-After``): reconnect later."""


class DeskBusy(SwarmVarError, RuntimeError):
    """A write waited its limit for the process's one computation at a time (another
    batch or fit) and was not run (HTTP 503 with ``Retry-After``; nothing stored): retry."""


# API key file (swarmvar.service.keys) --------------------------------------------


class KeyFileUnreadable(InvalidParameter):
    """The API key file cannot be read or parsed (its message names the file): restore
    it, or create keys again. An :class:`InvalidParameter`, as before it had a class."""


# config file (swarmvar.config; helper M-messages) ------------------------------


class InvalidConfig(InvalidParameter):
    """A config file (``swarmvar.toml``, ``[tool.swarmvar]``) is unreadable or holds an
    unknown key or a bad value; its message names the file and the file's own keys
    (``refit_every``), which the CLI leaves as written. An :class:`InvalidParameter`."""


# --- sandboxes -----------------------------------------------------------


class Violation(_Enum):
    """How sandboxed code broke its profile (see :mod:`swarmvar.sandbox`)."""

    NETWORK = "network"
    READ_FORBIDDEN = "read_forbidden"
    WRITE_OUTSIDE = "write_outside"
    SIGNAL = "signal"
    PROCESS = "process"
    NATIVE = "native"
    MEMORY = "memory"
    CPU_TIME = "cpu_time"
    WALL_TIMEOUT = "wall_timeout"
    FILE_SIZE = "file_size"
    LEFTOVER_PROCESS = "leftover_process"
    MALFORMED_RESULT = "malformed_result"
    OVERSIZED_RESULT = "oversized_result"
    CRASHED = "crashed"
    #: a plug-in's files changed since the swarm started: a new worker would import them
    PLUGIN_CHANGED = "plugin_changed"


class SandboxError(SwarmVarError, RuntimeError):
    """A sandbox cannot be created or used (bubblewrap missing, backend unreachable, ...)."""


class SandboxViolation(SandboxError):
    """Sandboxed code broke its profile: what it tried (``violation``) and the details."""

    def __init__(self, violation: Violation, detail: str) -> None:
        super().__init__(f"sandbox violation ({violation.value}): {detail}")
        self.violation = violation
        self.detail = detail


class TaskFailed(SwarmVarError, RuntimeError):
    """A sandboxed task raised an error of its own (its type and message are kept)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


# sandbox infrastructure (helper F-svc): the machine's fault, not the sandboxed code's


class SandboxUnavailable(SandboxError):
    """The sandbox's worker could not start (it could not import, a wall could not be
    built): no task code ran, so nothing is a violation. ``stderr`` holds the tail of the
    worker's error output."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message + (f"; the worker's last error output:\n{stderr}"
                                    if stderr else "; the worker wrote no error output"))
        self.stderr = stderr


# --- books (multi-asset portfolios) -------------------------------------


class InvalidBook(SwarmVarError, ValueError):
    """A book of positions is unusable (unknown asset, NaN position, no history, ...)."""


# --- runtime (swarm/) ----------------------------------------------------


class InvalidTick(SwarmVarError, ValueError):
    """A tick the runtime refuses (NaN/inf, percent, date not after the last, duplicate, ...)."""


class UnknownTickPortfolio(InvalidTick, UnknownPortfolio):
    """A tick names a portfolio the swarm does not run."""


class InvalidSource(SwarmVarError, ValueError):
    """A tick source cannot be read (missing file, unknown column, malformed line)."""


class ResumeMismatch(SwarmVarError, RuntimeError):
    """A data home holds a run whose configuration differs from the one asked for."""


class ArbiterOptionsMismatch(ResumeMismatch, InvalidState):
    """An arbiter's checkpoint made under other options (the pulse's, the thresholds) than
    the arbiter restoring it has: a resume's refusal, and a state it cannot take."""


class ResumeDataMismatch(ResumeMismatch):
    """A resume whose data is not what the home's run beat: a tick at a place the ledger
    recorded (a row of the replayed or followed file, a replayed stdin tick) carries
    another date or return than the ledgered beat, or the data ends before it."""


class PluginChanged(ResumeMismatch):
    """A resume whose plug-in agent's source code differs from the code its checkpointed
    state was made by (the source's digest recorded in the home's run record)."""


class RestoreQueueFull(SwarmVarError, RuntimeError):
    """A portfolio whose host is being restored has queued as many ticks as it may."""


# --- arbiter (swarmvar.arbiter) ---------------------------------------------


class InvalidSignal(SwarmVarError, ValueError):
    """A beat report the arbiter cannot read (NaN return or forecast, wrong breach flags, ...)."""


# --- mesh (swarmvar.mesh, nodes over ZeroMQ) ------------------------------


class MeshError(SwarmVarError, RuntimeError):
    """Root of the mesh's errors (a node, its peers or its messages)."""


class RefusedMessage(MeshError, ValueError):
    """A mesh message was refused (malformed, oversized, unknown sender, forged,
    misdirected, replayed or not allowed); ``reason`` names which."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class MeshTimeout(MeshError, TimeoutError):
    """A mesh operation (an admin reply, an agreement run) did not finish in its time bound."""


# --- warnings ------------------------------------------------------------


class SwarmVarWarning(UserWarning):
    """Root of swarmvar's warnings."""


class ConvergenceWarning(SwarmVarWarning):
    """A fit's diagnostics are doubtful (``Diagnostics.doubts``): split R-hat > 1.01 or a
    bulk or tail ESS < 400, or one that is not a number (a collapsed cloud's R-hat). Raised
    at the end of a fit, when particle weights are equal; the weights are judged online
    (below 5 % of their cloud) by the runtime's guards and the arbiter."""


__all__ = [name for name in dir() if name[0].isupper()]
