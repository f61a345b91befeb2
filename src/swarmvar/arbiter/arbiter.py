"""The :class:`Arbiter`: the stateful wrapper the runtime calls after each beat.

It keeps one :class:`~.step.ArbiterState` per portfolio and runs the pure
:func:`~.step.step` on each :class:`~swarmvar.types.BeatReport`; around it:

* quarantine goes through the evolution engine's circuit breakers, one per
  (portfolio, agent), with data time as the clock: a QUARANTINE opens the
  agent's breaker (one failure trips it); after the probation
  (``reset_timeout_s``) the breaker half-opens and the agent's signals of
  that beat decide - clean, it closes and the agent is back; not, it opens
  again. ``excluded()`` is every agent whose breaker is not closed;
* ALERTs come once per alert episode (:class:`~.decide.AlertEpisode`, in
  the portfolio's state and its checkpoint): raised when the threat reaches
  the ALERT threshold, again only for a kind of anomaly of an agent not
  quarantined the open episode has not named (or at the quarantine threshold),
  and closed after ``Thresholds.release_beats`` calm beats: the closing beat
  ledgers an ``alert_closed`` event (``since``, ``until``, ``agents``: every
  agent its ALERTs named, ``named``: the names it still held);
* APPLY_BALANCE factors hold for the next consensus (``weight_factors``); a balance
  names no agent held out of it: quarantined, or held out otherwise (the beat report's
  ``quarantined`` beyond the arbiter's own: a sandbox's breaker), unless this beat's
  probation released it;
* the threat model is read from :class:`~.versions.ThreatVersions` and,
  with ``retrain_every``, retrained on the beats seen so far (label: a
  consensus breach at any level within the next ``horizon`` beats) and
  published as a new version;
* every pulse, core output, decision, PID step, quarantine, release and closed alert is
  written to the ledger, one atomic batch per beat (or into the swarm's own
  beat transaction, given the swarm's ``beat_entries`` as the ledger);
* its per-portfolio state goes into the swarm's checkpoints
  (:meth:`Arbiter.checkpoint_state` / :meth:`Arbiter.restore_state`, see
  :mod:`.checkpoint`), and the swarm re-feeds it the beats it replays after
  a restart (:meth:`Arbiter.replay`, nothing recorded again), so a restarted
  arbiter decides as the uninterrupted one.

It implements the runtime's observer protocol: ``observe``, ``excluded``,
``weight_factors``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..errors import (
    ArbiterOptionsMismatch,
    CircuitOpen,
    InvalidParameter,
    InvalidSignal,
    InvalidState,
    UnknownAgent,
)
from ..evolution import (
    BreakerConfig,
    BreakerSnapshot,
    BreakerState,
    BreakerStorage,
    CircuitBreaker,
    MemoryBreakerStorage,
)
from ..ledger import EntryKind, Ledger
from ..types import Action, BeatReport, Decision
from .checkpoint import (
    PortfolioCheckpoint,
    as_deques,
    option_words,
    options_of,
    pack_checkpoint,
    unpack_checkpoint,
)
from .decide import Quarantined, Thresholds
from .pid import PidGains
from .pulse import Pulse
from .signals import BeatSignals, check_beat, levels_of, read_beat
from .step import ArbiterConfig, ArbiterState, StepOutput, step
from .threat import SEED_MODEL, ThreatModel, fit_threat_model
from .versions import ThreatVersions

DAY_S = 86_400.0

#: Quarantine breakers: one failure trips; a week of data time on probation;
#: retried indefinitely (an operator's ``release`` ends it early).
QUARANTINE_BREAKER = BreakerConfig(failure_threshold=1, reset_timeout_s=7 * DAY_S,
                                   max_reset_attempts=1_000_000)


class EntrySink(Protocol):
    """Where the arbiter's ledger entries go: a :class:`~swarmvar.ledger.Ledger`, or the
    swarm's ``beat_entries`` (the beat's own transaction)."""

    def add_entries(self, batch: Sequence[tuple[EntryKind, Mapping[str, Any]]]) -> object:
        ...


@dataclass(frozen=True)
class Retraining:
    """When and on what the threat model is retrained.

    Every ``every`` beats once ``min_beats`` labelled beats exist; the label
    of beat ``i`` is a consensus breach at any level in beats ``i+1 ..
    i+horizon`` (its forecasts' next ``horizon`` days); at most ``window``
    beats are kept.
    """

    every: int = 250
    min_beats: int = 500
    horizon: int = 5
    window: int = 2500
    l2: float = 1.0


@dataclass
class _Portfolio:
    state: ArbiterState = field(default_factory=ArbiterState)
    agents: set[str] = field(default_factory=set)
    factors: dict[str, float] = field(default_factory=dict)
    features: deque[tuple[float, ...]] = field(default_factory=deque)
    breached: deque[bool] = field(default_factory=deque)
    now: float = 0.0
    last: BeatSignals | None = None
    closed: Mapping[str, object] | None = None  # the last beat's alert_closed event, if any
    #: the last few alert_closed events by the beat they closed on (a catch-up hands the
    #: reports of several beats over at once: each finds its own)
    closes: deque[Mapping[str, object]] = field(default_factory=lambda: deque(maxlen=64))


def _replace_with(snapshot: BreakerSnapshot) -> Callable[[BreakerSnapshot], BreakerSnapshot]:
    def change(_old: BreakerSnapshot) -> BreakerSnapshot:
        return snapshot
    return change


def threat_labels(breached: Sequence[bool], horizon: int) -> np.ndarray:
    """Labels ``(T - horizon,)``: beat ``i`` is 1 if a consensus breach comes at beats
    ``i+1 .. i+horizon``."""
    b = np.asarray(breached, dtype=bool)
    if b.size <= horizon:
        return np.zeros(0, dtype=bool)
    windows = np.lib.stride_tricks.sliding_window_view(b[1:], horizon)
    return np.asarray(windows.any(axis=1))


class Arbiter:
    """The beat's decisions for every portfolio of a swarm (see the module docstring).

    Parameters
    ----------
    config : ArbiterConfig
        Pulse, thresholds, PID gains, signal cut-offs.
    ledger : Ledger or EntrySink, optional
        Where every step is recorded (nothing is recorded without one); the
        swarm's ``beat_entries`` puts them in the beat's own transaction.
    model : ThreatModel, optional
        The threat model to start from (default: the active published
        version, else the design's :data:`~.threat.SEED_MODEL`).
    versions : ThreatVersions, optional
        Where threat models are versioned (default: in memory).
    breakers : BreakerStorage, optional
        Quarantine breakers' storage (default: in memory); pass an
        evolution home's ``breakers`` to share them across processes.
    quarantine : BreakerConfig
        The quarantine breakers' thresholds (data-time seconds).
    retraining : Retraining or None
        Retrain and publish the threat model on a schedule (None: never).
    parallel : bool
        Run the four cores on a 4-thread pool (the design's) instead of
        serially; same outputs. Serial is the default: faster at these
        sizes (benchmarks/bench_arbiter.py).
    record_decisions : bool
        Also record decisions here (turn off when the runtime records the
        decisions ``observe`` returns in the same ledger).
    """

    #: The key of this observer's state in the swarm's checkpoints.
    state_key = "arbiter"

    def __init__(self, config: ArbiterConfig | None = None, *,
                 ledger: Ledger | EntrySink | None = None,
                 model: ThreatModel | None = None, versions: ThreatVersions | None = None,
                 breakers: BreakerStorage | None = None,
                 quarantine: BreakerConfig = QUARANTINE_BREAKER,
                 retraining: Retraining | None = None, parallel: bool = False,
                 record_decisions: bool = True) -> None:
        self.config = config or ArbiterConfig()
        self.ledger = ledger
        self.versions = versions or ThreatVersions()
        self.model = model or self.versions.active() or SEED_MODEL
        self.breakers = breakers or MemoryBreakerStorage()
        self.quarantine = quarantine
        self.retraining = retraining
        self.record_decisions = record_decisions
        self._pool: Executor | None = ThreadPoolExecutor(4) if parallel else None
        self._portfolios: dict[str, _Portfolio] = {}
        self._replaying = False
        self._model_now = -math.inf  # data time of the checkpoint the model was restored from

    @classmethod
    def from_options(cls, *, k_flows: float = 4, p_nodes: float = 5, t_threshold: float = 0.02,
                     t1: float = 0.001, u: float = math.e**4,
                     ledger: Ledger | EntrySink | None = None,
                     thresholds: Thresholds | None = None, gains: PidGains | None = None,
                     **kwargs: Any) -> Arbiter:
        """An arbiter from the design's command-line options (``--k-flows``, ``--p-nodes``,
        ``--t-threshold``) and the base time ``t1`` of the pulse; other keywords go to
        the constructor."""
        config = ArbiterConfig(pulse=Pulse(k_flows, p_nodes, u, t1, t_threshold),
                               thresholds=Thresholds() if thresholds is None else thresholds,
                               gains=PidGains() if gains is None else gains)
        return cls(config, ledger=ledger, **kwargs)

    # --- the observer protocol --------------------------------------------------

    def observe(self, report: BeatReport, beat_seconds: float | None = None
                ) -> Sequence[Decision]:
        """Read one beat, decide, recalibrate, record; returns the beat's decision.

        ``beat_seconds`` is the beat's measured compute time (the PID's
        error against the pulse budget); without it the PID holds.
        """
        if beat_seconds is not None and (isinstance(beat_seconds, bool) or not isinstance(
                beat_seconds, (int, float)) or not math.isfinite(beat_seconds)
                or beat_seconds < 0):
            raise InvalidSignal(f"beat_seconds is {beat_seconds!r}; give the measured seconds")
        if not isinstance(report, BeatReport):
            raise InvalidSignal(
                f"the arbiter observes BeatReport objects, not {type(report).__name__}")
        p = self._portfolios.get(report.portfolio) or _Portfolio()
        if not levels_of(p.state.memory, report):
            # every agent refused the portfolio's first beats (a return they cannot take):
            # no levels to read yet, so nothing is decided or remembered; the runtime and
            # the service keep beating, and the first beat with levels starts the signals.
            # Its fields and numbers are still checked (a NaN return is refused here too)
            check_beat(report)
            return ()
        memory, signals = read_beat(p.state.memory, report, self.config.signals)
        self._portfolios[report.portfolio] = p
        p.now = report.as_of.timestamp()
        p.agents.update(a.agent for a in signals.agents)
        p.last = signals
        events = self._probation(report.portfolio, p, signals)
        out_before, since = self._held_out(report.portfolio)
        # held out of the consensus otherwise (a sandbox's breaker), not by a probation this
        # beat passed: a balance leaves them out too (down-weighting them does nothing)
        released = {str(e["agent"]) for e in events if e["type"] == "release"}
        aside = frozenset(report.quarantined) - out_before - released
        state, out = step(replace(p.state, memory=memory), signals, config=self.config,
                          model=self.model, beat_seconds=beat_seconds, excluded=out_before,
                          pool=self._pool, quarantined=since, aside=aside)
        before = p.state.episode
        p.state = state
        d = out.decision
        p.closed = None
        if before.open and not state.episode.open:  # the alert resolved: its span and names
            p.closed = {"type": "alert_closed", "since": before.since, "until": d.seq,
                        "agents": list(before.alerted), "named": list(before.named)}
            events.append(dict(p.closed))
            p.closes.append(p.closed)
        if d.action is Action.QUARANTINE:
            for agent in d.agents:
                self._breaker(report.portfolio, agent, p).record_failure()
                events.append({"type": "quarantine", "agent": agent})
        p.factors = dict(d.weights) if d.action is Action.APPLY_BALANCE else {}
        self._record(out, events)
        self._learn(p, signals)
        return (d,)

    def replay(self, report: BeatReport, beat_seconds: float | None = None
               ) -> Sequence[Decision]:
        """:meth:`observe` a beat that is already in the ledger (the swarm's replay after a
        restart, with the beat's recorded seconds): the state moves exactly as it did
        the first time, nothing is recorded again."""
        self._replaying = True
        try:
            return self.observe(report, beat_seconds)
        finally:
            self._replaying = False

    def replay_action(self, action: Mapping[str, Any]) -> None:
        """Apply again an operator's recorded ``quarantine`` or ``release`` (the swarm's
        replay after a restart; nothing recorded). Other actions are ignored."""
        details = action.get("details")
        if not isinstance(details, Mapping) or details.get("by") != "operator":
            return
        portfolio, agent = str(details.get("portfolio")), str(details.get("agent"))
        p = self._portfolios.get(portfolio)
        if p is None or agent not in p.agents:
            return
        breaker = self._breaker(portfolio, agent, p)
        if action.get("type") == "quarantine":
            breaker.record_failure()
        elif action.get("type") == "release":
            breaker.reset()

    # --- checkpoints ------------------------------------------------------------------

    def checkpoint_state(self, portfolio: str) -> bytes:
        """The portfolio's arbiter state as bytes (a fresh state if it was never observed):
        genome, PID, counters, signal memory, factors, retraining history, the threat
        model and its quarantine breakers, and the options it decides with (the pulse's,
        the thresholds: :func:`~.checkpoint.options_of`) (:mod:`.checkpoint`)."""
        p = self._portfolios.get(portfolio) or _Portfolio()
        breakers = {a: self.breakers.load(self._name(portfolio, a)) for a in sorted(p.agents)}
        return pack_checkpoint(PortfolioCheckpoint(
            p.state, tuple(sorted(p.agents)), dict(p.factors), p.now, tuple(p.features),
            tuple(p.breached), self.model, breakers, options_of(self.config)))

    def check_state(self, portfolio: str, blob: bytes) -> None:
        """Check that :meth:`checkpoint_state` bytes of ``portfolio`` can be restored here,
        restoring and writing nothing: for a resume to refuse before it opens or restores
        anything (:meth:`restore_state` checks the same again).

        Raises
        ------
        InvalidState
            The bytes are not an arbiter state, are cut or altered, or hold a malformed
            retraining history.
        ArbiterOptionsMismatch
            The checkpoint was made under other options (see :meth:`restore_state`).
        """
        portfolio = self._portfolio(portfolio)
        c = unpack_checkpoint(blob)
        self._check_options(portfolio, c.options)
        self._history(portfolio, c)

    def restore_state(self, portfolio: str, blob: bytes, agents: Sequence[str] = ()) -> None:
        """Resume the portfolio from :meth:`checkpoint_state` bytes: its state, its breakers
        (written back to the breaker storage) and the threat model (the newest checkpoint's,
        when several portfolios are restored). ``agents`` (the
        portfolio's) not in the checkpoint get a fresh, closed breaker: what a later run
        did to them is replayed from the ledger.

        Raises
        ------
        InvalidState
            The bytes are not an arbiter state, are cut or altered, or hold levels the
            configuration cannot read.
        ArbiterOptionsMismatch
            A ``ResumeMismatch`` (and ``InvalidState``): the checkpoint was made under
            other options (the pulse's ``k_flows``,
            ``p_nodes``, ``u``, ``t1``, ``t_threshold``, or a threshold), each named
            "saved X, now Y"; raised before anything is restored or written. A checkpoint
            from before options were stored is not compared.
        """
        portfolio = self._portfolio(portfolio)
        if isinstance(agents, (str, bytes)) or not isinstance(agents, Sequence) or not all(
                isinstance(a, str) for a in agents):
            raise InvalidParameter(f"agents must be a sequence of agent names, not {agents!r}")
        c = unpack_checkpoint(blob)
        self._check_options(portfolio, c.options)
        features, breached = self._history(portfolio, c)
        p = _Portfolio(c.state, set(c.agents), dict(c.factors), features, breached, c.now)
        fresh = BreakerSnapshot()
        for agent in sorted({*c.breakers, *agents}):
            self.breakers.update(self._name(portfolio, agent),
                                 _replace_with(c.breakers.get(agent, fresh)))
        self._portfolios[portfolio] = p
        # one threat model serves every portfolio: the newest checkpoint's wins, whatever
        # order the portfolios are restored in (models only move forward in time)
        if c.now >= self._model_now:
            self.model = c.model
            self._model_now = c.now

    @staticmethod
    def _history(portfolio: str, c: PortfolioCheckpoint
                 ) -> tuple[deque[tuple[float, ...]], deque[bool]]:
        """The checkpoint's retraining history (features, breaches) as deques, checked.

        Raises
        ------
        InvalidState
            Feature rows of different lengths, or not one breach flag per row.
        """
        features, breached = as_deques(c)
        if any(len(f) != len(c.features[0]) for f in c.features) or len(features) != len(
                breached):
            raise InvalidState(f"the arbiter's retraining history of {portfolio!r} is malformed")
        return features, breached

    def _check_options(self, portfolio: str, saved: Mapping[str, Any] | None) -> None:
        """Refuse a checkpoint of ``portfolio`` made under options other than this
        arbiter's (see :meth:`restore_state`); None (an older checkpoint) passes."""
        if saved is None:
            return
        now = options_of(self.config)
        differ = [f"{option_words(k)}: saved {saved[k]!r}, now {now[k]!r}"
                  for k in sorted(saved.keys() & now.keys()) if saved[k] != now[k]]
        if differ:
            raise ArbiterOptionsMismatch(
                f"the arbiter's checkpoint of {portfolio!r} was made under other options: "
                f"{'; '.join(differ)}; resume with the options it ran with, or give "
                "another home")

    # --- the observer protocol, continued ----------------------------------------------

    def excluded(self, portfolio: str) -> frozenset[str]:
        """Agents held out of the next consensus (their quarantine breaker is not closed)."""
        return self._held_out(portfolio)[0]

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        """The last beat's APPLY_BALANCE multipliers in [0, 1] ({} = none)."""
        p = self._portfolios.get(portfolio)
        return dict(p.factors) if p is not None else {}

    def optional_work(self, portfolio: str) -> float:
        """How much optional work the portfolio's next beat should do, in [0, 1] (O's place
        in its range; 0.5 before any beat): the runtime scales posterior draws or refit
        eagerness by it, which is what the PID's measured error feeds back on."""
        p = self._portfolios.get(portfolio)
        return p.state.genome.optional_work if p is not None else 0.5

    # --- operators -----------------------------------------------------------------

    def release(self, portfolio: str, agent: str) -> None:
        """Operator release: close the agent's quarantine breaker now."""
        p = self._known(portfolio, agent)
        self._breaker(portfolio, agent, p).reset()
        self._record_events(portfolio, [{"type": "release", "agent": agent,
                                         "by": "operator"}], now=True)

    def quarantine_now(self, portfolio: str, agent: str) -> None:
        """Operator quarantine: open the agent's breaker now."""
        p = self._known(portfolio, agent)
        self._breaker(portfolio, agent, p).record_failure()
        self._record_events(portfolio, [{"type": "quarantine", "agent": agent,
                                         "by": "operator"}], now=True)

    def last_signals(self, portfolio: str) -> BeatSignals:
        """The signals of the portfolio's last observed beat."""
        p = self._seen(portfolio)
        if p is None or p.last is None:
            raise UnknownAgent(f"the arbiter has seen no beat of portfolio {portfolio!r}")
        return p.last

    def alert_closed(self, portfolio: str, seq: int | None = None
                     ) -> Mapping[str, object] | None:
        """The ``alert_closed`` event of the portfolio's last observed beat (the beat its
        alert episode closed: ``since``, ``until``, ``agents`` - every agent its ALERTs
        named, ``named`` - the ``<kind>:<agent>`` names it still held), else None; with
        ``seq``, the event of that beat among the last 64 closes (a catch-up's reports are
        handed over after all their beats were observed)."""
        p = self._seen(portfolio)
        if p is None:
            return None
        if seq is None:
            return p.closed
        return next((c for c in reversed(p.closes) if c.get("until") == seq), None)

    def state(self, portfolio: str) -> ArbiterState:
        """The portfolio's arbiter state (``UnknownAgent`` if never observed)."""
        p = self._seen(portfolio)
        if p is None:
            raise UnknownAgent(f"the arbiter has seen no beat of portfolio {portfolio!r}")
        return p.state

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Arbiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------

    @staticmethod
    def _portfolio(portfolio: object) -> str:
        if not isinstance(portfolio, str):
            raise InvalidParameter(f"a portfolio is named by a string, not {portfolio!r}")
        return portfolio

    def _seen(self, portfolio: object) -> _Portfolio | None:
        return self._portfolios.get(self._portfolio(portfolio))

    @staticmethod
    def _name(portfolio: str, agent: str) -> str:
        return f"arbiter:{portfolio}:{agent}"

    def _known(self, portfolio: str, agent: str) -> _Portfolio:
        if not isinstance(agent, str):
            raise InvalidParameter(f"an agent is named by a string, not {agent!r}")
        p = self._seen(portfolio)
        if p is None or agent not in p.agents:
            known = ", ".join(sorted(p.agents)) if p is not None else "none (no beat seen)"
            raise UnknownAgent(f"no agent {agent!r} in portfolio {portfolio!r}; known: {known}")
        return p

    def _breaker(self, portfolio: str, agent: str, p: _Portfolio) -> CircuitBreaker:
        return CircuitBreaker(self._name(portfolio, agent), self.breakers, lambda: p.now,
                              self.quarantine)

    def _held_out(self, portfolio: str) -> tuple[frozenset[str], dict[str, Quarantined]]:
        """The agents held out of the next consensus (their breaker is not CLOSED) and, for
        the reasons' words, since when: each one's breaker's last opening (data time) and
        the probations it has failed since its quarantine (its half-open attempts: a passed
        one closes the breaker and clears them). One read of each breaker for both, so they
        agree; read from the breakers, so a restarted arbiter says the same."""
        p = self._portfolios.get(portfolio)
        if p is None:
            return frozenset(), {}
        out: set[str] = set()
        since: dict[str, Quarantined] = {}
        for agent in p.agents:
            snap = self.breakers.load(self._name(portfolio, agent))
            if snap.state is BreakerState.CLOSED:
                continue
            out.add(agent)
            if snap.opened_at is not None:
                since[agent] = Quarantined(snap.opened_at, snap.reset_attempts)
        return frozenset(out), since

    def _probation(self, portfolio: str, p: _Portfolio, signals: BeatSignals
                   ) -> list[dict[str, object]]:
        """Quarantined agents past their probation are checked on this beat's signals."""
        events: list[dict[str, object]] = []
        for agent in sorted(self.excluded(portfolio)):
            breaker = self._breaker(portfolio, agent, p)
            try:
                breaker.allow()
            except CircuitOpen:
                continue
            try:
                a = signals.agent(agent)
            except KeyError:
                passed = False
            else:
                passed = not (a.failed or a.outside_low or any(a.breaches))
            if passed:
                breaker.record_success()
                events.append({"type": "release", "agent": agent, "by": "probation"})
            else:
                breaker.record_failure()
                events.append({"type": "probation_failed", "agent": agent})
        return events

    def _learn(self, p: _Portfolio, signals: BeatSignals) -> None:
        r = self.retraining
        if r is None:
            return
        p.features.append(signals.features)
        p.breached.append(any(signals.consensus_breaches))
        while len(p.features) > r.window:
            p.features.popleft()
            p.breached.popleft()
        if p.state.beats % r.every or len(p.features) < r.min_beats + r.horizon:
            return
        labels = threat_labels(list(p.breached), r.horizon)
        x = np.array(list(p.features)[: labels.size])
        if labels.all() or not labels.any():
            return
        label = f"consensus breach within {r.horizon} beats"
        trained = fit_threat_model(x, labels, l2=r.l2, label=label)
        if self._replaying:  # the run before the restart may have published this one
            active = self.versions.active()
            if active is not None and active.to_parameters() == trained.to_parameters():
                self.model = active
                return
        self.model = self.versions.publish(trained, f"retrained on {labels.size} beats",
                                           now=p.now)
        self._record_events(signals.portfolio, [{"type": "threat_model", "version":
                                                 self.model.version, "beats": int(labels.size)}])

    def _record(self, out: StepOutput, events: list[dict[str, object]]) -> None:
        if self.ledger is None or self._replaying:
            return
        s = out.signals
        where = {"portfolio": s.portfolio, "seq": s.seq}
        pulse = {**where, **self.config.pulse.to_json(), "beat_seconds": out.beat_seconds,
                 "late": out.late}
        batch: list[tuple[EntryKind, Mapping[str, Any]]] = [(EntryKind.PULSE, pulse)]
        for core, result in out.cores.to_json().items():
            batch.append((EntryKind.FLOW, {"flow": core, "result": {**where, **result}}))
        batch.append((EntryKind.FLOW, {"flow": "pid", "result": {**where, **out.pid.to_json()}}))
        if self.record_decisions:
            d = out.decision
            batch.append((EntryKind.ACTION, {"type": d.action.value, "details": {
                **where, "agents": list(d.agents), "threat": d.threat, "reason": d.reason,
                "signals": dict(d.signals), "weights": dict(d.weights),
                "model": out.cores.entropy.version}}))
        for e in events:
            batch.append((EntryKind.ACTION, {"type": str(e["type"]), "details": {**where, **e}}))
        self.ledger.add_entries(batch)

    def _record_events(self, portfolio: str, events: list[dict[str, object]], *,
                       now: bool = False) -> None:
        """Ledger the events; ``now``: an operator's action between beats, committed at
        once where the ledger joins beats' transactions (``commit``), so a kill -9 before
        the next beat cannot lose it."""
        if self.ledger is not None and events and not self._replaying:
            entries = [(EntryKind.ACTION, {"type": str(e["type"]), "details": {
                "portfolio": portfolio, **e}}) for e in events]
            commit = getattr(self.ledger, "commit", None) if now else None
            if commit is not None:
                commit(entries)
            else:
                self.ledger.add_entries(entries)
