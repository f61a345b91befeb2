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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd

from ..canonical import Canonical, canonical_json, canonical_object
from ..consensus import Policy
from ..consensus.signing import estimate_record
from ..errors import (
    CircuitOpen,
    InvalidParameter,
    InvalidTick,
    RestoreQueueFull,
    SwarmVarError,
    WorkerFailed,
)
from ..evolution import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    Database,
    StateConfig,
    StateStore,
)
from ..ledger import EntryKind, Ledger
from ..models import DEFAULT_AGENTS, canonical_name
from ..types import Action, BeatReport, Consensus, Decision, Estimate, Tick
from .beat import BeatInput, BeatOutcome, PortfolioConfig, is_time
from .consensus import SWARM_POLICY
from .executors import Executor, LocalExecutor
from .record import consensus_record
from .roles import RefitJob, RefitResult, RoleConfig, run_refit
from .sandboxing import SandboxSetup
from .sources import BadLine
from .spread import SpreadConsensus, routed, spread_groups
from .ticks import PortfolioSpec, route, specs_from, tick_value

log = logging.getLogger("swarmvar.swarm")

RUN_KEY = "swarm:__run__"
#: Sandbox-violation breakers: one violation opens it; after five days of data time
#: the agent gets one trial beat (clean: back in; another violation: out again).
SANDBOX_BREAKER = BreakerConfig(failure_threshold=1, reset_timeout_s=5 * 86_400.0,
                                max_reset_attempts=1_000_000)
STATE_PREFIX = "swarm:"
#: Observers' states (the arbiter's) in a checkpoint: ``swarm-observer:<state_key>:<portfolio>``.
OBSERVER_PREFIX = "swarm-observer:"
#: The first event of a report served for a portfolio whose host is being restored.
RESTORING = "restoring"
#: Attempts at restoring a lost host before the swarm gives up (each on a fresh host).
RESTORE_ATTEMPTS = 3


@dataclass(frozen=True)
class Restoring:
    """A portfolio whose host died, restored in the background (:meth:`Swarm.restoring`).

    ``since_seq`` is its last beat recorded before the host was lost;
    ``queued`` the ticks waiting for the host; ``attempt`` 1 for the first
    restore, more if the fresh host died too, 0 once the host is back and
    the portfolio still catches up (``Swarm(catch_up=)``); ``seconds`` since
    the loss.
    """

    portfolio: str
    since_seq: int
    queued: int
    attempt: int
    seconds: float


@dataclass(frozen=True)
class _Queued:
    """A tick waiting for its portfolio's host: beaten, in order, once the host is back.

    ``before`` is the source's cursor before the tick was read (where a
    resume must start while the tick is unrecorded); ``built`` the beat's
    input when it was already made (the tick whose beat was lost with the
    host: its swaps and requests were taken from the swarm then).
    """

    value: float
    as_of: datetime
    cursor: Any
    before: Any
    order: int
    built: BeatInput | None = None


@dataclass
class _Recovery:
    """One lost host's portfolios being restored by a background thread."""

    names: tuple[str, ...]
    future: Future[None]
    thread: threading.Thread
    attempt: int
    began: float
    since: dict[str, int]


_Refusal = TypeVar("_Refusal", bound=SwarmVarError)


def _with_caught_up(exc: _Refusal, caught_up: list[BeatReport]) -> _Refusal:
    """``exc`` carrying ``caught_up``: the queued ticks :meth:`Swarm.beat` beat (and
    ledgered) before it raised; a caller counts them as beats that ran."""
    exc.caught_up = caught_up  # type: ignore[attr-defined]
    return exc


@runtime_checkable
class BeatObserver(Protocol):
    """What watches the beats and decides (the arbiter implements this structurally)."""

    def observe(self, report: BeatReport) -> Sequence[Decision]:
        """Decisions about this beat's portfolio (recorded in the ledger by the swarm)."""
        ...

    def excluded(self, portfolio: str) -> frozenset[str]:
        """Agents to hold out of the portfolio's next consensus (quarantine)."""
        ...

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        """APPLY_BALANCE multipliers in [0, 1] per agent; {} for none."""
        ...


@runtime_checkable
class Pacer(Protocol):
    """Live pacing of :meth:`Swarm.run` (the arbiter's ``Cadence`` implements it)."""

    budget: float
    late: int

    def begin(self) -> float:
        """A beat starts now."""
        ...

    def mark(self) -> tuple[float, bool]:
        """The beat's seconds so far and whether they overran the budget (once per beat)."""
        ...

    def end(self) -> tuple[float, bool]:
        """The beat is over: wait until the next pulse boundary."""
        ...


class _BeatEntries:
    """An observer's ledger entries, joined to the current beat's transaction.

    ``commit`` is for what happens between beats (an operator's quarantine or
    release): it joins the pending batch and commits it now, so the action is
    in the ledger — and replayed after a kill -9 — before the call returns.
    """

    def __init__(self, batch: list[tuple[EntryKind, Mapping[str, Any] | Canonical]],
                 flush: Callable[[], None]) -> None:
        self._batch = batch
        self._flush = flush

    def add_entries(self, batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]]
                    ) -> None:
        self._batch.extend(batch)

    def commit(self, batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]]) -> None:
        self._batch.extend(batch)
        self._flush()


@dataclass(frozen=True)
class RunSummary:
    """What a :meth:`Swarm.run` did.

    ``beats`` per portfolio; ``rejected`` ticks refused (reason -> count);
    ``skipped`` ticks already recorded before a restart; ``cursor`` where
    the source stands (give it to ``seek`` to resume); ``stopped`` why the
    loop ended (``"source"``, ``"beats"``, ``"interrupted"``); ``late`` the
    beats that overran the pacer's budget (0 when not paced); ``refusals`` the
    refused ticks grouped by reason: the message with its specifics (names, dates,
    numbers) blanked -> (count, the first such message).
    """

    beats: Mapping[str, int]
    rejected: Mapping[str, int]
    skipped: int
    cursor: Any
    seconds: float
    stopped: str
    last_seq: Mapping[str, int] = field(default_factory=dict)
    late: int = 0
    refusals: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def total_beats(self) -> int:
        return sum(self.beats.values())


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


def stateful_observers(observers: Sequence[Any]) -> list[tuple[int, str, Any]]:
    """The observers whose state goes into checkpoints (a string ``state_key`` and callable
    ``checkpoint_state`` and ``restore_state``): (position, key, observer)."""
    return [(i, str(getattr(obs, "state_key")), obs)  # noqa: B009
            for i, obs in enumerate(observers)
            if isinstance(getattr(obs, "state_key", None), str)
            and callable(getattr(obs, "checkpoint_state", None))
            and callable(getattr(obs, "restore_state", None))]


def observer_instructions(observers: Sequence[Any], name: str
                          ) -> tuple[frozenset[str], dict[str, float]]:
    """The observers' instructions for the next beat of portfolio ``name``: the agents they
    quarantine (the union), and each agent's weight factor (the product of theirs)."""
    excluded: set[str] = set()
    factors: dict[str, float] = {}
    for obs in observers:
        excluded |= set(obs.excluded(name))
        for agent, f in obs.weight_factors(name).items():
            factors[agent] = factors.get(agent, 1.0) * float(f)
    return frozenset(excluded), factors


def _since(now: Mapping[str, tuple[int, str]], before: Mapping[str, tuple[int, str]]
           ) -> dict[str, tuple[int, str]]:
    """The refusals counted since ``before`` (first messages kept from their first time)."""
    return {k: (n - before.get(k, (0, ""))[0], first) for k, (n, first) in now.items()
            if n > before.get(k, (0, ""))[0]}


def _result_dict(r: RefitResult) -> dict[str, Any]:
    return {"agent": r.agent, "launched": r.launched}


class Swarm:
    """Portfolio swarms on an executor, with a ledger, checkpoints and observers.

    Parameters
    ----------
    portfolios : sequence of PortfolioSpec or names, or mapping name -> {weights|positions}
        The portfolios to run.
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
        of this (a schedule fixed by the ticks, the same after any restart).
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
    """

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
    ) -> None:
        for name, value, low in (("horizon", horizon, 1), ("window", window, 30),
                                 ("refit_every", refit_every, 1),
                                 ("checkpoint_every", checkpoint_every, 1),
                                 ("ledger_batch", ledger_batch, 1), ("seed", seed, 0),
                                 ("restore_queue", restore_queue, 1), ("spread", spread, 1)):
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
        hosts = _hosts(executor)
        if spread > 1 and hosts and spread > hosts:  # groups on different hosts (place)
            raise InvalidParameter(f"spread {spread} needs as many hosts, but the executor has "
                                   f"{hosts}; give it at least {spread} workers (shards) or "
                                   f"spread over at most {hosts}")
        self.specs = specs_from(portfolios)
        names = tuple(canonical_name(a) for a in agents)
        if sandbox is not None:
            names = (*names, *sandbox.plugin_agents)
        if len(set(names)) != len(names):
            raise InvalidParameter(f"agents are given twice: {list(agents)}")
        from ..models.risk import check_alphas

        levels = check_alphas(alphas)
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
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
                               {a: vid for a, (vid, _) in chosen[p].items() if vid}, sandbox)
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
        if self.spread > 1:
            if self.roles.refit_lag != 0:
                raise InvalidParameter("spread > 1 needs refit_lag 0 (refits on the beat)")
            if sandbox is not None:
                raise InvalidParameter("spread > 1 cannot run sandboxed agents yet; drop "
                                       "--sandbox or --spread")
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
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        self.checkpoint_every = int(checkpoint_every)
        self.ledger_batch = int(ledger_batch)
        self.observers = tuple(observers)  # each Attached once (the property's setter)
        self.ledger = Ledger.open(self.home)
        self._db = Database(self.home)
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
        self._started = False
        self._closed = False

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
        before the first of them).
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
        try:
            self.flush()
        finally:
            self.executor.close()
            self.ledger.close()
            self._db.close()

    def start(self, history: Mapping[str, pd.Series] | pd.DataFrame | pd.Series) -> None:
        """Resume from the home's checkpoint and ledger, or fit every portfolio from history.

        ``history`` gives each portfolio's returns up to now: a mapping
        name -> Series, an asset-returns DataFrame (portfolios over assets,
        or columns named like single-series portfolios), or one Series
        (single-series portfolios). It is read only when there is nothing to
        resume.
        """
        self.executor.open(list(self._hosted.values()))
        if not self._resume():
            requests = []
            for name, spec in self.specs.items():
                series = (history[name] if isinstance(history, Mapping) and name in history
                          else spec.history(history))
                from ..data import validate
                from ..errors import InvalidReturns

                raw = series.to_numpy()
                if raw.dtype.kind == "f" and not np.isfinite(raw).all():  # no dropna here
                    i = int(np.argmax(~np.isfinite(raw)))
                    value = "missing (NaN)" if np.isnan(raw[i]) else f"{float(raw[i])!r}"
                    raise InvalidReturns(
                        f"portfolio {name!r}: its start history's return at {series.index[i]} "
                        f"is {value}; the start history (the first --window rows on the command "
                        "line, history in Python) needs every value: fill or remove that row")
                series = validate(series, min_obs=self.configs[name].window)
                as_of = series.index[-1] if isinstance(series.index, pd.DatetimeIndex) else None
                from .ticks import as_utc

                when = None if as_of is None else as_utc(as_of)
                values = series.to_numpy(dtype=np.float64)
                for unit in self._groups.get(name, (name,)):
                    requests.append((unit, values, when))
                    self._fresh[unit] = (values, when)
                if name in self._groups:  # its consensus begins from the groups' forecasts
                    self._unbegun[name] = (values, when)
                self.last_as_of[name] = when
            self.executor.start(requests)
            begun = {"type": "swarm-start", "details": {
                "portfolios": [s.to_dict() for s in self.specs.values()],
                "config": self.configs[next(iter(self.specs))].fingerprint() | {
                    "portfolio": None}}}
            if not self._start_recorded(begun):  # (a start killed before its checkpoint)
                self.ledger.add_entry(EntryKind.ACTION, begun)
            self.checkpoint()
        if self.sandbox is not None:
            details: dict[str, Any] = self.sandbox.to_dict()
            warning = self.sandbox.warning()
            if warning is not None:
                log.warning("%s", warning)
                details["warning"] = warning
            self.ledger.add_entry(EntryKind.ACTION, {
                "type": "sandbox-warning" if warning else "sandbox", "details": details})
        self._started = True

    def _start_recorded(self, begun: Mapping[str, Any]) -> bool:
        """Whether the ledger's last entry is this very start (``begun``), recorded by a
        start killed before its checkpoint was stored.

        A start writes its ``swarm-start`` entry, then its checkpoint at seq 0
        (which may fit lost hosts again, :meth:`_fit_again`). Killed between
        the two, the home holds the entry and no checkpoint, so the next start
        fits from history again; it takes that entry up as its own instead of
        writing a second one, so each checkpointed start has exactly one. Only
        when the entry is the ledger's last (nothing was recorded after it)
        and says the same portfolios and configuration; a start of other
        portfolios or another configuration writes its own entry (the one
        before it then stands for a start that never ran a beat).
        """
        last = self.ledger.entry(-1)
        return (last.kind is EntryKind.ACTION and last.data.get("type") == "swarm-start"
                and canonical_json(last.data) == canonical_json(dict(begun)))

    # --- checkpoints and recovery --------------------------------------------------

    def checkpoint(self, names: Sequence[str] | None = None) -> None:
        """Flush the ledger, then store the named portfolios' states (default: all) atomically.

        The swarm checkpoints a portfolio when its sequence number reaches a
        multiple of ``checkpoint_every`` (and at seq 0): a schedule fixed by
        the ticks alone, so a resumed run takes (and replays) the same
        checkpoints as an uninterrupted one. Each portfolio's mark records its
        seq, its date, the ledger size, its pending refits and requests.
        """
        self.flush()
        names = [p for p in (list(self.specs) if names is None else list(names))
                 if p not in self._recoveries]  # a restoring host keeps its last checkpoint
        # a spread portfolio's groups that are up and caught up (one still restoring or
        # catching up keeps its last checkpoint)
        units = [u for p in names for u in self._groups.get(p, (p,)) if not self._waits(u)
                 or u not in self._owner]
        try:
            blobs = self.executor.states(units)
        except WorkerFailed as exc:  # a host died since its beat: the others checkpoint
            lost = tuple(getattr(exc, "portfolios", ()))
            if not lost:
                raise
            # the hosts that answered rebased their agents: their blobs, not another call
            blobs = {p: b for part in getattr(exc, "answers", {}).values() for p, b in part.items()}
            fresh = tuple(u for u in lost if u in self._fresh)
            if fresh:  # lost before any checkpoint of theirs: nothing to restore from
                blobs.update(self._fit_again(fresh))
                lost = tuple(u for u in lost if u not in self._fresh)
            for p in units:
                if p in lost:  # the restore redoes this checkpoint's rebase at this point
                    self._log[p].append(None)
            if lost:
                log.warning("swarm host died before its checkpoint (%s); restoring %s in "
                            "the background", exc, ", ".join(lost))
                self._lose(lost)
                names = [p for p in names if p not in lost]
                units = [u for u in units if u not in lost]
        for u in blobs:
            self._fresh.pop(u, None)
        for p, (values, when) in list(self._unbegun.items()):
            self._shells[p].begin(values, when, _forecasts_in(  # (a group lost here: without)
                [(blobs[g], self._hosted[g].agents) for g in self._groups[p] if g in blobs]))
            del self._unbegun[p]
        marks = dict(self._marks)
        states: dict[str, bytes] = {STATE_PREFIX + p: b for p, b in blobs.items()}
        size = self.ledger.size
        for g in units:
            if g in self._owner:
                marks[g] = {"seq": self._gseq[g], "ledger_size": size}
                self._log[g] = []
        for p in names:
            if p in self._shells:
                states[STATE_PREFIX + p] = self._shells[p].state()
            jobs = [job for job, _ in self._pending.values() if job.portfolio == p]
            for i, job in enumerate(jobs):
                states[f"swarm-job:{p}:{i}"] = job.state + job.returns.tobytes()
            last = self.last_as_of[p]
            marks[p] = {"seq": self.seq[p], "ledger_size": size,
                        "last_as_of": None if last is None else last.isoformat(),
                        "pending": [_job_dict(job) for job in jobs],
                        "requests": [list(x) for x in self._requests[p]],
                        "credit": self._optional_credit.get(p, 0.0)}
            for key, obs in self._stateful():
                states[f"{OBSERVER_PREFIX}{key}:{p}"] = obs.checkpoint_state(p)
        run = {"marks": marks, "cursor": self.cursor}
        states[RUN_KEY] = json.dumps(run).encode()
        self.states.put_many(states, now=time.time())
        for key in states:
            self.states.prune(key, keep=2)
        self._marks = marks
        for p in names:
            self._log[p] = []

    def _due(self, name: str) -> bool:
        """Whether ``name``'s checkpoint falls at its current seq (the fixed schedule); a
        group of a spread portfolio is checkpointed with its portfolio."""
        return name not in self._owner and self.seq[name] % self.checkpoint_every == 0

    def _seq_of(self, unit: str) -> int:
        """The last beat of a hosted unit: a portfolio's seq, or a group's."""
        return self._gseq[unit] if unit in self._owner else self.seq[unit]

    def _fit_again(self, units: Sequence[str]) -> dict[str, bytes]:
        """Fit units lost before their first checkpoint again, on a fresh host, and
        return their checkpoint blobs.

        Only the start's checkpoint meets such units (every later loss has a
        stored state to restore from). The start is blocking anyway, and a fit
        is a function of the history and the seeds, so the fresh host holds
        the agents the lost one fitted; the checkpoint at seq 0 stays complete
        (a resume needs every unit in it). Up to :data:`RESTORE_ATTEMPTS`
        fresh hosts, then ``WorkerFailed``.
        """
        last: WorkerFailed | None = None
        for attempt in range(1, RESTORE_ATTEMPTS + 1):
            log.warning("swarm host of %s died before the start's checkpoint; fitting them "
                        "again on a fresh host (attempt %d)", ", ".join(units), attempt)
            self.executor.reset(units)
            try:
                self.executor.open([self._hosted[u] for u in units])
                self.executor.start([(u, *self._fresh[u]) for u in units])
                return dict(self.executor.states(list(units)))
            except WorkerFailed as exc:
                last = exc
        raise WorkerFailed(f"the host of {', '.join(units)} died {RESTORE_ATTEMPTS} times "
                           "while fitting at the start") from last

    def _resume(self) -> bool:
        from ..evolution import UnknownState

        try:
            run = json.loads(self.states.get(RUN_KEY).decode())
        except UnknownState:
            return False
        marks = run["marks"]
        missing = sorted(set(self.specs) - set(marks))
        if missing:
            from ..errors import ResumeMismatch

            raise ResumeMismatch(f"the home's run has no checkpoint of {missing}; use the "
                                 "portfolios it was started with, or another --home")
        if any(g not in marks for g in self._owner):
            from ..errors import ResumeMismatch

            raise ResumeMismatch("the home's run was not spread over these groups; use the "
                                 "--spread it was started with, or another --home")
        self._marks = {p: marks[p] for p in (*self.specs, *self._owner)}
        self.executor.restore({u: self.states.get(STATE_PREFIX + u) for u in self._hosted})
        for p, shell in list(self._shells.items()):
            restored = SpreadConsensus.restore(shell.config, self.states.get(STATE_PREFIX + p))
            assert isinstance(restored, SpreadConsensus)
            self._shells[p] = restored
        for g in self._owner:
            self._gseq[g] = int(marks[g]["seq"])
        self._pending = {}
        for p in self.specs:
            m = marks[p]
            self.seq[p] = int(m["seq"])
            self.last_as_of[p] = (None if m["last_as_of"] is None
                                  else datetime.fromisoformat(m["last_as_of"]))
            self._requests[p] = [(str(x[0]), str(x[1])) for x in m["requests"]]
            self._optional_credit[p] = float(m.get("credit", 0.0))
            for key, obs in self._stateful():
                try:
                    blob = self.states.get(f"{OBSERVER_PREFIX}{key}:{p}")
                except UnknownState:  # the run was checkpointed without this observer
                    log.info("no %s state in the checkpoint of %s: it starts fresh", key, p)
                    continue
                obs.restore_state(p, blob, agents=self.configs[p].agents)
            for i, d in enumerate(m["pending"]):
                job = _job_from(d, self.states.get(f"swarm-job:{p}:{i}"))
                self._pending[job.key] = (job, None)
        self.cursor = run["cursor"]
        self._replay_ledger(min(int(self._marks[p]["ledger_size"]) for p in self._marks))
        self._resume_as_of = dict(self.last_as_of)
        return True

    def _replay_ledger(self, start: int) -> None:
        """Re-run, without recording, the beats the ledger holds after each checkpoint.

        At each beat where the original run checkpointed the portfolio, its
        agents are swapped for their restored copies again (as a checkpoint
        does), so the replay continues exactly as the original did. A spread
        portfolio's beats are composed from the groups recorded as up at each
        beat; a group's beats of ticks it missed (its host lost) whose late
        estimates the ledger lacks are recorded now, once.
        """
        late: dict[tuple[str, int], tuple[datetime, BeatOutcome] | None] = {}
        if self._groups:
            for entry in self.ledger.entries(start):
                d = entry.data
                if entry.kind == EntryKind.ESTIMATE.value and d.get("late") and "group" in d:
                    late[str(d["group"]), int(d["seq"])] = None  # recorded already
        for entry in self.ledger.entries(start):
            if entry.kind == EntryKind.ACTION.value and isinstance(entry.data.get(
                    "details"), Mapping) and entry.data["details"].get("by") == "operator":
                owner = entry.data["details"].get("portfolio")
                if owner in self.specs and entry.index >= int(
                        self._marks[owner]["ledger_size"]):  # after its checkpoint
                    for obs in self.observers:  # an operator's quarantine or release, again
                        again = getattr(obs, "replay_action", None)
                        if callable(again):
                            again(entry.data)
                continue
            if entry.kind != EntryKind.CONSENSUS.value or "beat" not in entry.data:
                continue
            b = entry.data["beat"]
            name = b["portfolio"]
            if name in self._groups:  # its groups catch up (a restored one from further back)
                outcome_or_none = self._replay_spread(name, b, late)
                if outcome_or_none is None:
                    continue
                tick, outcome = outcome_or_none
            else:
                if name not in self.specs or int(b["seq"]) != self.seq[name] + 1:
                    continue
                swaps = tuple(self._take_result(name, s["agent"], int(s["launched"]),
                                                wait=True) for s in b.get("swaps", []))
                tick = BeatInput(int(b["seq"]), datetime.fromisoformat(b["as_of"]),
                                 float(b["realized"]), frozenset(b.get("excluded", [])),
                                 dict(b.get("factors", {})), swaps,
                                 tuple((a, r) for a, r in b.get("requests", [])))
                outcome = self._beat_now(name, tick)
            for job in outcome.jobs:
                self._pending[job.key] = (job, None)
            report = outcome.report
            if b.get("late"):
                report = dataclasses.replace(report, late=True)
            seconds = b.get("beat_seconds")
            for att in self._attached:  # the arbiter moves as it did, recording nothing
                if att.replays:
                    att(report, None if seconds is None else float(seconds), again=True)
            self._optional_credit[name] = (self._optional_credit_after(name)
                                           - len(b.get("optimize", [])))
            self.seq[name] = tick.seq
            self.last_as_of[name] = tick.as_of
            self._requests[name] = [(a, "arbiter") for d in b.get("optimize", []) for a in d]
            self._latest[name] = self._beaten[name] = report
            if b.get("cursor") is not None:
                self.cursor = b["cursor"]
            if self._due(name):
                if name not in self._groups:  # (a spread portfolio's groups: at their beat)
                    self.executor.states([name])  # the checkpoint's rebase, nothing written
                    self._log[name].append(None)  # (a restored host redoes it at this point)
        self._record_late(late)

    def _replay_spread(self, name: str, b: Mapping[str, Any],
                       late: dict[tuple[str, int], tuple[datetime, BeatOutcome] | None]
                       ) -> tuple[BeatInput, BeatOutcome] | None:
        """A recorded beat of a spread portfolio again: each group that is one tick behind
        beats it; the portfolio's consensus is composed (if it is its next beat) from the
        groups recorded as up. A group's beat of a tick it had missed is kept in ``late``
        unless the ledger holds its late estimates."""
        t = int(b["seq"])
        base = BeatInput(t, datetime.fromisoformat(b["as_of"]), float(b["realized"]),
                         frozenset(b.get("excluded", [])), dict(b.get("factors", {})), (),
                         tuple((a, r) for a, r in b.get("requests", [])))
        up = set(b.get("groups", self._groups[name]))
        parts: dict[str, BeatOutcome] = {}
        for g in self._groups[name]:
            if self._gseq[g] != t - 1:
                continue
            out = self._beat_now(g, routed(base, self._hosted[g]))
            if g in up:
                parts[g] = out
                if t % self.checkpoint_every == 0:  # its checkpoint's rebase, not stored
                    self.executor.states([g])  # here (a restored host redoes it too)
                    self._log[g].append(None)
            elif (g, t) not in late:
                late[g, t] = (base.as_of, out)
        if t != self.seq[name] + 1:
            return None
        lost = [a for g in self._groups[name] if g not in up for a in self._hosted[g].agents]
        return base, self._shells[name].compose(base, parts, lost)

    def _record_late(self, late: Mapping[tuple[str, int], tuple[datetime, BeatOutcome] | None]
                     ) -> None:
        """Ledger the late entries of groups' catch-up beats the ledger lacks (once)."""
        for (g, t), held in sorted(late.items()):
            if held is not None:
                self._batch.extend(self._late_entries(g, t, held[0], held[1]))
        self.flush()

    def _late_entries(self, group: str, seq: int, as_of: datetime, outcome: BeatOutcome
                      ) -> list[tuple[EntryKind, Mapping[str, Any] | Canonical]]:
        """What a group did for a tick its portfolio beat without it (host lost), as the
        portfolio's beat records it for the groups that answered: its estimates (those
        its key ring check admits, :meth:`~.spread.SpreadConsensus.vet`; what it sent
        beyond them under ``refused``), its agents' errors (``rejected``) and its role
        records (flows), each tagged ``late`` with the group. One batch, so the estimate
        entry, the key a resume looks for (group, seq), stands for all of them."""
        portfolio = self._owner[group]
        shell = self._shells[portfolio]
        vetted = shell.vet(group, seq, as_of, outcome, late=True)
        record: dict[str, Any] = {  # written from the bytes the vet verified (shell.own)
            "portfolio": portfolio, "group": group, "seq": seq, "late": True,
            "estimates": [estimate_record(e, shell.own) for e in vetted.estimates]}
        if vetted.rejected:
            record["rejected"] = dict(vetted.rejected)
        if vetted.notes:
            record["refused"] = [n[:300] for n in vetted.notes[:50]]
        entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]] = [
            (EntryKind.ESTIMATE, canonical_object(record))]
        for r in vetted.roles:
            entries.append((EntryKind.FLOW, {"flow": r.role, "result": {
                "portfolio": portfolio, "group": group, "seq": seq, "late": True,
                **r.to_dict()}}))
        return entries

    def _stateful(self) -> list[tuple[str, Any]]:
        """Observers whose state goes into checkpoints, by their key (see
        :func:`stateful_observers`)."""
        return [(key, obs) for _, key, obs in stateful_observers(self.observers)]

    def _take_result(self, portfolio: str, agent: str, launched: int, *, wait: bool
                     ) -> RefitResult:
        job, future = self._pending.pop((portfolio, agent, launched))
        if future is None:
            return run_refit(job)
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a forager lost (killed, pool broken)
            log.warning("refit of %s for %s lost (%s); it is redone here", agent, portfolio,
                        exc)
            return run_refit(job)

    def _run_beats(self, inputs: Sequence[tuple[str, BeatInput]]
                   ) -> list[BeatOutcome | None]:
        """The executor's beats; None for a portfolio whose host died in the call.

        A dead host's portfolios go to a background restore (:meth:`_lose`);
        the beats of the hosts that answered ran and are kept (never run twice).
        Each beat that ran is logged (what a restored host replays).
        """
        try:
            done: list[BeatOutcome | None] = list(self.executor.beats(inputs))
        except WorkerFailed as exc:
            lost = tuple(getattr(exc, "portfolios", ())) or tuple(self._hosted)
            outcomes: Mapping[int, BeatOutcome] = getattr(exc, "outcomes", {})
            # a portfolio of a host that answered with an error has no outcome either, and
            # that host may have beaten others of its batch first: restored too (exactly once)
            lost += tuple(name for i, (name, _) in enumerate(inputs)
                          if name not in lost and i not in outcomes)
            log.warning("swarm host died (%s); restoring %s from the last checkpoint in the "
                        "background", exc, ", ".join(lost))
            for name in lost:
                self._losses[name] = self._losses.get(name, 0) + 1
            self._lose(lost, max(self._losses[name] for name in lost))
            done = [outcomes.get(i) if name not in lost else None
                    for i, (name, _) in enumerate(inputs)]
        for (name, tick), outcome in zip(inputs, done, strict=True):
            if outcome is not None:
                self._log[name].append(tick)
                self._losses.pop(name, None)
                if name in self._owner:
                    self._gseq[name] = tick.seq
        return done

    def _beat_now(self, name: str, tick: BeatInput) -> BeatOutcome:
        """One beat that waits for its host when it is lost (replaying the ledger)."""
        for _ in range(RESTORE_ATTEMPTS + 1):
            if name in self._recoveries:
                self._wait_restored()
            outcome = self._run_beats([(name, tick)])[0]
            if outcome is not None:
                return outcome
        raise WorkerFailed(f"the host of {name!r} kept dying; see the log")

    # --- lost hosts: restored in the background --------------------------------------

    def restoring(self) -> dict[str, Restoring]:
        """The portfolios whose host died and is being restored, or that still catch up on
        their queued ticks (``attempt`` 0); empty when all are up and caught up."""
        now = time.monotonic()
        out = {p: Restoring(p, r.since[p], len(self._queues.get(p, ())), r.attempt,
                            now - r.began) for p, r in self._recoveries.items()}
        for p, q in self._queues.items():
            if q and p not in out:
                out[p] = Restoring(p, self._seq_of(p), len(q), 0, 0.0)
        return out

    def _lose(self, names: Sequence[str], attempt: int = 1) -> None:
        """Start restoring the portfolios of a dead host in a background thread.

        A fresh host is started here (quick); the thread opens it, restores
        the portfolios from their last stored checkpoint and replays the beats
        logged since (redoing an unstored checkpoint's rebase where the log
        says so). The swarm does not wait: other hosts keep beating, and
        these portfolios' ticks are queued until :meth:`_poll` sees it done.
        """
        names = tuple(n for n in names if n not in self._recoveries)
        if not names:
            return
        if attempt > RESTORE_ATTEMPTS:  # the same tick kills every fresh host: given up
            gone: Future[None] = Future()
            gone.set_exception(WorkerFailed(
                f"the host of {', '.join(names)} died {attempt} times in a row on the tick "
                f"after beat {', '.join(str(self._seq_of(p)) for p in names)}"))
            rec = _Recovery(names, gone, threading.Thread(target=gone.result), attempt,
                            time.monotonic(), {p: self._seq_of(p) for p in names})
            for p in names:
                self._recoveries[p] = rec
                self._queues.setdefault(p, deque())
            return
        self.executor.reset(names)
        blobs = {p: self.states.get(STATE_PREFIX + p) for p in names}
        logged = {p: list(self._log[p]) for p in names}
        future: Future[None] = Future()
        thread = threading.Thread(
            target=_restore_host, name=f"swarmvar-restore-{names[0]}", daemon=True,
            args=(self.executor, [self._hosted[p] for p in names], blobs, logged, future))
        rec = _Recovery(names, future, thread, attempt, time.monotonic(),
                        {p: self._seq_of(p) for p in names})
        for p in names:
            self._recoveries[p] = rec
            self._queues.setdefault(p, deque())
        thread.start()

    def _wait_restored(self, timeout: float | None = None) -> None:
        """Block until no host is restoring (or ``timeout`` seconds passed: WorkerFailed)."""
        limit = self.restore_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while self._recoveries:
            pending = {r.future for r in self._recoveries.values() if not r.future.done()}
            if pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerFailed(
                        f"restoring {', '.join(sorted(self._recoveries))} did not finish in "
                        f"{limit:g} s; their ticks stay queued (a resume reads them again)")
                wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            self._collect()

    def _collect(self) -> None:
        """Take finished restores: their portfolios are back, or restored again on a fresh host.

        Raises WorkerFailed for a host given up after :data:`RESTORE_ATTEMPTS`
        (its portfolios stay restoring: served stale, their ticks queued).
        """
        failed: list[WorkerFailed] = []
        for rec in {id(r): r for r in self._recoveries.values()}.values():
            if not rec.future.done():
                continue
            for p in rec.names:
                del self._recoveries[p]
            exc = rec.future.exception()
            if exc is None:
                log.info("host of %s restored after %.2f s", ", ".join(rec.names),
                         time.monotonic() - rec.began)
                continue
            if isinstance(exc, WorkerFailed) and rec.attempt < RESTORE_ATTEMPTS:
                log.warning("the restored host of %s died too (%s); trying again",
                            ", ".join(rec.names), exc)
                self._lose(rec.names, rec.attempt + 1)
                continue
            for p in rec.names:  # given up: they stay out, and every beat says why
                self._recoveries[p] = rec
            gone = WorkerFailed(f"the host of {', '.join(rec.names)} could not be restored "
                                f"({type(exc).__name__}: {exc}); stop the swarm and resume "
                                "it from its home")
            gone.__cause__ = exc
            failed.append(gone)
        if failed:
            raise failed[0]

    def _poll(self, *, block: bool = False, timeout: float | None = None,
              rounds: int | None = None) -> list[BeatReport]:
        """Catch up every portfolio whose host is back: its queued ticks, in order.

        Non-blocking unless ``block`` (then waits for every restore). The
        queued beats go through the observers and into the ledger as any
        beat; several portfolios' queues are beaten together, one tick each
        per round, so each keeps its order; at most ``rounds`` rounds (None:
        until the queues are empty). Returns their reports.
        """
        if block:
            self._wait_restored(timeout)
        self._collect()
        names = [p for p, q in self._queues.items() if q and p not in self._recoveries]
        for p in list(self._queues):
            if not self._queues[p] and p not in self._recoveries:
                del self._queues[p]
        out: list[BeatReport] = []
        left = rounds
        while names and (left is None or left > 0):
            left = None if left is None else left - 1
            inputs: list[tuple[str, BeatInput]] = []
            heads: list[_Queued] = []
            for p in names:
                q = self._queues[p][0]
                inputs.append((p, q.built if q.built is not None
                               else self._input(p, q.value, q.as_of)))
                heads.append(q)
            outcomes = self._run_beats(inputs)
            for (p, tick), q, outcome in zip(inputs, heads, outcomes, strict=True):
                if outcome is None:  # lost again: the tick waits, its input made
                    self._queues[p][0] = dataclasses.replace(q, built=tick)
                    continue
                self._queues[p].popleft()
                if p in self._owner:  # a group catching up: its entries, late, once
                    self._append(self._late_entries(p, tick.seq, tick.as_of, outcome), beats=1)
                    continue
                out.append(self._after(p, tick, outcome, self._safe_cursor(
                    q.cursor if self._read_cursor is None else self._read_cursor)))
                if self._due(p):
                    self.checkpoint([p])
            names = [p for p in names if self._queues.get(p) and p not in self._recoveries]
        for p in list(self._queues):
            if not self._queues[p] and p not in self._recoveries:
                del self._queues[p]
        return out

    def settle(self, timeout: float | None = None) -> list[BeatReport]:
        """Wait until every lost host is back and its portfolios have beaten their queued ticks.

        Returns the reports of those catch-up beats (already ledgered).
        Raises :class:`~swarmvar.errors.WorkerFailed` after ``timeout``
        seconds (default ``restore_timeout``) or when a host cannot be restored.
        """
        limit = self.restore_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit  # one deadline for all (a restore may repeat)
        out: list[BeatReport] = []
        try:
            while self._recoveries or self._queues:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerFailed(
                        f"settling {', '.join(sorted({*self._recoveries, *self._queues}))} "
                        f"did not finish in {limit:g} s; their ticks stay queued (a resume "
                        "reads them again)")
                out.extend(self._poll(block=True, timeout=left))
        except WorkerFailed as exc:  # the catch-up beats that ran go with it
            _with_caught_up(exc, out)
            raise
        return out

    def _safe_cursor(self, cursor: Any) -> Any:
        """The cursor a resume may start from: before the first tick still queued, if any."""
        first: _Queued | None = None
        for p, q in self._queues.items():
            if p in self._owner:  # a group's ticks are in its portfolio's beats (replayed)
                continue
            if q and (first is None or q[0].order < first.order):
                first = q[0]
        return cursor if first is None else first.before

    def _composed(self, name: str, tick: BeatInput, parts: Mapping[str, BeatOutcome]
                  ) -> BeatOutcome:
        """A spread portfolio's beat from the groups that answered (the others' agents out)."""
        lost = [a for g in self._groups[name] if g not in parts for a in self._hosted[g].agents]
        return self._shells[name].compose(tick, parts, lost)

    def _enqueue_group(self, group: str, built: BeatInput, cursor: Any, before: Any) -> None:
        """Queue a tick for a restoring group (its portfolio beat it with the other groups)."""
        self._enqueued += 1
        self._queues.setdefault(group, deque()).append(
            _Queued(built.value, built.as_of, cursor, before, self._enqueued, built))

    def _waits(self, name: str) -> bool:
        """Whether a tick for ``name`` must queue (host restoring, or earlier ticks queued)."""
        return name in self._recoveries or bool(self._queues.get(name))

    def _enqueue(self, name: str, value: float, as_of: datetime, cursor: Any, before: Any,
                 built: BeatInput | None = None) -> BeatReport:
        """Queue a tick for a restoring portfolio; what the swarm serves for it meanwhile."""
        queue = self._queues.setdefault(name, deque())
        self._enqueued += 1
        item = _Queued(value, as_of, cursor, before, self._enqueued, built)
        if built is not None:
            queue.appendleft(item)  # the lost beat comes before anything queued after it
        else:
            queue.append(item)
        served = self._served(name, value, as_of)
        self._latest[name] = served
        return served

    def _served(self, name: str, value: float, as_of: datetime) -> BeatReport:
        """The last consensus of a restoring portfolio, marked stale and widened.

        Availability 0/n (no agent of the portfolio answers), ``degraded``,
        ``staleness`` grown by the data time since that consensus, and each
        interval widened by the partition rule's staleness term
        (:func:`~swarmvar.consensus.widen_interval`: ``h' = sqrt(h^2 + z^2
        (kappa * point)^2 d)`` with the policy's drift and interval mass).
        ``consensus`` is empty if the portfolio never beat before the loss.
        """
        from ..consensus import widen_interval

        rec = self._recoveries.get(name)
        base = self._beaten.get(name)
        policy = self.configs[name].policy
        queued = len(self._queues.get(name, ()))
        consensus: list[Consensus] = []
        for c in base.consensus if base is not None else ():
            made = c.as_of or base.as_of  # type: ignore[union-attr]
            days = max(0.0, (as_of - made).total_seconds() / 86_400.0)

            def widen(point: float, interval: tuple[float, float], days: float = days
                      ) -> tuple[float, float]:
                return widen_interval(point, interval, available=1, total=1, spread=0.0,
                                      staleness_days=days, drift=policy.drift,
                                      mass=policy.interval_mass)

            consensus.append(dataclasses.replace(
                c, var_interval=widen(c.var, c.var_interval),
                es_interval=widen(c.es, c.es_interval),
                method=f"{c.method}; stale: host restoring", available=0,
                staleness=c.staleness + days * 86_400.0, degraded=True))
        agents = self.configs[name].agents
        return BeatReport(
            name, self.seq[name] + queued, as_of, value, {}, {}, {}, tuple(consensus),
            rejected=dict.fromkeys(agents, "host restoring"),
            events=(f"{RESTORING}: host lost after beat {rec.since[name]} (attempt "
                    f"{rec.attempt}); {queued} ticks queued" if rec is not None else
                    f"{RESTORING}: host back, catching up; {queued} ticks queued",))

    # --- the beat -------------------------------------------------------------------

    def step(self, tick: Tick, *, cursor: Any = None) -> BeatReport:
        """One beat for the tick's portfolio (for a ``"*"`` tick, the first portfolio's report).

        Raises
        ------
        InvalidTick
            The tick is refused (after it was counted and ledgered as a rejection).
        """
        reports, caught_up = self._beat([tick], cursor)
        if not reports:  # a "*" tick every portfolio recorded before the restart
            from .ticks import as_utc

            refused = InvalidTick(
                f"tick for {tick.portfolio!r} dated {as_utc(tick.as_of).isoformat()} was "
                "recorded for every portfolio before the restart (at or before its resume "
                "point); ticks must move forward")
            self._refuse(refused, tick)
            raise _with_caught_up(refused, caught_up)
        return reports[0]

    def beat(self, ticks: Sequence[Tick], *, cursor: Any = None) -> list[BeatReport]:
        """Beats for several ticks at once (each portfolio at most once; hosts run in parallel).

        Bad ticks are refused and ledgered; if any was, :class:`InvalidTick`
        is raised after the good ones have beaten.

        A portfolio whose host died is restored in the background: its tick
        is queued and the report returned for it is the stale one served
        meanwhile (first event :data:`RESTORING`; it is not ledgered, and no
        observer sees it). Once the host is back, the next call first beats
        the queued ticks, in order; their reports follow this call's own.

        Raises
        ------
        RestoreQueueFull
            A restoring portfolio has ``restore_queue`` ticks waiting already
            (raised before anything of this call is beaten or queued).
        """
        reports, caught_up = self._beat(ticks, cursor)
        return reports + caught_up

    def _beat(self, ticks: Sequence[Tick], cursor: Any
              ) -> tuple[list[BeatReport], list[BeatReport]]:
        """:meth:`beat`: the reports for ``ticks``, and those of the queued ticks beaten first."""
        if not self._started:
            raise InvalidParameter("call start(history) before the first beat")
        caught_up = self._poll(rounds=self.catch_up)
        before = self._read_cursor
        planned: list[tuple[str, float, datetime]] = []
        refused: InvalidTick | None = None
        seen: set[str] = set()
        for tick in ticks:
            try:
                checked = self._check(tick, seen)
            except InvalidTick as exc:
                self._refuse(exc, tick)
                refused = exc
                continue
            planned.extend(checked)
            seen.update(name for name, _, _ in checked)
        for name, _, _ in planned:
            for unit in self._groups.get(name, (name,)):
                if self._waits(unit) and len(self._queues[unit]) >= self.restore_queue:
                    raise _with_caught_up(RestoreQueueFull(
                        f"portfolio {unit!r} has {len(self._queues[unit])} ticks queued while "
                        f"its host is restored (restore_queue={self.restore_queue}); wait for "
                        "it (Swarm.settle) or raise restore_queue"), caught_up)
        inputs: list[tuple[str, BeatInput]] = []
        served: dict[str, BeatReport] = {}
        spread: dict[str, BeatInput] = {}  # spread portfolios beaten from their groups
        for name, value, as_of in planned:
            if self._waits(name):
                served[name] = self._enqueue(name, value, as_of, cursor, before)
            elif name in self._groups:
                spread[name] = inp = self._input(name, value, as_of)
                for g in self._groups[name]:
                    if self._waits(g):  # restoring: it beats the tick later (late estimates)
                        self._enqueue_group(g, routed(inp, self._hosted[g]), cursor, before)
                    else:
                        inputs.append((g, routed(inp, self._hosted[g])))
            else:
                inputs.append((name, self._input(name, value, as_of)))
        outcomes = self._run_beats(inputs) if inputs else []
        # paced: the beat's time is the pacer's measure, up to the observers (every host's
        # work is done by now), the same for each portfolio of the beat
        paced = self._pace.mark() if self._pace is not None and inputs else None
        parts: dict[str, dict[str, BeatOutcome]] = {p: {} for p in spread}
        for (name, inp), outcome in zip(inputs, outcomes, strict=True):
            if name in self._owner:
                if outcome is None:  # its host died in this beat: the group beats it later
                    self._enqueue_group(name, inp, cursor, before)
                else:
                    parts[self._owner[name]][name] = outcome
            elif outcome is None:  # its host died in this beat: the tick waits for it
                served[name] = self._enqueue(name, inp.value, inp.as_of, cursor, before,
                                             built=inp)
        safe = self._safe_cursor(cursor)
        beaten = {name: self._after(name, inp, outcome, safe, paced)
                  for (name, inp), outcome in zip(inputs, outcomes, strict=True)
                  if outcome is not None and name not in self._owner}
        for name, inp in spread.items():
            beaten[name] = self._after(name, inp, self._composed(name, inp, parts[name]),
                                       safe, paced, groups=sorted(parts[name]))
        reports = [beaten[name] if name in beaten else served[name] for name, _, _ in planned]
        due = [name for name in beaten if self._due(name)]
        if due:
            self.checkpoint(due)
        if cursor is not None:
            self._read_cursor = cursor
        if refused is not None:
            raise _with_caught_up(refused, caught_up)
        return reports, caught_up

    def _check(self, tick: Tick, seen: set[str]) -> list[tuple[str, float, datetime]]:
        from .ticks import as_utc

        specs = route(tick, self.specs)
        as_of = as_utc(tick.as_of)
        out = []
        for spec in specs:
            value = tick_value(spec, tick)
            mark = self._resume_as_of.get(spec.name)
            if len(specs) > 1 and mark is not None and as_of <= mark:
                continue  # recorded for this one before a restart, not for all of them
            queue = self._queues.get(spec.name)
            last = queue[-1].as_of if queue else self.last_as_of[spec.name]
            if spec.name in seen:
                raise InvalidTick(f"two ticks for {spec.name!r} in one beat")
            if last is not None and as_of <= last:
                word = "duplicates" if as_of == last else "is before"
                raise InvalidTick(f"tick for {spec.name!r} dated {as_of.isoformat()} {word} "
                                  f"its last beat ({last.isoformat()}); ticks must move forward")
            out.append((spec.name, value, as_of))
        return out

    def _refuse(self, exc: InvalidTick, tick: Any) -> None:
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

    def _input(self, name: str, value: float, as_of: datetime) -> BeatInput:
        seq = self.seq[name] + 1
        held, factors = observer_instructions(self.observers, name)
        excluded = set(held) | self._sandbox_held(name, as_of)
        absorbed_after = self._absorbed(name) + 1
        swaps = []
        for _key, (job, future) in list(self._pending.items()):
            if job.portfolio != name or job.swap_at > absorbed_after:
                continue
            if future is not None and not future.done() and not self.roles.refit_wait:
                continue  # swapped at a later boundary: the beat does not wait
            swaps.append(self._take_result(name, job.agent, job.launched, wait=True))
        requests = tuple(self._requests[name])
        self._requests[name] = []
        return BeatInput(seq, as_of, value, frozenset(excluded), factors, tuple(swaps), requests)

    def _absorbed(self, name: str) -> int:
        return self.seq[name]

    def _after(self, name: str, tick: BeatInput, outcome: BeatOutcome, cursor: Any,
               paced: tuple[float, bool] | None = None, groups: Sequence[str] | None = None
               ) -> BeatReport:
        for job in outcome.jobs:
            self._pending[job.key] = (job, self.executor.submit_refit(job))
        report = outcome.report
        self._sandbox_verdicts(name, tick, outcome)
        decisions: list[Decision] = []
        # the beat's time: the pacer's measure when paced, else its compute time
        seconds = paced[0] if paced is not None else beat_seconds(outcome.seconds)
        if paced is not None and paced[1]:
            report = dataclasses.replace(report, late=True)
        timed = False
        for att in self._attached:  # the arbiter's PID wants the beat's time
            timed = timed or att.observe_seconds
            decisions.extend(att(report, seconds, again=False))
        optimize: list[list[str]] = []
        deferred: list[list[str]] = []
        credit = self._optional_credit_after(name)
        for d in decisions:
            if d.action is Action.APPLY_OPTIMIZE:
                agents = [a for a in d.agents if a in self.configs[name].agents] or ["*"]
                if credit < 1.0:  # the PID has cut optional work: this refit waits
                    deferred.append(agents)
                    continue
                credit -= 1.0
                self._requests[name].extend((a, "arbiter") for a in agents)
                optimize.append(agents)
            elif d.action is Action.ALERT:
                log.warning("alert on %s at beat %d: %s", name, tick.seq, d.reason)
        self._optional_credit[name] = credit
        report = dataclasses.replace(report, decisions=tuple(decisions))
        self.seq[name] = tick.seq
        self.last_as_of[name] = tick.as_of
        if cursor is not None:
            self.cursor = cursor
        self._latest[name] = self._beaten[name] = report
        self.timings[name] = dict(outcome.seconds)
        timing: dict[str, Any] = (
            {"beat_seconds": seconds, **({"late": True} if report.late else {})}
            if timed or paced is not None else {})
        if groups is not None:  # a spread portfolio: the groups whose agents answered
            timing = {**timing, "groups": list(groups)}
        self._append(self._entries(name, tick, outcome, decisions, optimize, cursor,
                                   deferred, timing), beats=1)
        return report

    def _sandbox_breaker(self, name: str, agent: str, when: datetime) -> CircuitBreaker:
        stamp = when.timestamp()
        return CircuitBreaker(f"sandbox:{name}:{agent}", self.breakers, lambda: stamp,
                              SANDBOX_BREAKER)

    def _sandbox_held(self, name: str, as_of: datetime) -> set[str]:
        """Agents whose sandbox breaker is open at ``as_of`` (a half-open one is tried)."""
        if self.sandbox is None:
            return set()
        held = set()
        for agent in self.configs[name].agents:
            breaker = self._sandbox_breaker(name, agent, as_of)
            if breaker.state is BreakerState.CLOSED:
                continue
            try:
                breaker.allow()
            except CircuitOpen:
                held.add(agent)
        return held

    def _sandbox_verdicts(self, name: str, tick: BeatInput, outcome: BeatOutcome) -> None:
        """A violation is a failure of the agent's breaker; a clean trial beat closes it."""
        if self.sandbox is None:
            return
        violated = {a for r in outcome.roles if r.role == "sandbox" for a in r.agents}
        for agent in self.configs[name].agents:
            breaker = self._sandbox_breaker(name, agent, tick.as_of)
            if agent in violated:
                breaker.record_failure()
            elif agent not in tick.excluded and breaker.state is BreakerState.HALF_OPEN:
                breaker.record_success()

    def _optional_credit_after(self, name: str) -> float:
        """This beat's credit of optional refits: the observers' ``optional_work`` (the
        arbiter's O weight, which its PID lowers when beats overrun the pulse) is
        added each beat, capped at one refit; without such an observer every
        APPLY_OPTIMIZE is honoured (credit 1)."""
        works = [float(w(name)) for obs in self.observers
                 if callable(w := getattr(obs, "optional_work", None))]
        if not works:
            return 1.0
        return min(1.0, self._optional_credit.get(name, 0.0) + min(works))

    def _entries(self, name: str, tick: BeatInput, outcome: BeatOutcome,
                 decisions: Sequence[Decision], optimize: list[list[str]], cursor: Any,
                 deferred: Sequence[list[str]] = (), timing: Mapping[str, Any] | None = None
                 ) -> list[tuple[EntryKind, Mapping[str, Any] | Canonical]]:
        report = outcome.report
        entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]] = [
            (EntryKind.ESTIMATE, canonical_object({"portfolio": name, "seq": tick.seq,
                                                   "estimates": _estimate_texts(outcome)})),
            (EntryKind.CONSENSUS, {
                "beat": {"portfolio": name, "seq": tick.seq, "as_of": tick.as_of.isoformat(),
                         "realized": tick.value, "cursor": cursor,
                         "excluded": sorted(tick.excluded), "factors": dict(tick.factors),
                         "requests": [list(r) for r in tick.requests],
                         "swaps": [_result_dict(s) for s in tick.swaps],
                         "optimize": optimize,
                         **({"optimize_deferred": list(deferred)} if deferred else {}),
                         **(timing or {})},
                "levels": [consensus_record(c) for c in report.consensus],
                "breaches": {k: list(v) for k, v in report.breaches.items()},
                "log_scores": {k: v for k, v in report.log_scores.items() if np.isfinite(v)},
                "rejected": dict(report.rejected),
                "regime_probability": report.regime_probability}),
        ]
        for r in outcome.roles:
            entries.append((EntryKind.FLOW, {"flow": r.role, "result": {
                "portfolio": name, "seq": tick.seq, **r.to_dict()}}))
        for d in decisions:
            entries.append((EntryKind.DECISION, _decision_dict(d)))
        return entries

    def _append(self, entries: list[tuple[EntryKind, Mapping[str, Any] | Canonical]], *,
                beats: int) -> None:
        self._batch.extend(entries)
        self._batched_beats += beats
        if self._batched_beats >= self.ledger_batch:
            self.flush()

    def flush(self) -> None:
        """Commit the pending ledger batch (one transaction)."""
        if self._batch:
            self.ledger.add_entries(self._batch)
            self._batch.clear()  # the same list: observers' beat_entries append to it
            self._batched_beats = 0

    # --- the loop -------------------------------------------------------------------

    def run(self, source: Iterable[Tick | BadLine], *, beats: int | None = None,
            on_beat: Callable[[BeatReport], None] | None = None,
            should_stop: Callable[[], bool] | None = None,
            pace: Pacer | None = None) -> RunSummary:
        """Beat every tick of ``source`` until it ends, ``beats`` beats ran, or ``should_stop()``.

        Ticks for a date the swarm already recorded before a restart are
        skipped (counted in ``skipped``); a source with ``seek`` is first
        moved to the cursor of the last recorded tick. Bad ticks are refused
        and the loop goes on.

        With ``pace`` (the arbiter's ``Cadence``) each beat starts on a pulse
        boundary: the pacer measures the beat up to its observers (their
        ``beat_seconds``, recorded in the beat's ledger record), marks it late
        past the budget, and after the beat waits until the next boundary
        still ahead (not a fixed sleep). Give the source no ``rate`` then.
        """
        if not self._started:
            raise InvalidParameter("call start(history) before run(source)")
        seek = getattr(source, "seek", None)
        if self.cursor is not None and callable(seek):
            seek(self.cursor)
        self._read_cursor = self.cursor
        began = time.perf_counter()
        done: dict[str, int] = dict.fromkeys(self.specs, 0)
        rejected_before = dict(self.rejected)
        refusals_before = dict(self.refusals)
        late_before = pace.late if pace is not None else 0
        self._pace = pace
        try:
            stopped, skipped = self._loop(source, beats, on_beat, should_stop, done)
        finally:
            self._pace = None
        if stopped != "interrupted":  # lost hosts back, their queued ticks beaten
            self._count(self.settle(), done, on_beat)
        if beats is not None and sum(done.values()) >= beats and stopped == "source":
            stopped = "beats"
        self.flush()
        late = pace.late - late_before if pace is not None else 0
        return RunSummary(done, {k: v - rejected_before.get(k, 0) for k, v in self.rejected.items()
                                 if v - rejected_before.get(k, 0)}, skipped, self.cursor,
                          time.perf_counter() - began, stopped, dict(self.seq), late,
                          _since(self.refusals, refusals_before))

    def _loop(self, source: Iterable[Tick | BadLine], beats: int | None,
              on_beat: Callable[[BeatReport], None] | None,
              should_stop: Callable[[], bool] | None, done: dict[str, int]
              ) -> tuple[str, int]:
        """The loop of :meth:`run`; returns why it stopped and the ticks skipped."""
        skipped = 0
        stopped = "source"
        pace = self._pace
        for item in source:
            if beats is not None and sum(done.values()) >= beats:
                stopped = "beats"
                break
            if should_stop is not None and should_stop():
                stopped = "interrupted"
                break
            cursor = getattr(source, "cursor", None)
            if isinstance(item, BadLine):
                self._refuse(InvalidTick(item.reason), item.raw)
                continue
            if self._already(item):
                skipped += 1
                continue
            if pace is not None:
                pace.begin()
            beaten = sum(self.seq.values())
            try:
                try:
                    reports = self.beat([item], cursor=cursor)
                except RestoreQueueFull as full:  # wait for the lost host, then the tick
                    log.warning("%s: waiting for the restore", full)
                    self._count(getattr(full, "caught_up", ()), done, on_beat)
                    self._count(self.settle(), done, on_beat)
                    reports = self.beat([item], cursor=cursor)
            except InvalidTick as refused:  # the queued ticks beaten first still count
                self._count(getattr(refused, "caught_up", ()), done, on_beat)
                continue
            finally:
                # a tick refused before any portfolio beat is no paced beat: not counted
                # (nor late), and the next tick need not wait for a pulse
                if pace is not None and sum(self.seq.values()) > beaten:
                    pace.end()  # wait for the next pulse boundary
            self._count(reports, done, on_beat)
        return stopped, skipped

    @staticmethod
    def _count(reports: Sequence[BeatReport], done: dict[str, int],
               on_beat: Callable[[BeatReport], None] | None) -> None:
        """Count and hand on the beats that ran (not the stale reports served meanwhile)."""
        for rep in reports:
            if _is_served(rep):
                continue
            done[rep.portfolio] += 1
            if on_beat is not None:
                on_beat(rep)

    def _already(self, tick: Any) -> bool:
        """A tick at or before the resume point of its portfolio(s): recorded before a restart."""
        if not self._resume_as_of or not isinstance(tick, Tick):
            return False
        from .ticks import as_utc

        try:
            when = as_utc(tick.as_of)
            names = [s.name for s in route(tick, self.specs)]
        except SwarmVarError:
            return False
        marks = [self._resume_as_of.get(n) for n in names]
        if all(m is not None and when <= m for m in marks):
            return True
        for n, m in zip(names, marks, strict=True):
            if m is None or when > m:  # past its resume point: refused as usual from now on
                self._resume_as_of.pop(n, None)
        return False


def _is_served(report: BeatReport) -> bool:
    """Whether a report is the stale one served for a restoring portfolio (not a beat)."""
    return bool(report.events) and report.events[0].startswith(RESTORING)


def _restore_host(executor: Executor, configs: Sequence[PortfolioConfig],
                  blobs: Mapping[str, bytes], logged: Mapping[str, Sequence[BeatInput | None]],
                  future: Future[None]) -> None:
    """A restoring thread: open the fresh host, restore the checkpoints, replay the log.

    Only this thread talks to the lost portfolios' host until ``future`` is
    done (the swarm sends them nothing meanwhile), so the executor is used
    from two threads on disjoint hosts. A ``None`` in a log is a checkpoint's
    rebase the original run took without storing it (a kill inside its write).
    """
    try:
        executor.open(configs)
        executor.restore(blobs)
        for name, items in logged.items():
            batch: list[tuple[str, BeatInput]] = []
            for item in items:
                if item is None:
                    if batch:
                        executor.beats(batch)
                        batch = []
                    executor.states([name])
                else:
                    batch.append((name, item))
            if batch:
                executor.beats(batch)
        future.set_result(None)
    except BaseException as exc:  # noqa: BLE001 - handed to the swarm's thread
        future.set_exception(exc)


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


def beat_seconds(timings: Mapping[str, object]) -> float:
    """A beat's measured compute time, seconds: the sum of its own timings (the agents'
    update + forecast, refits, signing + combine) that are times (:func:`is_time`; a host's
    value that is not is left out). What the arbiter's PID is given."""
    return float(sum(float(v) for v in timings.values() if is_time(v)))


# --- plain-JSON forms ------------------------------------------------------------------


def _estimate_texts(outcome: BeatOutcome) -> list[Canonical] | list[dict[str, Any]]:
    """The beat's estimate records as it wrote them (from the bytes signed), or the dicts."""
    if len(outcome.estimate_records) == len(outcome.estimates):
        return list(outcome.estimate_records)
    return [_estimate_dict(e) for e in outcome.estimates]


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    d = e.payload()
    d["signature"] = None if e.signature is None else e.signature.hex()
    return d


def _decision_dict(d: Decision) -> dict[str, Any]:
    return {"action": d.action.value, "portfolio": d.portfolio, "seq": d.seq,
            "agents": list(d.agents), "signals": {k: float(v) for k, v in d.signals.items()
                                                  if np.isfinite(v)},
            "threat": float(d.threat), "reason": d.reason,
            "weights": {k: float(v) for k, v in d.weights.items()}}


def _tick_repr(tick: Any) -> Any:
    if isinstance(tick, Tick):
        return {"portfolio": str(tick.portfolio)[:100], "as_of": str(tick.as_of)[:40],
                "value": repr(tick.value)[:40],
                "assets": None if tick.assets is None else {
                    str(k)[:40]: repr(v)[:40] for k, v in list(dict(tick.assets).items())[:50]}}
    return repr(tick)[:300]


def _job_dict(job: RefitJob) -> dict[str, Any]:
    return {"portfolio": job.portfolio, "agent": job.agent, "row": job.row, "t": job.t,
            "launched": job.launched, "swap_at": job.swap_at, "seed": job.seed,
            "reason": job.reason, "state_bytes": len(job.state), "n": int(job.returns.size)}


def _job_from(d: Mapping[str, Any], blob: bytes) -> RefitJob:
    k = int(d["state_bytes"])
    return RefitJob(d["portfolio"], d["agent"], int(d["row"]), int(d["t"]), int(d["launched"]),
                    int(d["swap_at"]), blob[:k], np.frombuffer(blob[k:], dtype=np.float64).copy(),
                    int(d["seed"]), d["reason"])


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


def _forecasts_in(blobs: Sequence[tuple[bytes, Sequence[str]]]) -> dict[str, Any]:
    """The last forecasts held in groups' state blobs (a spread portfolio's first consensus),
    each group's of its own agents only."""
    from . import state as packing
    from .beat import _forecast_from

    out: dict[str, Any] = {}
    for blob, agents in blobs:
        header, _ = packing.unpack(blob)
        out.update({a: _forecast_from(d) for a, d in header["forecasts"].items() if a in agents})
    return out
