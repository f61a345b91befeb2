"""A variant's promotion or rollback noted in a ledger inside the variant store's
transaction, and a note whose change the store did not keep voided: the one rule of the
command line (``swarmvar variants promote``, ``rollback variant``, ``rollback to``,
``canary check``), of a ``canary run``'s automatic rollback
(:mod:`swarmvar.swarm.canary_sandbox`) and of the service's admin routes. The caller
brings its ledger (:class:`NoteBook`: append the note, find a note whose append may have
landed, append a void), the store's transaction and read-back, and a reporter (a log,
stderr); this module imports neither the ledger nor a face.

The cases, after the note's append:

* the COMMIT passes: the change and its note stand;
* the COMMIT fails and the store, read back, does not hold the change: the note is voided
  (one try; a void that cannot be appended is reported at error level) and the store's
  error raised;
* the COMMIT fails but the store holds the change as written (its answer lost, having
  committed): no void, a warning, and the change is answered as made;
* the COMMIT fails (whatever its error) and the store cannot be read back, or it lost
  the store's PostgreSQL server while the COMMIT was answered (``VariantStoreUnreachable``
  with ``landed``) and the read-back does not show the change (a COMMIT in flight on the
  old connection may still land): not known; no void, an error reported, and the error
  raised (the store's own class, reworded; an error not swarmvar's as it was) says the
  change may have been made (look at the variant before trying again);
* the note's own append may have landed (:func:`may_have_landed`: it lost the ledger's
  server while it was committed, ``LedgerUnreachable`` with ``landed``, or raised an error
  the ledger does not know): the store rolls the change back; the note is looked for
  where it was appended (each face appends with compare-and-append, so that index is
  exact; the look waits for an append still committing), voided if it is there, and
  the error raised: a ``LedgerUnreachable`` reworded to say the change was not made and
  what became of the note (did not land; landed and voided; landed and could not be
  voided; could not be looked for); any other error (psycopg's, the OS's, an interrupt)
  as it was, the change not made and the note's fate reported at error level;
* an interrupt (``KeyboardInterrupt``) at the COMMIT: the store is read back as after a
  failed COMMIT (a note whose change is not held is voided; one not known to be held or
  not is left, reported), then the interrupt is raised again.

A change that may or may not be one to note (a canary's health check: only the check
that promotes or rolls the release back is) returns None as its note's data: nothing is
appended, and the transaction is the store's alone.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar, cast

from ..errors import LedgerUnreachable, SwarmVarError, may_have_landed
from .errors import VariantStoreUnreachable
from .rollback import RollbackPoint
from .variants import Variant

_R = TypeVar("_R")
_W = TypeVar("_W")

#: Reports a line at a :mod:`logging` level (``WARNING``, ``ERROR``).
Report = Callable[[int, str], None]

#: The longest error text a void keeps.
_MAX_SAID = 300

#: A URL in an error's text (a PostgreSQL server's, say): never written to the ledger.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")

#: The mark of an error :func:`noted_change` raised saying the change may have been made.
_NOT_KNOWN = "_swarmvar_not_known"

#: Where a change whose COMMIT may have landed is looked at.
CHECK = "check the variant's status (`swarmvar variants list`, GET /v1/variants) first"


class NoteBook(Protocol):
    """The caller's ledger for one change's note."""

    def note(self, data: dict[str, Any]) -> int:
        """Append the change's note (its ``data``, from the change); its index.

        Raises
        ------
        SwarmVarError
            The ledger's error (``LedgerUnreachable`` with ``landed``: it may be stored).
        """

    def landed(self, data: dict[str, Any]) -> int | None:
        """After :meth:`note` of ``data`` raised an error with which it may have landed
        (:func:`may_have_landed`): the note's index if the ledger holds it where it was
        appended (its compare-and-append's index, the same canonical text), else None.

        Raises
        ------
        SwarmVarError
            The ledger cannot be read now.
        """

    def void(self, index: int, data: dict[str, Any], error: str) -> int:
        """Append the void of the note at ``index`` (its ``data``: what it names), whose
        change the store did not keep for ``error``; its index.

        Raises
        ------
        SwarmVarError
            The ledger's error.
        """


def noted_change(transaction: Callable[[], AbstractContextManager[Any]],
                 change: Callable[[], tuple[_R, _W, dict[str, Any] | None]], book: NoteBook,
                 held: Callable[[_W], bool], report: Report, what: str,
                 url: str = "", check: str = CHECK) -> _R:
    """Make ``change`` inside ``transaction()`` of the variant store and note it in the
    ledger (``book.note``, the body's last step); return what ``change`` returned first.

    ``change()`` returns (result, what it wrote, the note's data, or None when what it
    did is not to be noted: nothing is appended). ``held(written)`` reads
    the store back (a new connection after a lost one): whether it holds the change as
    written (:func:`variant_held`, :func:`point_held`); it raises when the store cannot
    be read. ``what`` names the change in messages (``promotion of v1``); ``url``: the
    store's address, whose parts an error's text loses before the ledger keeps it
    (:func:`as_kept`); ``check``: what to do when the change may have been made or not
    (:data:`CHECK`: look at the variant; a restore's caller says to run it again). The
    cases: this module's text.

    Raises
    ------
    SwarmVarError
        The change's, the note's or the COMMIT's error: the change was not made; or, when
        the COMMIT failed and the store cannot be read back (or lost its server while its
        answer was lost), the store's own error class reworded to say it may have been made
        and marked so (:func:`may_have_been_made`); an error not swarmvar's is raised as it
        was, marked where it can be.
    KeyboardInterrupt
        Raised again after the note is dealt with (voided, or left and reported).
    """
    noted = -1  # the note's index, once appended
    finished = False  # the body ran to its end (note appended): what fails now is the COMMIT
    written: _W | None = None  # what change() wrote (None is a value too: not a flag)
    data: dict[str, Any] = {}
    lost: BaseException | None = None  # the note's append, which may have landed
    try:
        with transaction():
            result, written, given = change()
            if given is None:  # nothing to note: the store's transaction alone
                return result
            data = given
            try:
                noted = book.note(data)
            except BaseException as exc:
                lost = exc if may_have_landed(exc) else None
                raise
            finished = True
    except BaseException as exc:
        if finished:  # the COMMIT failed
            if _after_commit(exc, noted, cast(_W, written), data, book, held, report, what, url,
                             check) and isinstance(exc, Exception):
                return result
            raise
        if lost is not None:  # rolled back (or never committed): the note voided if there
            state = _void_landed(lost, book, data, report, what, url)
            if exc is lost and isinstance(lost, LedgerUnreachable):
                err = LedgerUnreachable(lost.doing, lost.detail, lost.where, lost.landed)
                err.args = (f"the {what} was not made: the connection to the ledger "
                            "database was lost while its note was committed "
                            f"({lost.detail or 'connection lost'}); {state}. Nothing says "
                            "the ledger is damaged: check that its PostgreSQL server is "
                            "up, then retry",)
                raise err from exc
            report(logging.ERROR, f"{what} was not made: its ledger note's append raised "
                                  f"{as_kept(lost, url)}; {state}")
        raise
    return result


def _after_commit(exc: BaseException, noted: int, written: _W, data: dict[str, Any],
                  book: NoteBook, held: Callable[[_W], bool], report: Report, what: str,
                  url: str, check: str) -> bool:
    """The note at ``noted`` after the COMMIT raised ``exc``: True when the store holds
    the change (no void, a warning); else the note voided (or, not known, left) and False.

    Raises
    ------
    SwarmVarError
        Whether the change was made is not known: ``exc``, of its own class, said again
        in those words (an error not swarmvar's, or an interrupt, is left to the caller
        to raise as it was).
    """
    try:
        kept: bool | None = held(written)
    except Exception:  # what the store says now is not known
        kept = None
    if kept:
        report(logging.WARNING, f"{what}: the variant store's answer to its COMMIT was lost "
                                f"({as_kept(exc, url)}), but the change is stored: ledger note "
                                f"#{noted} stands")
        return True
    lost = isinstance(exc, VariantStoreUnreachable)
    if kept is None or ((lost or not isinstance(exc, Exception))
                        and getattr(exc, "landed", False)):
        how = ("the variant store's COMMIT lost its server" if lost else
               f"the variant store's COMMIT was interrupted ({type(exc).__name__})"
               if not isinstance(exc, Exception) else "the variant store's COMMIT failed")
        report(logging.ERROR, f"{what}: {how} ({as_kept(exc, url)}) and the change "
                              f"{'cannot be read back' if kept is None else 'is not seen yet'}:"
                              f" it may have been made; ledger note #{noted} is not voided")
        if not isinstance(exc, SwarmVarError):  # an interrupt, psycopg's, the OS's: as it was
            with contextlib.suppress(AttributeError, TypeError):  # marked where it can be
                setattr(exc, _NOT_KNOWN, True)  # noqa: B010 - a mark, not of its class
            return False
        if isinstance(exc, VariantStoreUnreachable):
            err: SwarmVarError = VariantStoreUnreachable(exc.path, exc.detail, True)
            why = "the connection to the variant store database was lost while it was committed"
            server = "nothing says the store is damaged: check that its server is up"
        else:  # the store's own class (its status, its exit code), reworded
            err = copy.copy(exc)
            why = (f"its COMMIT failed ({as_kept(exc, url)}) and the store could not be read "
                   "back")
            server = "then see to the store's error"
        err.args = (f"the {what} may have been made or not: {why}; its ledger note "
                    f"#{noted} stands, not voided. {check}; {server}",)
        setattr(err, _NOT_KNOWN, True)  # noqa: B010 - a mark, not an attribute of its class
        raise err from exc
    try:
        book.void(noted, data, as_kept(exc, url))
    except Exception as second:  # one try: the store's error is the answer
        report(logging.ERROR, f"{what}: ledger note #{noted} names a change the variant "
                              f"store did not keep ({type(exc).__name__}), and its void "
                              f"could not be appended: {as_kept(second, url)}")
    return False


def _void_landed(exc: BaseException, book: NoteBook, data: dict[str, Any],
                 report: Report, what: str, url: str) -> str:
    """After the note's append raised ``exc``, with which it may have landed, and the
    store rolled the change back: the note, if it landed, voided (looked for where it was
    appended, one try; then voided, one try); what became of it, in words."""
    try:
        found = book.landed(data)
    except Exception as second:
        report(logging.ERROR, f"{what} was not made, and its ledger note may have landed: "
                              f"it could not be looked for: {as_kept(second, url)}")
        return ("it may have landed and could not be looked for (if `swarmvar variants "
                "history` shows it, it names a change not made)")
    if found is None:
        return "it did not land"
    try:
        void = book.void(found, data, as_kept(exc, url))
    except Exception as second:
        why = as_kept(second, url)
        report(logging.ERROR, f"{what} was not made, and its ledger note landed as #{found}: "
                              f"its void could not be appended: {why}")
        return (f"it landed as #{found} and could not be voided ({said_head(why)}): it "
                "names a change not made")
    return f"it landed as #{found} and is voided by #{void}"


def may_have_been_made(exc: BaseException) -> bool:
    """Whether ``exc``, raised by :func:`noted_change`, says the change may have been made
    (its COMMIT's outcome not known; a ``VariantStoreUnreachable`` with ``landed`` too)."""
    return bool(getattr(exc, _NOT_KNOWN, False)) or (
        isinstance(exc, VariantStoreUnreachable) and exc.landed)


def variant_held(read_back: Callable[[str], Variant]) -> Callable[[Variant], bool]:
    """``held`` of a variant's change: the store (``read_back(id)``) holds the variant as
    the transaction wrote it (its version, time and status)."""
    def held(written: Variant) -> bool:
        stored = read_back(written.id)
        return (stored.version == written.version and stored.updated == written.updated
                and stored.status is written.status)

    return held


def point_held(db: Any) -> Callable[[RollbackPoint], bool]:
    """``held`` of a rollback point restored: the store (``db``) assigns every agent the
    point's variant, and no other, and each of the point's agents its state version."""
    def held(point: RollbackPoint) -> bool:
        assigned = {str(a): str(v) for a, v in
                    db.read("SELECT agent_id, variant_id FROM assignments")}
        current = {str(a): int(v) for a, v in
                   db.read("SELECT agent_id, version FROM state_current")}
        return assigned == dict(point.assignments) and all(
            current.get(a) == v for a, v in point.states.items())

    return held


def as_kept(exc: BaseException, url: str = "") -> str:
    """``exc`` as the ledger may keep it, on one line: its class, its ``cause`` when it
    has one (``disk full``, ``I/O error``), and its message's first clause (up to the
    first ``;``: what failed, not the remedy after it), at most 300 characters. Any URL
    is replaced by ``<url>``; a PostgreSQL ``url``'s host, port, user, password, database
    and options by ``…`` (the rule of the store's ``scrubbed``)."""
    text = next((line for line in str(exc).splitlines() if line.strip()), "")
    text = _URL.sub("<url>", text.split("; ")[0])
    if url.startswith(("postgres://", "postgresql://")):
        from .postgres import scrubbed  # psycopg: installed for such a store

        text = scrubbed(text, url)
    text = " ".join(text.split())
    cause = getattr(exc, "cause", None)
    head = type(exc).__name__ + (f" ({cause})" if isinstance(cause, str) and cause else "")
    return f"{head}: {text}"[:_MAX_SAID] if text else head


def said_head(error: str) -> str:
    """A void's ``error`` (:func:`as_kept`) as ``variants history`` shows it: its class and
    cause, the message left out."""
    return error.split(": ", 1)[0]
