"""One swarm per portfolio, its beats driven by ingestion: what the HTTP face runs inside.

:class:`Desk` is the one seam between the service and the runtime. It owns
no statistics: each portfolio is a runtime :class:`~swarmvar.swarm.PortfolioSwarm`
(update, refit on the backtest's rhythm, forecast, sign, combine - the same
beat :class:`~swarmvar.swarm.Swarm` runs), observers such as the arbiter
(:class:`~swarmvar.swarm.BeatObserver`) decide after each beat, and the
beat's entries go to the ledger as one atomic batch.

Several processes (uvicorn workers, Kubernetes replicas) may share one
ledger. The ledger is the source of truth: each process *syncs* from it
(absorbing returns other processes recorded into its own agents) and
appends with compare-and-append (``if_size``): beats are computed on copies
of the agents, outside the desk's lock, one computation (a batch, a fit) at
a time per process, and computed again only if another process moved the
same portfolio meanwhile. Hence one gap-free chain, every beat recorded
once, and a repeated (portfolio, date) recognised whichever process saw it first.

Entries (their ``data``):

* ``action`` ``{"type": "portfolio.create", "details": {portfolio, agents,
  alphas, horizon, seed, dates, returns, key_id, request_id}}``, then the
  fit's forecasts as beat 0;
* ``action`` ``{"type": "tick", "details": {portfolio, seq, as_of, return,
  excluded, factors, beat_seconds, key_id, request_id}}`` followed by the signed
  ``estimate`` entry, one ``forecast`` per agent and one ``consensus`` per
  level, all carrying ``portfolio`` and ``seq``; the observers' ``decision``
  entries follow in a second append once the beat is committed (a process
  replaying a beat recomputes it with the recorded quarantine and factors).
  They cannot go in the beat's batch: the observers must see the beats in
  ledger order, so only once they are appended. When that second append
  fails (the ledger's disk full, say), the beats stay stored and the write is
  answered with an error saying so; the decisions are kept in this server
  process only and appended by its next ingest of any portfolio (a resend of the
  same returns to it: answered as already recorded, the decisions appended
  then), by a timer (every :data:`FLUSH_EVERY` seconds, at most
  :data:`FLUSH_TRIES` times) and at its shutdown (:meth:`Desk.shutdown`). Another
  worker or replica does not hold them: a resend reaching it appends nothing. A
  decision that can never be written (a non-finite signal, an entry over the
  size limit) is logged and dropped when it is made, counted as its observer's
  fault; the decisions waiting are dropped only if the ledger refuses their entries, and
  wait on any other error. An append whose answer was lost after the commit is not
  repeated: the next try's sync recognises the waiting entries that landed (their text, in
  rows from the first try's ledger size on). Nor is the beats' own append: when it raises
  (its answer lost after the commit), a sync at once, or else the next one, finds the
  beats' entries at the ledger size the append was tried at (the same text) and takes them
  as this process's (:meth:`Desk._adopt`): the ingest, or its resend (answered as already
  recorded), is answered as stored and the observers decide on them once, as on any beat
  of this process; they are never replayed as another process's, nor appended again
  (compare-and-append at that size). Several such batches tried at the same size (a
  resend whose append raised too) are each looked for there: the one found is adopted,
  the others never land. On PostgreSQL a lost connection is
  :class:`~swarmvar.errors.LedgerUnreachable` (503) for the call that meets it, and
  :class:`~swarmvar.ledger.postgres.PostgresStore` opens a new one on its next call.

Refits run inside the beat (``refit_lag`` 0), so a replay is exact. The
arbiter's instructions reach the next request's beats (within one batch the
beats share the instructions in force when it arrived).

The arbiter is wired as ``swarmvar run`` wires it (:mod:`swarmvar.swarm.runtime`):
each beat's measured compute time (the sum of the beat's own timings) is
given to it as ``beat_seconds`` (the PID's error against its pulse) and
recorded in the tick's entry, so a process replaying the beat feeds it the
same seconds (:meth:`~swarmvar.arbiter.Arbiter.replay`) and every process's
arbiter moves alike. Its state is checkpointed into the home's state store
every ``checkpoint_every`` beats of a portfolio, each state headed by the
mark of the beat it was taken at, and a desk started on the same home
restores each observer at its own mark and replays it only over the later
beats (:mod:`swarmvar.service.desk_observers`); a home whose arbiter states of
this ledger (their marks on it) were made under other options than the desk's
arbiter has is refused at the start (``ArbiterOptionsMismatch``), before anything
is replayed or written (a state whose mark is not on this ledger is ignored, as
its restore is, and one that cannot be read is logged). Within one
ingested batch the observers see every beat before the batch's decisions are
appended (that append syncs in other processes' later beats).

The values read from the desk and one portfolio's book (its swarm and what
it recorded) live in :mod:`swarmvar.service.desk_book`; they are importable
from here too.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import (
    ConflictingInput,
    DeskBusy,
    InvalidEntry,
    InvalidParameter,
    InvalidReturns,
    LedgerCorrupted,
    LedgerFailed,
    LedgerUnreachable,
    LedgerUnwritable,
    PayloadTooLarge,
    SwarmVarError,
    UnknownPortfolio,
    may_have_landed,
)
from ..ledger import EntryKind, Ledger
from ..ledger.entry import canonical_data, format_timestamp
from ..ledger.store import Row
from ..models import canonical_name
from ..models.base import check_real
from ..swarm import BeatInput
from ..swarm.runtime import BeatObserver
from ..types import BeatReport, Decision
from .desk_book import (
    KEEP_BEATS,
    MAX_HISTORY,
    MIN_HISTORY,
    NAME,
    BeatPoint,
    Book,
    DatedReturn,
    Ingested,
    LevelStats,
    PortfolioInfo,
    RiskView,
    beat_entries,
    check_returns,
    decision_from,
    decision_record,
    midnight,
    min_history,
    open_book,
    policy_for,
    recorded_seconds,
    run_beats,
)
from .desk_observers import OBSERVER_PREFIX, CheckpointMark, Observing

__all__ = ["KEEP_BEATS", "MAX_HISTORY", "MIN_HISTORY", "NAME", "OBSERVER_PREFIX", "BeatPoint",
           "CheckpointMark", "DatedReturn", "Desk", "Ingested", "LevelStats", "PortfolioInfo",
           "RiskView", "check_returns", "policy_for"]

log = logging.getLogger("swarmvar.service")

_RETRIES = 200
#: the answer when compare-and-append lost :data:`_RETRIES` times in a row
_KEPT_CHANGING = "the ledger kept changing under this write; retry"
#: seconds a write waits for the process's one computation at a time before DeskBusy (503)
BUSY_AFTER = 5.0
#: seconds between the timer's tries to append decisions kept after a failed append
FLUSH_EVERY = 10.0
#: most tries of that timer in a row (30 at 10 s: five minutes); then the next ingest or
#: the shutdown tries
FLUSH_TRIES = 30
#: most batches of beats whose append may have landed kept at one ledger size
#: (:attr:`Desk._landings`): a ninth drops the oldest, logged (its decisions, should it
#: have landed, are then never made: its beats are replayed as another process's)
_MAX_LANDINGS = 8


#: an entry's data: a mapping, or its canonical JSON text encoded before
_Data = Mapping[str, Any] | str


class _Waiting(NamedTuple):
    """A decision waiting for its append: its entry's text (encoded once) and the class
    name of the observer that made it (blamed if the ledger refuses the entry)."""

    decision: Decision
    text: str
    author: str


class _Landing(NamedTuple):
    """A batch of beats this process computed whose append raised, perhaps after its commit
    (a PostgreSQL connection lost before the COMMIT's answer came): computed on ``book``
    at beat ``seq`` of portfolio ``name``, the ``trial`` book its beats made, their
    ``reports`` and ``timed`` (each report's entry index and measured seconds), and the
    ``entries`` appended (kind, canonical text) with ``if_size`` ``at``: if the commit
    landed, they are the ledger's rows from ``at`` on, nowhere else (:meth:`Desk.sync`);
    of several batches tried at one ``at``, one at most landed."""

    name: str
    book: Book
    seq: int
    trial: Book
    reports: tuple[BeatReport, ...]
    timed: tuple[tuple[int, float], ...]
    at: int
    entries: tuple[tuple[str, str], ...]


class Desk:
    """The portfolios' swarms over one ledger; every method is thread-safe.

    Every read first syncs with the ledger (one size query when nothing is
    new), so any process answers with every beat recorded so far.

    The desk runs every portfolio whole in this process (each process replays the others'
    beats from the ledger): a portfolio's agents are not spread over hosts here
    (``swarmvar run --spread K`` does that).

    Parameters
    ----------
    ledger : Ledger
        Shared by every process serving the same portfolios.
    home : path
        Holds the agents' signing keys (``<home>/keys/agents``).
    agents : names of the default swarm (see :mod:`swarmvar.models.registry`).
    alphas : confidence levels, horizon : days.
    window, refit_every : fit window (capped at the history's length) and refit period, beats.
    seed : base seed (the backtest's seeding: the same numbers as ``swarmvar backtest``).
    observers : :class:`~swarmvar.swarm.BeatObserver` objects (the arbiter); they see
        every beat in ledger order, and the decisions on this process's beats are recorded.
    clock : wall time of entries (default: the system clock, UTC).
    checkpoint_every : beats of a portfolio between checkpoints of the observers' states
        (the arbiter's) in ``<home>``'s state store (and at the first beat this process runs of
        a portfolio the home holds no state of); restored by a desk started there, which
        refuses to start if they were made under other options.
    busy_after : seconds a write (create, ingest) waits for this process's computation in
        progress (another batch or fit) before it is refused with :class:`DeskBusy` (HTTP
        503 with ``Retry-After``, nothing stored): a queue of waiting writes would hold the
        server's request threads and starve its reads.
    on_skip : ``callback(observer class name, reason)`` on each beat an observer skips
        (:meth:`Observing.on_skip`), registered before the start's replay of the ledger so
        that the faults met there are counted too (the service's metric).
    store_made : ``<home>``'s state store was made at the start (the server's): the
        checkpoints only open it, so one deleted since is not made again empty.

    Attributes
    ----------
    observing : :class:`~swarmvar.service.desk_observers.Observing`
        The observers, their calls and checkpoints (``observing.restored``: the beat at
        which each observer restored at this start stands).
    flush_every, flush_tries : float, int
        The timer that appends decisions kept after a failed append: seconds between its
        tries (:data:`FLUSH_EVERY`) and its most tries in a row (:data:`FLUSH_TRIES`).

    Raises
    ------
    InvalidParameter
        ``checkpoint_every`` is not a whole number >= 1, or ``busy_after`` not a finite
        number of seconds >= 0.
    ArbiterOptionsMismatch
        A ``ResumeMismatch``: ``home`` holds an observer's state (the arbiter's) whose mark
        stands on ``ledger`` (or that has none) made under other options than the
        observer's now, each named "saved X, now Y"
        (:func:`~swarmvar.service.desk_observers.check_saved`); refused before anything
        is restored, replayed or written, as a resume of ``swarmvar run`` is.
    """

    def __init__(self, ledger: Ledger, home: str | Path, *,
                 agents: Sequence[str] = ("NormalInverseGamma", "BayesianBootstrap"),
                 alphas: Sequence[float] = (0.99, 0.975), horizon: int = 1,
                 window: int = 1000, refit_every: int = 20, seed: int = 0,
                 observers: Sequence[BeatObserver] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 checkpoint_every: int = 250, busy_after: float = BUSY_AFTER,
                 on_skip: Callable[[str, str], None] | None = None,
                 store_made: bool = False):
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 1:
            raise InvalidParameter(f"checkpoint_every must be a whole number >= 1 of beats, "
                                   f"not {checkpoint_every!r}")
        # seconds a write waits for the computation in progress (-1 would wait forever)
        wait = check_real("busy_after", busy_after, 0.0)
        self.ledger = ledger
        self.home = Path(home)
        self.checkpoint_every = checkpoint_every
        self.agents = tuple(canonical_name(a) for a in agents)
        self.alphas = tuple(float(a) for a in alphas)
        self.horizon = horizon
        self.window = window
        self.refit_every = refit_every
        self.seed = seed
        self.observing = Observing(observers, ledger, self.home,
                                   checkpoint_every=checkpoint_every, clock=clock,
                                   create_store=not store_made)
        self.observers = self.observing.observers
        if on_skip is not None:  # before the first sync: its replay's faults count too
            self.observing.on_skip(on_skip)
        self._clock = clock
        self._lock = threading.RLock()
        self._books: dict[str, Book] = {}
        # one computation at a time here (a batch's beats or a fit), taken before _lock
        self._computing = threading.Lock()
        self.busy_after = wait
        self._seen = 0
        #: decision entries on beats this process stored whose own append failed:
        #: appended by the next ingest here, the timer or the shutdown (only here)
        self._undecided: list[_Waiting] = []
        #: the ledger size at their first try to append them: rows from there on may be
        #: theirs, committed though the append's answer was lost (:meth:`_absorb`)
        self._undecided_from: int | None = None
        #: the batches of beats of this process whose append raised and may have landed
        #: (:func:`_may_have_landed`), all tried at one ledger size (at most
        #: :data:`_MAX_LANDINGS`, the latest; one dropped is logged): the next sync that
        #: finds the ledger grown looks for them there (one of them at most landed)
        self._landings: tuple[_Landing, ...] = ()
        #: the timer's seconds between tries to append them, and its most tries in a row
        self.flush_every = FLUSH_EVERY
        self.flush_tries = FLUSH_TRIES
        self._flush_left = FLUSH_TRIES
        self._timer: threading.Timer | None = None
        self._stopped = False
        self._on_beat: list[Callable[[str, BeatPoint], None]] = []
        self._on_report: list[Callable[[BeatReport, tuple[Decision, ...]], None]] = []
        # a state of the home the observers cannot take (the arbiter's, made under other
        # options) refuses the start before the sync restores, replays or writes anything
        self.observing.check_saved()
        self._startup = bool(self.observing.stateful)  # restore them as portfolios appear
        try:
            self.sync()
        finally:
            self._startup = False

    # --- reading ------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, BeatPoint], None]) -> None:
        """Call ``callback(portfolio, point)`` on every beat this process learns of."""
        self._on_beat.append(callback)

    def watch(self, callback: Callable[[BeatReport, tuple[Decision, ...]], None]) -> None:
        """Call ``callback(report, decisions)`` on every beat this process runs."""
        self._on_report.append(callback)

    def portfolios(self) -> list[PortfolioInfo]:
        with self._lock:
            self.sync()
            return [self._info(b) for b in self._books.values()]

    def info(self, name: str) -> PortfolioInfo:
        with self._lock:
            self.sync()
            return self._info(self._book(name))

    def latest(self, name: str) -> BeatReport:
        with self._lock:
            self.sync()
            report = self._book(name).last
            assert report is not None  # every book has beat 0
            return report

    def risk(self, name: str) -> RiskView:
        """The last beat's report, why each agent's estimate did not count (those without a
        forecast: their own refusal and since which beat, when known) and the portfolio,
        all from one sync under the lock (so they describe the same beat)."""
        with self._lock:
            self.sync()
            book = self._book(name)
            assert book.last is not None  # every book has beat 0
            return RiskView(book.last, book.rejected(), self._info(book))

    def points(self, name: str, since: int = 0, limit: int = KEEP_BEATS) -> list[BeatPoint]:
        with self._lock:
            self.sync()
            pts = [p for p in self._book(name).points if p.seq >= since]
        return pts[-limit:] if limit > 0 else []

    def decisions(self, name: str, limit: int = 100) -> list[Decision]:
        with self._lock:
            self.sync()
            return list(self._book(name).decisions)[-limit:] if limit > 0 else []

    @property
    def ledger_size(self) -> int:
        return self._seen

    def _info(self, b: Book) -> PortfolioInfo:
        return PortfolioInfo(b.name, b.agents, b.alphas, b.swarm.config.horizon, b.seq,
                             b.last_date, b.created_by)

    def _book(self, name: str) -> Book:
        book = self._books.get(name)
        if book is None:
            raise UnknownPortfolio(f"no portfolio {name!r}; create it with POST /v1/portfolios "
                                   "or list them with GET /v1/portfolios")
        return book

    def backtest(self, name: str, window: int = 250) -> list[LevelStats]:
        """Rolling coverage of the consensus VaR over the last ``window`` beats, per level."""
        from ..validation import christoffersen, kupiec  # statistics stay in the engine

        with self._lock:
            self.sync()
            book = self._book(name)
            pts = [p for p in book.points if p.breaches][-window:]
            alphas = book.alphas
        out = []
        for k, alpha in enumerate(alphas):
            hits = np.array([p.breaches[k] for p in pts if len(p.breaches) > k], dtype=bool)
            ku = kupiec(hits, alpha).pvalue if hits.size else float("nan")
            ch = christoffersen(hits).pvalue if hits.size >= 2 else float("nan")
            out.append(LevelStats(alpha, int(hits.size), int(hits.sum()),
                                  float(hits.size * (1 - alpha)),
                                  None if not np.isfinite(ku) else float(ku),
                                  None if not np.isfinite(ch) else float(ch)))
        return out

    # --- writing ------------------------------------------------------------

    def create(self, name: str, history: Sequence[DatedReturn], *, key_id: str,
               request_id: str = "", agents: Sequence[str] | None = None) -> PortfolioInfo:
        """A new portfolio whose swarm is fitted on ``history`` (its beat 0).

        Decisions kept after a failed append (:meth:`ingest`) are not appended here: a
        create stores its portfolio whatever waits (no decision is made on a beat 0).

        Raises
        ------
        InvalidParameter, InvalidReturns, ConflictingInput, UnknownAgent
        """
        if not NAME.match(name):
            raise InvalidParameter(f"portfolio name {name!r}: use 1-64 letters, digits, '.', "
                                   "'_' or '-', starting with a letter or digit")
        names = tuple(dict.fromkeys(canonical_name(a) for a in (agents or self.agents)))
        need, needer = min_history(names)
        if not need <= len(history) <= MAX_HISTORY:
            raise InvalidReturns(
                f"history has {len(history)} returns; send {need} to {MAX_HISTORY} dated "
                f"returns (at least {MIN_HISTORY} and the largest min_observations of the "
                f"portfolio's agents: {needer} needs {need})")
        check_returns(history, "history")
        details = {"portfolio": name, "agents": list(names), "alphas": list(self.alphas),
                   "horizon": self.horizon, "seed": self.seed,
                   "window": min(self.window, len(history)), "refit_every": self.refit_every,
                   "dates": [h.as_of.isoformat() for h in history],
                   "returns": [h.value for h in history], "key_id": key_id,
                   "request_id": request_id}
        with self._lock:  # an existing name is a 409 at once, not after a batch (or a 503)
            self.sync()
            self._unused(name)
        with self._computation():  # one fit or batch at a time here; reads go on meanwhile
            with self._lock:  # again: another create may have taken the name meanwhile
                self.sync()
                self._unused(name)
            try:  # the fit runs without the desk's lock: reads go on meanwhile
                book = open_book(details, self.home)
            except InvalidParameter as exc:  # e.g. a constant series: no scale to fit
                raise InvalidReturns(
                    f"history: the swarm cannot be fitted on these {len(history)} returns "
                    f"({exc}); a constant or near-constant series has no scale - send the "
                    "portfolio's real returns") from exc
            dead = [a for a in book.agents if a not in book.swarm.forecasts]
            if dead:
                errors = book.swarm.errors  # each agent's own last error
                why = "; ".join(f"{a}: {errors.get(a, 'no forecast')}" for a in dead)
                raise InvalidReturns(
                    f"history: {len(dead)} of the portfolio's agents could not be fitted on "
                    f"its {len(history)} returns and forecast ({why}); nothing was stored")
            assert book.last is not None
            batch = [(EntryKind.ACTION, {"type": "portfolio.create", "details": details}),
                     *beat_entries(book, book.last, ())]
            with self._lock:
                for _ in range(_RETRIES):
                    self.sync()
                    self._unused(name)  # another process may have created it meanwhile
                    if self._append(batch):
                        self._books[name] = book
                        book.record(book.last, (), None)
                        return self._info(book)
        raise SwarmVarError(_KEPT_CHANGING)

    @contextmanager
    def _computation(self) -> Iterator[None]:
        """This process's one computation at a time, waited for at most ``busy_after``
        seconds (then :class:`DeskBusy`: nothing was read or stored)."""
        if not self._computing.acquire(timeout=self.busy_after):
            raise DeskBusy(f"this server is computing another batch or fit and this write "
                           f"waited {self.busy_after:g} s for it; nothing was stored - send "
                           "it again after Retry-After seconds")
        try:
            yield
        finally:
            self._computing.release()

    def _unused(self, name: str) -> None:
        if name in self._books:
            raise ConflictingInput(f"a portfolio called {name!r} exists already")

    def ingest(self, name: str, items: Sequence[DatedReturn], *, key_id: str,
               request_id: str = "") -> list[Ingested]:
        """Record returns of a portfolio, each driving one beat; repeats change nothing.

        A return whose date is already recorded with the same value is a
        duplicate (reported, not stored again). The batch is all or nothing.

        The beats are computed on a copy of the portfolio's book without the desk's
        lock (reads of every portfolio go on meanwhile; other writes in this process wait
        their turn: one computation at a time), then appended in one batch under it if the
        portfolio has not moved meanwhile (another process's beat of it: computed again
        on the new state; another process's append to another portfolio: appended after
        a sync, not computed again). A caller that goes away does not stop it.

        Raises
        ------
        UnknownPortfolio, InvalidReturns
        ConflictingInput
            A recorded date with a different value, or a new date not after
            the last recorded one.
        LedgerUnwritable, LedgerUnreachable, SwarmVarError
            The observers' decisions on the stored beats could not be appended (their
            own append, after the beats'): the message says the returns were stored
            and their decisions not, which this server process keeps and appends later
            (its next ingest of any portfolio, a resend of the same returns to it, its
            timer, its shutdown); or decisions of an earlier request still cannot be
            appended, and nothing of this one was stored (:meth:`_record_undecided`).
            The ledger's disk at fault stays ``LedgerUnwritable``, its PostgreSQL server
            out of reach ``LedgerUnreachable`` (both 503). Unknown portfolios and
            conflicting values are answered first (404, 409).
        LedgerCorrupted
            The same, when the ledger's append says it is damaged (a 500); the decisions
            wait all the same.
        LedgerUnreachable
            With ``landed`` set: the connection to the PostgreSQL ledger was lost while
            the beats' append was committed, and a sync right after it did not find them:
            the message says the returns may have been stored and to resend the same
            returns (if they were, the resend is answered as already recorded). Without
            ``landed`` when that sync found other entries where the beats would be (they
            cannot have landed): the message says the returns were not stored, to resend
            them.
        SwarmVarError, Exception
            The beats' own append failed otherwise (the store's error, as it raised it),
            and a sync right after it did not find them in the ledger (or failed too):
            after an error the desk does not know (psycopg's own, ...) they may have
            landed, which the next sync tells (:meth:`_look_for_landing`);
            found there, they are this process's beats, decided on once, and a resend of
            the same returns is answered as already recorded. Found by the sync right
            after the append, the ingest is answered as stored (its decisions appended
            then); that sync finding an earlier batch of this process's (a request whose
            append raised before, tried at the same ledger size) takes it and tries
            again.
        """
        check_returns(items, "returns")
        with self._computation():
            for _ in range(_RETRIES):
                with self._lock:
                    self.sync()
                    book = self._book(name)  # a 404 or a 409 first, whatever waits
                    fresh = self._fresh(book, items)
                    if self._undecided:  # appended first (a resend's duplicates too)
                        waiting = len(self._undecided)
                        failed = self._record_undecided()
                        if failed is not None:
                            raise _unrecorded(failed, (
                                f"nothing of this request was stored: the observers' "
                                f"{waiting} decisions on beats this server process stored "
                                "before go first, and still cannot be appended"),
                                "send it again later")
                        book = self._book(name)  # (their append synced)
                        fresh = self._fresh(book, items)
                    if not fresh:
                        return [Ingested(name, it.as_of, book.seq_of(it.as_of), True)
                                for it in items]
                    trial, trial_from = book.clone(), book.seq
                    # they change only with this portfolio's beats: the append below checks
                    # that it has not moved, so they still hold then
                    instructions = self.observing.instructions(name)
                batch, reports, timed = run_beats(trial, fresh, instructions, key_id,
                                                  request_id)
                with self._lock:
                    try:
                        rows = self._append_unless_moved(name, book, trial_from, batch,
                                                         trial, reports, timed)
                    except Exception as exc:
                        pending = self._pending(trial)
                        now = self._landed_now(name)
                        if now is not None and now is not trial and (
                                now is not book or book.seq != trial_from):
                            # an earlier batch of this process adopted (its append raised
                            # too), or another process's beat: the loop looks again
                            continue
                        if now is not trial:  # not landed, or not known yet: the next
                            if isinstance(exc, LedgerUnreachable) and exc.landed:  # sync
                                # looks for it, unless the sync proved it did not land
                                # (other rows at its place: its batch dropped)
                                raise _maybe_stored(exc, not_landed=pending and now is not
                                                    None and not self._pending(trial)
                                                    ) from exc
                            raise
                        # the commit landed, its answer lost: stored by this process
                        failed = self._record_undecided()
                        if failed is not None:
                            raise self._undecided_error(name, reports, failed) from None
                        return [Ingested(name, it.as_of, trial.seq_of(it.as_of),
                                         it not in fresh) for it in items]
                    if rows is None:
                        continue  # another process beat this portfolio meanwhile: again
                    # decisions on earlier beats synced in since the copy (another
                    # process's second append) are kept
                    trial.decisions = book.decisions.copy()
                    self._commit(name, trial, reports, timed, rows)
                    return [Ingested(name, it.as_of, trial.seq_of(it.as_of),
                                     it not in fresh) for it in items]
        raise SwarmVarError(_KEPT_CHANGING)

    def _append_unless_moved(self, name: str, book: Book, seq: int,
                             batch: Sequence[tuple[EntryKind, Mapping[str, Any]]],
                             trial: Book, reports: Sequence[BeatReport],
                             timed: Sequence[tuple[int, float]]) -> list[Row] | None:
        """Append the beats computed on a copy of ``book`` (at beat ``seq``; the copy is
        ``trial``, the beats' ``reports`` and ``timed``) while it is still portfolio
        ``name``'s, at that beat: their stored rows, or None when the portfolio moved
        (compute them again; a read's sync may have moved it already). Another process's
        append to any other portfolio fails the compare-and-append only: sync, check
        again, append again. An append that raises and may have landed
        (:func:`_may_have_landed`: a lost COMMIT's answer, or an error the desk does not
        know) is noted (:attr:`_landings`, beside the batches noted at the same ledger
        size, at most :data:`_MAX_LANDINGS`: the oldest dropped, logged): the next sync
        tells whether it landed. One that certainly did not (the store's own errors: a
        full disk, a server out of reach before the COMMIT, ...) is not noted. Under the
        desk's lock."""
        entries = [(k, canonical_data(d)) for k, d in batch]
        for _ in range(_RETRIES):
            if self._books.get(name) is not book or book.seq != seq:
                return None
            at = self._seen
            try:
                rows = self._append(entries)
            except Exception as exc:
                if _may_have_landed(exc):
                    self._note_landing(_Landing(
                        name, book, seq, trial, tuple(reports), tuple(timed), at,
                        tuple((k.value, text) for k, text in entries)))
                raise
            if rows is not None:
                return rows
            self.sync()
        raise SwarmVarError(_KEPT_CHANGING)

    def _note_landing(self, landing: _Landing) -> None:
        """Keep ``landing`` beside the batches noted at its ledger size (those at another
        size never land), at most :data:`_MAX_LANDINGS`: the oldest is dropped, with a
        warning (should it have landed, its beats are replayed as another process's and
        its decisions never made). Under the desk's lock."""
        kept = (*(p for p in self._landings if p.at == landing.at), landing)
        for dropped in kept[:-_MAX_LANDINGS]:
            log.warning("a batch of beats of %r whose append may have landed (beats %d to "
                        "%d, at ledger size %d) is no longer looked for: %d are kept at one "
                        "size; should it have landed, its beats are replayed as another "
                        "process's and the observers' decisions on them are not made",
                        dropped.name, dropped.reports[0].seq, dropped.reports[-1].seq,
                        dropped.at, _MAX_LANDINGS)
        self._landings = kept[-_MAX_LANDINGS:]

    def _pending(self, trial: Book) -> bool:
        """True if the batch whose beats made ``trial`` is among :attr:`_landings` (its
        append may have landed, not known yet). Under the desk's lock."""
        return any(p.trial is trial for p in self._landings)

    def _landed_now(self, name: str) -> Book | None:
        """After an append of beats of portfolio ``name`` raised: one sync, then the
        portfolio's book - the batch's own book when the sync found it landed (adopted as
        this process's by :meth:`_adopt`, its decisions waiting), another when it found an
        earlier batch of this process's landed, or another process's beats - or None when
        the sync failed too (the next sync looks again). Under the desk's lock."""
        try:
            self.sync()
        except Exception as exc:  # noqa: BLE001 - the append's own error is the answer
            log.warning("the ledger could not be read after a failed append of beats (%r); "
                        "the next sync looks for them", exc)
            return None
        return self._books.get(name)

    def _commit(self, name: str, trial: Book, reports: Sequence[BeatReport],
                timed: Sequence[tuple[int, float]], rows: Sequence[Row]) -> None:
        """The appended beats' book becomes the portfolio's; the observers see every beat
        (and checkpoint) before the decisions' append syncs in other processes' later
        beats; then the callbacks. Under the desk's lock."""
        self._books[name] = trial
        decided = self._decide(name, trial, reports, timed, rows)
        failed = self._record_undecided()
        self._announce(name, trial, reports, decided)
        if failed is not None:  # the beats are stored: say so, and what is not
            raise self._undecided_error(name, reports, failed)

    def _decide(self, name: str, trial: Book, reports: Sequence[BeatReport],
                timed: Sequence[tuple[int, float]], rows: Sequence[Row]
                ) -> list[tuple[Decision, ...]]:
        """The observers see the stored beats of portfolio ``name`` (``trial``, its book
        now) and checkpoint; their decisions join the book's and wait for their append
        (:attr:`_undecided`): each beat's decisions. Under the desk's lock."""
        decided: list[tuple[Decision, ...]] = []
        new: list[_Waiting] = []
        for report, (at, seconds) in zip(reports, timed, strict=True):
            writable = self._writable(self.observing.observe(report, seconds))
            self.observing.checkpoint(name, report.seq, rows[at])
            decisions = tuple(w.decision for w in writable)
            trial.decisions.extend(decisions)
            decided.append(decisions)
            new.extend(writable)
        if new:
            self._undecided.extend(new)
            self._flush_left = self.flush_tries  # the timer's tries count from these
        return decided

    def _announce(self, name: str, trial: Book, reports: Sequence[BeatReport],
                  decided: Sequence[tuple[Decision, ...]]) -> None:
        """The callbacks on the stored beats (:meth:`subscribe`, :meth:`watch`)."""
        for report, decisions in zip(reports, decided, strict=True):
            self._notify(name, trial, report.seq)
            for cb in self._on_report:
                cb(report, decisions)

    def _undecided_error(self, name: str, reports: Sequence[BeatReport],
                         failed: SwarmVarError) -> SwarmVarError:
        """What a write whose beats of ``name`` were stored, but not their decisions (their
        append met ``failed``), is answered with."""
        first, last = reports[0].seq, reports[-1].seq
        beats = f"beat {first}" if first == last else f"beats {first} to {last}"
        return _unrecorded(failed, (
            f"the returns were stored ({beats} of {name!r}), but not the observers' "
            f"{len(self._undecided)} decisions on them"),
            f"this server process keeps the decisions and appends them "
            f"{self._tries_again()}: a resend of the same returns to it is answered as "
            "already recorded and appends them; a resend reaching another worker or "
            "replica appends nothing, and a restart before loses them from the ledger "
            "(the arbiter's state is the same, replayed from the beats)")

    def _adopt(self, landing: _Landing, rows: Sequence[Row]) -> None:
        """The beats of ``landing`` found in the ledger (``rows``, their text the same):
        stored by this process, whose append's answer was lost. Their book becomes the
        portfolio's (decisions synced in since the copy kept), the observers decide on
        them as on beats just appended (the decisions wait: appended by the ingest that
        found them, the next ingest, the timer or the shutdown; the timer set here is
        stopped once they are appended), and the callbacks run; never replayed as another
        process's. Under the desk's lock, in :meth:`sync`."""
        name, trial = landing.name, landing.trial
        trial.decisions = landing.book.decisions.copy()
        self._books[name] = trial
        decided = self._decide(name, trial, landing.reports, landing.timed, rows)
        first, last = landing.reports[0].seq, landing.reports[-1].seq
        log.warning("beats %d to %d of %r, whose append raised, are in the ledger: stored "
                    "by this process (its answer was lost); the observers decide on them "
                    "now", first, last, name)
        self._announce(name, trial, landing.reports, decided)
        self._schedule_flush()

    def _writable(self, decisions: tuple[Decision, ...]) -> list[_Waiting]:
        """``decisions`` encoded once (their entries' text, and the observer that made
        each), but those whose entry can never be written (a non-finite signal, over the
        entry size limit: :func:`~swarmvar.ledger.entry.canonical_data` refuses it), each
        logged and counted as its observer's fault, and then dropped: kept, it would wait
        before every later ingest, refused each time."""
        out: list[_Waiting] = []
        for d in decisions:
            author = self.observing.author(d)
            try:
                text = canonical_data(decision_record(d))
            except InvalidEntry as exc:
                self.observing.fault(author, (
                    f"its decision on beat {d.seq} of {d.portfolio} cannot be written to the "
                    f"ledger ({exc}); it is dropped"))
                continue
            out.append(_Waiting(d, text, author))
        return out

    def _tries_again(self) -> str:
        """When this desk tries again to append the decisions waiting (the words of its
        answers and logs): its timer is not set again once it is shut down."""
        if self._stopped:
            return ("only at its next ingest of any portfolio (the desk is shut down: no "
                    "timer and no shutdown try again)")
        return (f"at its next ingest of any portfolio, every {self.flush_every:g} s on its "
                f"own (at most {self.flush_tries} times) and at its shutdown")

    def _record_undecided(self, *, quiet: bool = False) -> SwarmVarError | None:
        """Append the decision entries waiting (:attr:`_undecided`): None when they are
        in the ledger (or none waited), else the error their append met (logged unless
        ``quiet``; they wait for the next try, and the timer is set unless the desk is shut
        down). They are dropped only when the ledger refuses their entries
        (:class:`InvalidEntry`, :class:`PayloadTooLarge`: not met, they are checked when
        made), each counted as the fault of the observer that made it and taken out of
        its portfolio's decisions in memory (served as the ledger holds them); on any
        other error (the ledger unavailable, its disk at fault, its PostgreSQL server out
        of reach, it kept changing, said damaged, or a sync that failed) they wait. Once
        none wait, the timer is stopped (one an adoption set, :meth:`_adopt`).

        An append whose commit is uncertain (the connection lost after the server took
        it) is not repeated: each try's sync recognises the waiting entries that landed
        since the first try (their text, in :meth:`_absorb`) and takes them off the
        waiting list. Under the desk's lock."""
        if not self._undecided:
            return None
        failed: SwarmVarError
        try:
            self._append_retrying(self._waiting_batch)
        except (InvalidEntry, PayloadTooLarge) as exc:  # a retry never passes: dropped
            dropped, self._undecided = self._undecided, []
            self._undecided_from = None
            log.error("the observers' %d decisions on stored beats cannot be written (%s); "
                      "they are dropped", len(dropped), exc)
            self._forget(dropped)
            return None
        except SwarmVarError as exc:
            failed = exc
        except sqlite3.OperationalError as exc:
            failed = SwarmVarError(str(exc))
        else:
            self._undecided, self._undecided_from = [], None
            self._flush_left = self.flush_tries
            self._stop_timer()
            return None
        if not self._undecided:  # (a sync found them all landed before it failed)
            self._undecided_from = None
            self._stop_timer()
            return None
        if not quiet:
            log.error("the observers' %d decisions on stored beats could not be appended "
                      "(%s); this server process tries again %s", len(self._undecided),
                      failed, self._tries_again())
        self._schedule_flush()
        return failed

    def _waiting_batch(self) -> list[tuple[EntryKind, _Data]]:
        """The waiting decisions' entries to append now (after a sync), noting the ledger
        size of their first try: rows from there on may be theirs (:meth:`_absorb`)."""
        if self._undecided and self._undecided_from is None:
            self._undecided_from = self._seen
        return [(EntryKind.DECISION, w.text) for w in self._undecided]

    def _forget(self, dropped: Sequence[_Waiting]) -> None:
        """Count each dropped decision as its observer's fault and take it out of its
        portfolio's decisions in memory (the ledger lacks it)."""
        for w in dropped:
            self.observing.fault(w.author, (
                f"its decision on beat {w.decision.seq} of {w.decision.portfolio} was "
                "dropped"))
            book = self._books.get(w.decision.portfolio)
            if book is not None:
                kept = [d for d in book.decisions if d is not w.decision]
                book.decisions.clear()
                book.decisions.extend(kept)

    def _schedule_flush(self) -> None:
        """Set the timer that tries the waiting decisions' append again in
        :attr:`flush_every` seconds, unless one is set, none wait, its tries are spent
        (:attr:`flush_tries` in a row), or the desk is shut down. Under the desk's lock."""
        if self._timer is not None or not self._undecided or self._stopped:
            return
        if self._flush_left <= 0:
            log.error("the observers' %d decisions on stored beats still cannot be appended "
                      "after %d tries of the timer; the next ingest of any portfolio and "
                      "the shutdown try again", len(self._undecided), self.flush_tries)
            return
        self._flush_left -= 1
        timer = threading.Timer(self.flush_every, self._flush_on_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _stop_timer(self) -> None:
        """Cancel the timer, none waiting for it. Under the desk's lock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush_on_timer(self) -> None:
        with self._lock:
            # a timer that fired while a newer one was set (this one waited for the lock)
            # leaves the newer one's reference, which the shutdown cancels
            if self._timer is threading.current_thread():
                self._timer = None
            if self._stopped:
                return
            try:
                self._record_undecided()  # sets the timer again when it fails
            except Exception as exc:  # noqa: BLE001 - a ledger closed under it: it stops
                log.error("the timer's append of the observers' %d waiting decisions "
                          "failed (%r); it stops (the next ingest and the shutdown try "
                          "again)", len(self._undecided), exc)

    def flush_undecided(self) -> bool:
        """Append the decisions kept after a failed append now: True when none wait
        (appended, or none waited), False when they still cannot be appended (logged)."""
        with self._lock:
            return self._record_undecided() is None

    def shutdown(self) -> None:
        """Stop the timer for good and try once more to append the decisions kept after a
        failed append (the app's lifespan calls it at the server's shutdown); those that
        still cannot be appended are lost from the ledger (logged; the arbiter's state is
        the same, replayed from the beats) unless this desk ingests again: the ledger
        stays open (its caller closes it) and the desk still answers, but sets no timer
        again."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            failed = self._record_undecided(quiet=True)
            if failed is not None:
                log.error("the observers' %d decisions on stored beats are lost from the "
                          "ledger: it could not be appended to at the shutdown (%s)",
                          len(self._undecided), failed)

    def note(self, kind: str, details: Mapping[str, Any]) -> int:
        """Record an administrative action (``action`` entry); return its index.

        Decisions kept after a failed append (:meth:`ingest`) are not appended here (the
        action is stored whatever waits)."""
        batch = [(EntryKind.ACTION, {"type": kind, "details": dict(details)})]
        with self._lock:
            return self._append_retrying(batch)

    def landed_note(self, kind: str, details: Mapping[str, Any]) -> int | None:
        """Right after :meth:`note` of ``kind``/``details`` raised an error with which it
        may have landed (:func:`_may_have_landed`; its compare-and-append at the size last
        seen): the note's index when the ledger holds it there (the same canonical text:
        another process's entry at that index is not it), else None. Syncs first; the
        look (:meth:`~swarmvar.ledger.Ledger.holds`) waits for an append still
        committing, so None means it did not land.

        Raises
        ------
        SwarmVarError
            The ledger cannot be read now (what :meth:`sync` or ``holds`` raises: a lock
            wait past its timeout too): whether it landed is not known.
        """
        text = canonical_data({"type": kind, "details": dict(details)})
        with self._lock:
            at = self._seen  # the failed append's size: it never advances on an error
            self.sync()
            return at if self.ledger.holds(at, EntryKind.ACTION, text) else None

    def _append_retrying(self, batch: Sequence[tuple[EntryKind, _Data]]
                         | Callable[[], Sequence[tuple[EntryKind, _Data]]]) -> int:
        """Sync, then compare-and-append ``batch`` (or ``batch()``: what is to be appended
        after that sync), again after another process appended first: the index of its
        first entry (nothing is appended when it is empty). Under the desk's lock.

        Raises
        ------
        SwarmVarError
            Another process appended first :data:`_RETRIES` times in a row; or the sync's
            or the append's own error.
        """
        for _ in range(_RETRIES):
            self.sync()
            at = self._seen
            entries = batch() if callable(batch) else batch
            if not entries or self._append(entries) is not None:
                return at
        raise SwarmVarError(_KEPT_CHANGING)

    def _fresh(self, book: Book, items: Sequence[DatedReturn]) -> list[DatedReturn]:
        fresh: list[DatedReturn] = []
        for it in items:
            old = book.recorded.get(it.as_of)
            if old is not None:
                if old != it.value:
                    raise ConflictingInput(
                        f"{book.name} already has a return for {it.as_of} ({old!r}), not "
                        f"{it.value!r}; recorded returns are never changed")
                continue
            if it.as_of <= book.last_date or (fresh and it.as_of <= fresh[-1].as_of):
                raise ConflictingInput(
                    f"dates out of order: {book.name}'s last recorded return is dated "
                    f"{book.last_date}, and {it.as_of} is not recorded; send later dates only")
            fresh.append(it)
        return fresh

    def _append(self, batch: Sequence[tuple[EntryKind, _Data]]) -> list[Row] | None:
        """The batch's stored rows, or None when another process appended first (an
        entry's data given as text is its canonical JSON, encoded before)."""
        stamp = format_timestamp(self._clock())
        drafts = [(k.value, d if isinstance(d, str) else canonical_data(d), stamp)
                  for k, d in batch]
        rows = self.ledger.store.append(drafts, if_size=self._seen)
        if rows is None:
            return None
        self._seen += len(rows)
        # appended at the size failed appends of beats were tried at: those never land
        self._landings = ()
        return rows

    # --- the runtime's steps, in order -----------------------------------------

    def _notify(self, name: str, book: Book, seq: int) -> None:
        point = book.point(seq)
        if point is not None:
            for cb in self._on_beat:
                cb(name, point)

    # --- sync: absorb what other processes recorded ---------------------------

    def sync(self) -> int:
        """Read ledger entries appended since the last look; return how many.

        Another process's beat is replayed here with the quarantine and
        factors it recorded (the same numbers), and shown to the observers;
        its decisions are read back, not decided again. The rows are read in
        chunks; each absorbed row is counted as seen at once, so a read that
        fails on a later chunk (a lock held past the timeout: the request is
        answered 503 and retried) resumes after the last row absorbed, never
        applying a beat twice. Beats of this process whose append raised are looked for
        first (:meth:`_look_for_landing`): found, they are taken as this process's, not
        replayed.

        Raises
        ------
        sqlite3.OperationalError, LedgerCorrupted
            The ledger cannot be read now, or is damaged: the rows absorbed before
            stay absorbed.
        """
        with self._lock:
            size = self.ledger.store.size()
            if size == self._seen:
                return 0
            start = self._seen
            if self._landings:
                self._look_for_landing(size)
            for row in self.ledger.store.rows(self._seen, size):
                self._absorb(row)
                self._seen = int(row[0]) + 1
            self._seen = size
            return size - start

    def _look_for_landing(self, size: int) -> None:
        """The batches of beats whose append raised (:attr:`_landings`, all tried at
        ledger size ``at``), the ledger grown to ``size`` since: its rows from ``at`` on
        are one of them (the same kinds and text) when its commit landed, adopted as this
        process's (:meth:`_adopt`) and counted as seen; else they are another process's,
        and none of those batches ever lands (compare-and-append at ``at``). Looked at
        once; a read that fails leaves them for the next sync. Under the desk's lock."""
        landings, self._landings = self._landings, ()
        at = landings[0].at
        got: dict[int, list[tuple[str, str]]] = {}
        rows: dict[int, list[Row]] = {}
        if self._seen == at:
            for landing in landings:
                end = at + len(landing.entries)
                if size >= end and end not in rows:
                    try:
                        rows[end] = list(self.ledger.store.rows(at, end))
                    except BaseException:
                        self._landings = landings  # the next sync looks again
                        raise
                    got[end] = [(r[2], r[3]) for r in rows[end]]
        # The rows' text alone says the batch is this process's: no check that the
        # portfolio's book is still the landing's. It always is here: a book is replaced
        # only by an append that landed (_commit, create: _append clears the landings), by
        # _adopt (below, once) or by _absorb (after this look), and its seq moves only on
        # the copies a beat computes on.
        for landing in landings:
            end = at + len(landing.entries)
            if got.get(end) == list(landing.entries):
                self._seen = end
                self._adopt(landing, rows[end])
                return

    def _absorb(self, row: Row) -> None:
        kind, text = row[2], row[3]
        if kind == EntryKind.DECISION.value:
            if self._undecided_from is not None and int(row[0]) >= self._undecided_from:
                for i, w in enumerate(self._undecided):
                    if w.text == text:  # waiting here, landed by an uncertain commit:
                        del self._undecided[i]  # in the book already, not appended again
                        if not self._undecided:
                            self._undecided_from = None
                        return
            d = json.loads(text)
            book = self._books.get(d.get("portfolio"))
            if book is not None:
                book.decisions.append(decision_from(d))
            return
        if kind != EntryKind.ACTION.value or '"portfolio.create"' not in text \
                and '"tick"' not in text:
            return
        data = json.loads(text)
        d = data.get("details", {})
        if data.get("type") == "portfolio.create":
            book = open_book(d, self.home)
            self._books[book.name] = book
            if self._startup:  # the observers resume from the home's checkpoint
                self.observing.restore(book.name, book.agents)
            assert book.last is not None
            book.record(book.last, (), None)
            self._notify(book.name, book, 0)
        elif data.get("type") == "tick" and d.get("portfolio") in self._books:
            book = self._books[d["portfolio"]]
            it = DatedReturn(date.fromisoformat(d["as_of"]), float(d["return"]))
            seq = int(d["seq"])
            outcome = book.swarm.beat(BeatInput(
                seq, midnight(it.as_of), it.value, frozenset(d.get("excluded", [])),
                {k: float(v) for k, v in d.get("factors", {}).items()}))
            book.advance(it, seq)
            book.record(outcome.report, (), it.value)
            self.observing.observe(outcome.report, recorded_seconds(d.get("beat_seconds")),
                                   again=True)
            self._notify(book.name, book, seq)


#: Whether an append that raised may have landed: the ledger's one rule
#: (:func:`swarmvar.errors.may_have_landed`), shared with a variant change's note.
_may_have_landed = may_have_landed


def _unrecorded(exc: SwarmVarError, what: str, then: str) -> SwarmVarError:
    """The error a write is answered with when decisions on stored beats could not be
    appended (``exc``): ``what`` was stored and was not, the cause, and what to do
    (``then``). A :class:`LedgerUnwritable` stays one (the disk is at fault: a 503), and
    a :class:`LedgerUnreachable` one (its PostgreSQL server out of reach: a 503), and a
    :class:`LedgerFailed` one (PostgreSQL refused the request: a 503), each message
    replaced by these words (its own says nothing was written, or that the append may
    have landed: the waiting decisions that did are recognised, not appended twice); a
    damaged ledger stays :class:`LedgerCorrupted` (a 500); any other is a
    :class:`SwarmVarError` (503, retry). The store's own "nothing was written" is left out
    of the cause."""
    if isinstance(exc, LedgerUnwritable):
        remedy = LedgerUnwritable.REMEDY.get(exc.cause, "retry later")
        err = LedgerUnwritable(exc.path, exc.cause, exc.detail, exc.doing)
        err.args = (f"{what}: the ledger {exc.path} cannot be appended to: {exc.cause} "
                    f"({exc.detail}); nothing says the ledger is damaged (its disk is at "
                    f"fault: do not move it away): {remedy}; {then}",)
        return err
    if isinstance(exc, LedgerUnreachable):
        said = f" ({exc.detail})" if exc.detail else ""
        lost = (f"the connection to the ledger database was lost while they were committed"
                f"{said}: some may have landed, which this server process recognises (it "
                "does not append them twice)" if exc.landed else
                f"the ledger database cannot be appended to now: its PostgreSQL server "
                f"cannot be reached{said}")
        out = LedgerUnreachable(exc.doing, exc.detail, exc.where, exc.landed)
        out.args = (f"{what}: {lost}; nothing says the ledger is damaged (do not move it "
                    f"away): check that its PostgreSQL server is up; {then}",)
        return out
    if isinstance(exc, LedgerFailed):
        failed = LedgerFailed(exc.doing, exc.detail, exc.where)
        failed.args = (f"{what}: {_cause(exc)}; {then}",)
        return failed
    if isinstance(exc, LedgerCorrupted):
        return LedgerCorrupted(f"{what}: {_cause(exc)}; {then}")
    return SwarmVarError(f"{what}: {_cause(exc)}; {then}")


def _cause(exc: SwarmVarError) -> str:
    """``exc``'s message without its "nothing was written" (the store's words on its own
    append, which the answer's words on what was stored replace)."""
    return re.sub(r"; nothing was written(?: to it)?", "", str(exc))


def _maybe_stored(exc: LedgerUnreachable, *, not_landed: bool = False
                  ) -> LedgerUnreachable:
    """The answer to an ingest whose beats' append lost its connection while it was
    committed (``exc``, ``landed``) and that a sync right after did not find: what an HTTP
    client can do (the store's own "read the ledger's head" is the desk's to do). Still a
    :class:`LedgerUnreachable` (503 with ``Retry-After``): with ``landed`` when it may
    have landed; without, saying the returns were not stored, when ``not_landed`` (the
    sync found other rows at its place: a compare-and-append there never lands)."""
    said = f" ({exc.detail})" if exc.detail else ""
    lost = (f"the connection to the ledger database was lost while the returns' beats "
            f"were committed{said}")
    if not_landed:
        err = LedgerUnreachable(exc.doing, exc.detail, exc.where, False)
        err.args = (f"{lost}, and a read of the ledger right after found other entries "
                    "where they would be: the returns were not stored; resend the same "
                    "returns. Nothing says the ledger is damaged (do not move it away): "
                    "check that its PostgreSQL server is up",)
        return err
    err = LedgerUnreachable(exc.doing, exc.detail, exc.where, exc.landed)
    err.args = (f"{lost}: the returns may have been stored; resend the same returns: if "
                "they were, the resend answers already recorded. Nothing says the ledger "
                "is damaged (do not move it away): check that its PostgreSQL server is up",)
    return err
