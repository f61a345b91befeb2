"""The living swarm: many portfolios beating on an executor, ledgered, checkpointed, resumable.

:class:`Swarm` is what ``swarmvar run`` drives and what user code embeds:
``start(history)`` fits (or resumes), ``step(tick)`` runs one beat,
``run(source)`` the loop. Per tick it

1. checks the tick (:mod:`.ticks`); a bad one is refused with an
   :class:`~swarmvar.errors.InvalidTick`, counted and ledgered as a rejection;
2. runs the portfolio's beat on the executor (:mod:`.beat`), with the
   observers' quarantine and weight factors, due refit swaps and requests;
3. hands the report to the observers (the arbiter) and records their decisions;
4. appends the beat — signed estimates, consensus (with the tick, its
   sequence number and the source's cursor), role records and decisions —
   to the ledger in one transaction (or one per ``ledger_batch`` beats);
5. when a portfolio's sequence number reaches a multiple of
   ``checkpoint_every``, writes its state to the evolution state store in one
   atomic step, after flushing the ledger.

A host that dies (a worker process or Ray actor killed) loses its
portfolios only: they are restored from their last checkpoint and caught up
on the beats logged since it in a background thread, while the other hosts'
portfolios keep beating; ticks for the restoring portfolios are queued
(bounded, :class:`~swarmvar.errors.RestoreQueueFull`) and beaten in order —
through the observers and into the ledger, exactly once — as soon as their
host is back. Meanwhile the swarm serves their last consensus, marked stale
(availability 0/n, the interval widened by the partition rule's staleness
term) — unless the portfolios are spread over hosts (``spread=K``,
:mod:`.spread`): then a lost host takes only one group of each portfolio's
agents, the portfolio keeps beating on the others (m/n, degraded, widened)
and only the lost groups restore and catch up (their missed estimates
ledgered late, once).

Recovery: :meth:`Swarm.start` finds each portfolio's last checkpoint,
restores it, and replays (without recording again) the beats the ledger holds
after it, from the ticks written in those beats; a source then resumes after
the last recorded tick. So every tick is in the ledger once, and the forecasts equal
an uninterrupted run's. Observers with a state (the arbiter) are checkpointed
with the portfolio and re-fed the replayed beats with their recorded beat
times, so their decisions after a restart equal an uninterrupted run's too.

Pacing: ``run(source, pace=cadence)`` starts each beat on the cadence's
next pulse boundary (:class:`Pacer`, the arbiter's ``Cadence``); the beat's
measured time is what the observers' PID gets, and a beat past the budget
is marked late in its report and its ledger record.

Where the parts are: this module holds :class:`Swarm` (its parameters, its
state, its lifecycle, refused ticks) and how observers are attached
(:class:`Attached`); the swarm's methods are grouped by concept in
:mod:`._beating` (the beat), :mod:`._records` (its ledger records),
:mod:`._recovery` (start, checkpoints, resume), :mod:`._restoring` (lost hosts)
and :mod:`._running` (the loop), each written as functions of ``self: Swarm``
and bound in the class body; :mod:`.observers` holds the observer and pacer
protocols. The names are all importable from here, as before; but patch
constants where they are defined (``_restoring.RESTORE_ATTEMPTS``,
``_beating.SANDBOX_BREAKER``, ``_records.RUN_KEY``, ...; ``MAX_REFUSAL_PATTERNS``
here): the code reads each through its defining module, so a patch of this
module's re-exported binding reaches no code.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..canonical import Canonical
from ..consensus import Policy
from ..errors import InvalidParameter, InvalidTick
from ..evolution import Database, StateConfig, StateStore
from ..ledger import EntryKind, Ledger
from ..models import DEFAULT_AGENTS, canonical_name
from ..types import BeatReport, Decision
from . import _beating, _records, _recovery, _restoring, _running
from . import attribution as _attribution
from ._beating import SANDBOX_BREAKER as SANDBOX_BREAKER
from ._records import OBSERVER_PREFIX as OBSERVER_PREFIX
from ._records import RUN_KEY as RUN_KEY
from ._records import STATE_PREFIX as STATE_PREFIX
from ._records import _BeatEntries, _tick_repr
from ._recovery import _forecasts_in as _forecasts_in
from ._restoring import RESTORE_ATTEMPTS as RESTORE_ATTEMPTS
from ._restoring import RESTORING as RESTORING
from ._restoring import Restoring as Restoring
from ._restoring import _Queued, _Recovery
from ._running import RunSummary as RunSummary
from .beat import BeatInput, PortfolioConfig
from .consensus import SWARM_POLICY
from .executors import Executor, LocalExecutor
from .observers import BeatObserver as BeatObserver
from .observers import Pacer as Pacer
from .observers import beat_seconds as beat_seconds
from .observers import observer_instructions as observer_instructions
from .observers import stateful_observers as stateful_observers
from .roles import RefitJob, RefitResult, RoleConfig
from .sandboxing import SandboxSetup
from .spread import SpreadConsensus, check_spread, spread_groups
from .ticks import PortfolioSpec, specs_from

log = logging.getLogger("swarmvar.swarm")


def _reason(exc: BaseException) -> str:
    return type(exc).__name__


#: Spans of a refusal message that differ from tick to tick (names, dates, numbers, line
#: numbers): blanked to group the refusals by reason.
_SPECIFICS = re.compile(r"'[^']*'|\"[^\"]*\"|\d[\d:.+\-T]*|\bnan\b|\binf\b", re.IGNORECASE)


#: Distinct refusal patterns :attr:`Swarm.refusals` keeps; later new ones count together.
MAX_REFUSAL_PATTERNS = 100


def refusal_pattern(message: str) -> str:
    """A refusal's message with what differs from tick to tick blanked (its reason's key)."""
    return _SPECIFICS.sub("…", " ".join(message.split()))


class Swarm:
    """Portfolio swarms on an executor, with a ledger, checkpoints and observers.

    Parameters
    ----------
    portfolios : sequence of PortfolioSpec or names, or mapping name -> {weights|positions}
        The portfolios to run. A resume gives every portfolio of the home's run,
        each with its book (some of them only would lose the others' checkpoints
        and ticks: :class:`~swarmvar.errors.ResumeMismatch`).
    home : path
        Data home: ``ledger.sqlite``, ``evolution.sqlite`` + ``states/``
        (checkpoints), ``keys/agents/`` (the agents' signing keys).
    agents : sequence of str
        Agent names or aliases (default :data:`swarmvar.models.DEFAULT_AGENTS`, the default
        swarm).
    alphas, horizon, window, refit_every, seed
        As in ``swarmvar backtest``: the same values give the same forecasts.
    executor : Executor, optional
        Where the swarms live (default :class:`LocalExecutor` in this process).
    checkpoint_every : int
        A portfolio is checkpointed when its beat sequence number is a multiple
        of this (a schedule fixed by the ticks, the same after any restart). A
        resume keeps the home's (another is a ``ResumeMismatch``).
    ledger_batch : int
        Beats per ledger transaction (1: each beat commits on its own).
    observers : sequence of BeatObserver
        Called after each beat, in order (the arbiter).
    roles : RoleConfig, optional
        Foragers' lag, scouts, builders, guards.
    policy : Policy
        The consensus policy (the swarm's by default).
    fsync : bool
        Flush checkpoints to disk (off only for scratch homes).
    sandbox : SandboxSetup, optional
        Agents in sandboxes (``--sandbox``) and plug-in agents (``--plugin``,
        added after ``agents``, named by their class). A sandbox violation
        holds the agent out of that beat's consensus, is ledgered, and opens
        the agent's ``sandbox:<portfolio>:<agent>`` breaker (:data:`SANDBOX_BREAKER`).
    restore_queue : int
        Ticks a portfolio may queue while its lost host is restored; one more
        raises :class:`~swarmvar.errors.RestoreQueueFull` (``run`` waits for
        the host instead).
    restore_timeout : float
        Seconds :meth:`settle` (and ``close``, ``run``'s end) waits for lost
        hosts to come back.
    catch_up : int, optional
        Queued ticks a restored portfolio beats per :meth:`beat` call (at
        least 2, so that a queue fed one tick a call shrinks); None: all of
        them in the first call after its host is back (the other portfolios
        wait for that one catch-up).
    spread : int
        Agent groups per portfolio, each on its own host (:mod:`.spread`; at
        most the executor's hosts for them to differ): the groups sign, the
        swarm combines, and a lost host leaves the portfolio beating on the
        other groups' agents (availability m/n, degraded, widened). 1 (the
        default): each portfolio whole on one host. Needs ``refit_lag`` 0 and
        no sandbox.
    book_var : callable, optional
        :func:`swarmvar.book_var`, for a book's attribution (:mod:`.attribution`): every
        ``roles.attribute_every`` beats (default ``refit_every``; 0 off) its trailing
        ``window`` of asset returns is attributed off the beat and ledgered as a role
        record; :meth:`attribution` gives the latest. None (the default): no attribution
        (the runtime does not import the face that holds it).
    """

    # a book's attribution (:mod:`.attribution`, set by ``_attr_setup``)
    _book_var: Callable[..., Any] | None
    _rings: dict[str, _attribution.AssetRing]
    _attr_running: dict[tuple[str, int], tuple[_attribution.AttributionJob,
                                               Future[_attribution.BookAttribution] | None]]
    _attr_recorded: set[tuple[str, int]]
    _attributions: dict[str, _attribution.BookAttribution]
    _attr_lost: set[str]
    _attr_pool: ThreadPoolExecutor | None
    # the attribution the one worker was stuck on when a wait timed out (shared by every
    # book: no beat waits again until it ends)
    _attr_stuck: Future[_attribution.BookAttribution] | None
    _asset_rows: dict[tuple[str, datetime], np.ndarray]

    def __init__(
        self,
        portfolios: Sequence[PortfolioSpec | str] | Mapping[str, Any],
        *,
        home: str | Path,
        agents: Sequence[str] = DEFAULT_AGENTS,
        alphas: Sequence[float] = (0.99, 0.975),
        horizon: int = 1,
        window: int = 1000,
        refit_every: int = 20,
        seed: int = 0,
        executor: Executor | None = None,
        checkpoint_every: int = 250,
        ledger_batch: int = 1,
        observers: Sequence[BeatObserver] = (),
        roles: RoleConfig | None = None,
        policy: Policy = SWARM_POLICY,
        fsync: bool = True,
        sandbox: SandboxSetup | None = None,
        restore_queue: int = 10_000,
        restore_timeout: float = 600.0,
        catch_up: int | None = None,
        spread: int = 1,
        book_var: Callable[..., Any] | None = None,
    ) -> None:
        for name, value, low in (("horizon", horizon, 1), ("window", window, 30),
                                 ("refit_every", refit_every, 1),
                                 ("checkpoint_every", checkpoint_every, 1),
                                 ("ledger_batch", ledger_batch, 1), ("seed", seed, 0),
                                 ("restore_queue", restore_queue, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise InvalidParameter(f"{name} must be a whole number >= {low}, not {value!r}")
        if (isinstance(restore_timeout, bool) or not isinstance(restore_timeout, (int, float))
                or not restore_timeout > 0 or not np.isfinite(restore_timeout)):
            raise InvalidParameter(f"restore_timeout must be a positive number of seconds, "
                                   f"not {restore_timeout!r}")
        if catch_up is not None and (isinstance(catch_up, bool) or not isinstance(
                catch_up, (int, np.integer)) or catch_up < 2):
            raise InvalidParameter(f"catch_up must be None (all at once) or a whole number >= 2 "
                                   f"of queued ticks per portfolio and beat, not {catch_up!r}")
        check_spread(spread, hosts=_hosts(executor),
                     refit_lag=(roles or RoleConfig()).refit_lag, sandboxed=sandbox is not None)
        self.specs = specs_from(portfolios)
        names = tuple(canonical_name(a) for a in agents)
        if sandbox is not None:
            names = (*names, *sandbox.plugin_agents)
        if len(set(names)) != len(names):
            raise InvalidParameter(f"agents are given twice: {list(agents)}")
        from ..models.risk import check_alphas

        levels = check_alphas(alphas)
        # every configuration is built (and refused) before the home is created: a refused
        # start leaves no empty home behind (the variant registry is only read if it exists)
        self.home = Path(home)
        self.roles = roles or RoleConfig()
        chosen = _variants(self.home, [n for n in names if sandbox is None
                                       or n not in sandbox.plugin_agents], list(self.specs))
        for p in chosen:
            for n in names:
                chosen[p].setdefault(n, (None, {}))
        self.configs = {
            p: PortfolioConfig(p, names, levels, int(horizon), int(window), int(refit_every),
                               int(seed), str(self.home), self.roles, policy,
                               {a: dict(params) for a, (_, params) in chosen[p].items() if params},
                               {a: vid for a, (vid, _) in chosen[p].items() if vid}, sandbox,
                               book=bool(self.specs[p].assets))
            for p in self.specs
        }
        self.sandbox = sandbox
        self.spread = int(spread)
        #: what the executor hosts: each portfolio, or the groups of a spread portfolio
        self._hosted: dict[str, PortfolioConfig] = {}
        #: spread portfolio -> its groups' hosted names; group -> its portfolio
        self._groups: dict[str, tuple[str, ...]] = {}
        self._owner: dict[str, str] = {}
        #: per group, the seq of the last tick it beat (behind its portfolio while restoring)
        self._gseq: dict[str, int] = {}
        #: spread portfolio -> its consensus, kept here (the groups sign, the swarm combines)
        self._shells: dict[str, SpreadConsensus] = {}
        self._unbegun: dict[str, tuple[np.ndarray, datetime | None]] = {}
        #: hosted unit -> its start's history, until its first checkpoint is stored
        self._fresh: dict[str, tuple[np.ndarray, datetime | None]] = {}
        self._place()
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self.checkpoint_every = int(checkpoint_every)
        self.ledger_batch = int(ledger_batch)
        self.observers = tuple(observers)  # each Attached once (the property's setter)
        #: books' asset rings and attributions (:mod:`.attribution`; checked before the home)
        _attribution._attr_setup(self, book_var)
        try:  # everything above is checked: the home is made only for a start that goes on
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, a read-only disk, no permission
            raise InvalidParameter(f"cannot use {self.home} as the swarm's home: "
                                   f"{exc.strerror or exc}; give a directory you can write "
                                   "(--home on the command line, home= in Python)") from None
        self.ledger = Ledger.open(self.home)
        try:  # a damaged lifecycle database: refused with the ledger closed again
            self._db = Database(self.home)
        except BaseException:
            self.ledger.close()
            raise
        self.states = StateStore(self._db, config=StateConfig(fsync=fsync))
        from ..evolution import SqliteBreakerStorage

        #: the home's circuit breakers (the arbiter's quarantines, sandbox violations)
        self.breakers = SqliteBreakerStorage(self._db)
        #: per portfolio, the credit of optional refits (APPLY_OPTIMIZE) the arbiter's
        #: ``optional_work`` pays for: + optional_work per beat (at most 1), - 1 per refit
        self._optional_credit: dict[str, float] = dict.fromkeys(self.specs, 0.0)
        self.seq: dict[str, int] = dict.fromkeys(self.specs, 0)
        self.last_as_of: dict[str, datetime | None] = dict.fromkeys(self.specs)
        self._latest: dict[str, BeatReport] = {}
        #: the last beat's report (``_latest`` may be a stale one served while restoring)
        self._beaten: dict[str, BeatReport] = {}
        #: per portfolio, the last beat's compute split: agents (update + forecast), refit,
        #: combine (sign + consensus), in seconds
        self.timings: dict[str, dict[str, float]] = {}
        self._resume_as_of: dict[str, datetime | None] = {}
        self.cursor: Any = None
        self.rejected: dict[str, int] = {}
        #: Refused ticks by :func:`refusal_pattern`: (count, the first such message).
        self.refusals: dict[str, tuple[int, str]] = {}
        self._pending: dict[tuple[str, str, int], tuple[RefitJob, Future[RefitResult] | None]] = {}
        self._requests: dict[str, list[tuple[str, str]]] = {p: [] for p in self.specs}
        self._batch: list[tuple[EntryKind, Mapping[str, Any] | Canonical]] = []
        #: give this to an observer as its ledger: its entries join the beat's transaction
        #: (written once with the beat, never without it, even after kill -9)
        self.beat_entries = _BeatEntries(self._batch, self.flush)
        self._pace: Pacer | None = None
        #: the source a resume's check handed the ledger's refusals (``check_source``) and
        #: those refusals; during a run on that source, ``_again`` (``_refuse``)
        self._rereads: tuple[Any, _recovery._RefusedAgain] | None = None
        self._again: _recovery._RefusedAgain | None = None
        self._batched_beats = 0
        self._marks: dict[str, Any] = {}
        #: per portfolio, the beats since its checkpoint (None: a checkpoint's rebase that was
        #: never stored, met while replaying the ledger): what a restored host replays
        self._log: dict[str, list[BeatInput | None]] = {p: [] for p in (
            *self.specs, *self._owner)}
        self.restore_queue = int(restore_queue)
        self.restore_timeout = float(restore_timeout)
        self.catch_up = None if catch_up is None else int(catch_up)
        #: lost hosts being restored in the background (portfolio -> its host's recovery)
        self._recoveries: dict[str, _Recovery] = {}
        self._losses: dict[str, int] = {}  # hosts lost in a row, per portfolio (beat resets)
        #: ticks waiting for a restoring portfolio's host, in arrival order
        self._queues: dict[str, deque[_Queued]] = {}
        self._enqueued = 0
        #: the source's cursor after the last tick handed to beat()
        self._read_cursor: Any = None
        #: the plug-ins' source digests taken as the swarm started (``_recovery.start``)
        self._plugin_digests: dict[str, dict[str, Any]] | None = None
        self._started = False
        self._closed = False


    def _place(self) -> None:
        """What the executor hosts, from ``configs``: each portfolio, or the groups of a
        spread portfolio (with their consensus shells); again when a resume takes its
        checkpoint's variants (:func:`._recovery._adopt_variants`)."""
        self._hosted, self._groups, self._owner, self._gseq, self._shells = {}, {}, {}, {}, {}
        for p, cfg in self.configs.items():
            if self.spread == 1:
                self._hosted[p] = cfg
                continue
            groups = spread_groups(cfg, self.spread)
            clash = [g.portfolio for g in groups if g.portfolio in self.specs]
            if clash:
                raise InvalidParameter(f"portfolio names {clash} clash with the groups of "
                                       f"{p!r}; rename them")
            self._groups[p] = tuple(g.portfolio for g in groups)
            for g in groups:
                self._hosted[g.portfolio] = g
                self._owner[g.portfolio] = p
                self._gseq[g.portfolio] = 0
            self._shells[p] = SpreadConsensus(dataclasses.replace(cfg, spread=self.spread))

    # --- lifecycle -----------------------------------------------------------------

    @property
    def observers(self) -> tuple[BeatObserver, ...]:
        """Who watches the beats (the arbiter), in order."""
        return self._observers

    @observers.setter
    def observers(self, value: Sequence[BeatObserver]) -> None:
        self._observers = tuple(value)
        self._attached = tuple(Attached.of(obs) for obs in self._observers)

    def add_observer(self, observer: BeatObserver) -> None:
        """Watch the next beats too (an arbiter built on this swarm's ledger and breakers)."""
        self.observers = (*self.observers, observer)

    def portfolios(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def latest(self, portfolio: str) -> BeatReport | None:
        """The last beat's report of ``portfolio`` (None before its first beat)."""
        if portfolio not in self.specs:
            from ..errors import UnknownPortfolio

            raise UnknownPortfolio(f"no portfolio {portfolio!r}; this swarm runs "
                                   f"{', '.join(self.specs)}")
        return self._latest.get(portfolio)

    def __enter__(self) -> Swarm:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Catch up restoring portfolios, flush the ledger batch, stop the executor and stores.

        Lost hosts still restoring are waited for (up to ``restore_timeout``)
        and their queued ticks beaten; if that fails, the ticks stay
        unrecorded and a resume reads them again (the recorded cursor stops
        before the first of them). Attributions still running are waited for
        (up to ``restore_timeout``); a Ctrl-C in that wait stops it, and the
        batch is still flushed and everything closed before it goes on (a
        resume submits the unlanded attributions again).
        """
        if self._closed:
            return
        try:
            if (self._recoveries or self._queues) and self._started:
                self.settle()
        except Exception as exc:  # noqa: BLE001 - closing anyway; a resume reads them again
            log.warning("closing with portfolios still restoring (%s); their %d queued "
                        "ticks are not recorded", exc, sum(len(q) for q in self._queues.values()))
        self._closed = True
        try:  # attributions still running land first (up to restore_timeout), once; a
            # failure is the attribution module's WARNING (``swarmvar run`` shows those)
            _attribution._attr_close(self, self.restore_timeout)
        finally:  # a Ctrl-C in the wait still flushes and closes (then goes on)
            try:
                self.flush()
            finally:
                try:
                    self.executor.close()
                finally:
                    try:
                        self.ledger.close()
                    finally:
                        self._db.close()

    # --- start, checkpoints and recovery (._recovery) ------------------------------

    start = _recovery.start

    @staticmethod
    def check_start_history(portfolios: Sequence[PortfolioSpec | str] | Mapping[str, Any],
                            history: Any) -> None:
        """Refuse, before any home is opened, a book whose start history holds a day its
        agents cannot take: a leveraged book wiped out, or its log return beyond
        ``|r| <=`` ``MAX_BOOK_RETURN`` (5), what its agents, widened for a book, take
        (:func:`._recovery.check_start_history`; :meth:`start` refuses it too).

        Raises
        ------
        InvalidBook
            Naming the portfolio, the day, its return and the loss it is.
        InvalidParameter
            ``portfolios`` are not portfolios (:func:`.ticks.specs_from`).
        """
        _recovery.check_start_history(specs_from(portfolios), history)

    _start_recorded = _recovery._start_recorded
    checkpoint = _recovery.checkpoint
    _due = _recovery._due
    _seq_of = _recovery._seq_of
    _fit_again = _recovery._fit_again
    _resume = _recovery._resume
    _check_books = _recovery._check_books
    _adopt_variants = _recovery._adopt_variants
    _replay_ledger = _recovery._replay_ledger
    _replay_spread = _recovery._replay_spread
    _stateful = _recovery._stateful

    # --- the beat's ledger records (._records) -------------------------------------

    _record_late = _records._record_late
    _late_entries = _records._late_entries
    _entries = _records._entries
    _append = _records._append
    flush = _records.flush

    # --- lost hosts: restored in the background (._restoring) ----------------------

    _run_beats = _restoring._run_beats
    _beat_now = _restoring._beat_now
    restoring = _restoring.restoring
    _lose = _restoring._lose
    _wait_restored = _restoring._wait_restored
    _collect = _restoring._collect
    _poll = _restoring._poll
    settle = _restoring.settle
    _safe_cursor = _restoring._safe_cursor
    _enqueue_group = _restoring._enqueue_group
    _waits = _restoring._waits
    _enqueue = _restoring._enqueue
    _served = _restoring._served

    # --- the beat (._beating; refused ticks: _refuse, here) ------------------------

    _take_result = _beating._take_result
    _composed = _beating._composed
    step = _beating.step
    beat = _beating.beat
    _beat = _beating._beat
    _check = _beating._check
    _input = _beating._input
    _absorbed = _beating._absorbed
    _after = _beating._after
    _sandbox_breaker = _beating._sandbox_breaker
    _sandbox_held = _beating._sandbox_held
    _sandbox_verdicts = _beating._sandbox_verdicts
    _optional_credit_after = _beating._optional_credit_after

    def _refuse(self, exc: InvalidTick, tick: Any) -> None:
        if self._again is not None and self._again.tick(exc, tick):
            # a resume's run reads it again: the ledger holds the run's refusal of it
            log.info("tick refused again, its refusal ledgered already: %s", exc)
            return
        reason = _reason(exc)
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        text = str(exc)
        key = refusal_pattern(text)
        if key not in self.refusals and len(self.refusals) >= MAX_REFUSAL_PATTERNS:
            key = "other refusals"  # a long run's distinct messages stay bounded
        count, first = self.refusals.get(key, (0, " ".join(text.split())))
        self.refusals[key] = (count + 1, first)
        detail = {"type": "tick-rejected", "details": {
            "error": reason, "message": str(exc)[:500], "tick": _tick_repr(tick)}}
        self._batch.append((EntryKind.ACTION, detail))
        self.flush()  # recorded before the error reaches the caller (the batch goes with it)
        log.info("tick refused: %s", exc)

    # --- a book's attribution (.attribution) ----------------------------------------

    attribution = _attribution.attribution

    # --- the loop (._running) ------------------------------------------------------

    run = _running.run
    _loop = _running._loop
    _count = staticmethod(_running._count)
    _already = _running._already


@dataclass(frozen=True)
class Attached:
    """An observer with its calls looked up once, when attached (to a swarm or the service
    desk): ``observe``, and ``replay`` for recorded beats (its ``replay`` if it has one,
    else ``observe``), each with whether it takes ``beat_seconds=`` (the arbiter's PID
    does); ``replays``: whether it has its own ``replay`` (the swarm's replay of recorded
    beats calls only those)."""

    observer: BeatObserver
    observe: Callable[..., Iterable[Decision]]
    observe_seconds: bool
    replay: Callable[..., Iterable[Decision]]
    replay_seconds: bool
    replays: bool

    @classmethod
    def of(cls, obs: BeatObserver) -> Attached:
        replay = getattr(obs, "replay", None)
        observe, timed = obs.observe, takes_seconds(obs.observe)
        if callable(replay):
            return cls(obs, observe, timed, replay, takes_seconds(replay), True)
        return cls(obs, observe, timed, observe, timed, False)

    def __call__(self, report: BeatReport, seconds: float | None, again: bool
                 ) -> Iterable[Decision]:
        call, timed = ((self.replay, self.replay_seconds) if again
                       else (self.observe, self.observe_seconds))
        if seconds is not None and timed:
            return call(report, beat_seconds=seconds)
        return call(report)


def takes_seconds(call: Callable[..., Any]) -> bool:
    """Whether an observer's ``observe`` (or ``replay``) accepts ``beat_seconds=`` (the
    arbiter's does)."""
    import inspect

    try:
        return "beat_seconds" in inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False


def _variants(home: Path, names: Sequence[str], portfolios: Sequence[str]
              ) -> dict[str, dict[str, tuple[str | None, Mapping[str, Any]]]]:
    """Per portfolio and agent: the variant id and parameters it runs (champion or canary).

    From the evolution registry under ``home`` (:mod:`.variants`); agents with
    no variant run their defaults (``(None, {})``).
    """
    from ..evolution import open_home
    from .variants import choose_variants, has_registry

    if not has_registry(home):
        return {p: {n: (None, {}) for n in names} for p in portfolios}
    opened = open_home(home)
    try:
        out: dict[str, dict[str, tuple[str | None, Mapping[str, Any]]]] = {}
        for p in portfolios:
            choices = choose_variants(opened, names, p)
            out[p] = {n: (choices[n].variant_id, dict(choices[n].parameters)) for n in names}
        return out
    finally:
        opened.close()


def _hosts(executor: Executor | None) -> int:
    """The hosts an executor places groups on (its ``workers`` or ``shards``; 0: this process,
    or not said)."""
    for attr in ("workers", "shards"):
        n = getattr(executor, attr, None)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return n
    return 0
