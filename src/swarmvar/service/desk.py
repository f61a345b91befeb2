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
appends with compare-and-append (``if_size``), so a beat is computed on
copies of the agents and retried after a sync if another process appended
first. Hence one gap-free chain, every beat recorded once, and a
repeated (portfolio, date) recognised whichever process saw it first.

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

Refits run inside the beat (``refit_lag`` 0), so a replay is exact. The
arbiter's instructions reach the next request's beats (within one batch the
beats share the instructions in force when it arrived).

The arbiter is wired as ``swarmvar run`` wires it (:mod:`swarmvar.swarm.runtime`):
each beat's measured compute time (the sum of the beat's own timings) is
given to it as ``beat_seconds`` (the PID's error against its pulse) and
recorded in the tick's entry, so a process replaying the beat feeds it the
same seconds (:meth:`~swarmvar.arbiter.Arbiter.replay`) and every process's
arbiter moves alike. Its state (``checkpoint_state``) is checkpointed into
the home's state store every ``checkpoint_every`` beats of a portfolio,
headed by its mark: the beat and the ledger index and hash of that beat's
tick entry (:class:`CheckpointMark`), one stored value, so a state and the
beat it was taken at are never read apart. A desk started on the same home
restores each observer at its own mark and replays it only over the beats
after it (a state whose mark is not on the ledger, that has no mark or
cannot be read is logged and ignored: that observer then replays every beat,
as the ledger is the source of truth). Within one ingested batch the
observers see every beat before the batch's decisions are appended (that
append syncs in other processes' later beats).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np

from ..consensus import Aggregator, KeyRing, Policy, Weighting
from ..errors import (
    ConflictingInput,
    InvalidParameter,
    InvalidReturns,
    SwarmVarError,
    UnknownPortfolio,
)
from ..ledger import EntryKind, Ledger
from ..ledger.entry import canonical_data, format_timestamp
from ..ledger.store import Row
from ..models import canonical_name
from ..swarm import BeatInput, PortfolioConfig, PortfolioSwarm, RoleConfig
from ..swarm.consensus import SWARM_POLICY
from ..swarm.record import consensus_record
from ..swarm.runtime import BeatObserver, beat_seconds, takes_seconds
from ..types import Action, BeatReport, Decision

log = logging.getLogger("swarmvar.service")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
MIN_HISTORY, MAX_HISTORY = 30, 10_000
#: Beats kept in memory per portfolio for history, charts and rolling statistics.
KEEP_BEATS = 5000
_RETRIES = 200
#: State-store key prefix of the desk's checkpoints: ``<prefix><state_key>:<portfolio>``
#: holds an observer's state, its :class:`CheckpointMark` on the first line. (Desks before
#: this one also wrote a ``desk-mark:<portfolio>`` key repeating the mark; it is ignored.)
OBSERVER_PREFIX = "desk-observer:"


@dataclass(frozen=True)
class DatedReturn:
    """One day's log return of a portfolio (a fraction), as it arrives."""

    as_of: date
    value: float


@dataclass(frozen=True)
class Ingested:
    """The outcome of one ingested return: its beat number, and whether it was already there."""

    portfolio: str
    as_of: date
    seq: int
    duplicate: bool


@dataclass(frozen=True)
class BeatPoint:
    """A beat as the dashboard and history show it: consensus per level, realized, breaches."""

    seq: int
    as_of: date
    realized: float | None
    alphas: tuple[float, ...]
    var: tuple[float, ...]
    es: tuple[float, ...]
    var_interval: tuple[tuple[float, float], ...]
    es_interval: tuple[tuple[float, float], ...]
    breaches: tuple[bool, ...]


@dataclass(frozen=True)
class LevelStats:
    """Rolling coverage of one level: days, breaches, expected breaches, test p-values."""

    alpha: float
    days: int
    breaches: int
    expected: float
    kupiec_pvalue: float | None
    christoffersen_pvalue: float | None


@dataclass(frozen=True)
class PortfolioInfo:
    """A portfolio as listed: its agents, levels, beats so far and last date."""

    name: str
    agents: tuple[str, ...]
    alphas: tuple[float, ...]
    horizon: int
    beats: int
    last_date: date
    created_by: str


@dataclass
class _Book:
    """One portfolio's live state (mutable; guarded by the desk's lock)."""

    name: str
    swarm: PortfolioSwarm
    created_by: str
    recorded: dict[date, float] = field(default_factory=dict)
    last_date: date = date.min
    seq: int = 0
    last: BeatReport | None = None
    points: deque[BeatPoint] = field(default_factory=lambda: deque(maxlen=KEEP_BEATS))
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=KEEP_BEATS))

    @property
    def alphas(self) -> tuple[float, ...]:
        return self.swarm.config.alphas

    @property
    def agents(self) -> tuple[str, ...]:
        return self.swarm.config.agents


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def _clone(b: _Book) -> _Book:
    """A copy to compute beats on: the swarm deep-copied, the rest shallow.

    The signing keys are shared; the key ring is a new one (it remembers the
    sequence numbers it admitted, and a discarded trial's must not count as
    seen when the beat is computed again or replayed from another process).
    """
    sw = b.swarm
    ring = KeyRing({a: k.public_key() for a, k in sw.keys.items()})
    swarm = copy.deepcopy(sw, {id(sw.keys): sw.keys, id(sw.ring): ring,
                               id(sw.config): sw.config})
    return _Book(name=b.name, swarm=swarm, created_by=b.created_by, recorded=dict(b.recorded),
                 last_date=b.last_date, seq=b.seq, last=b.last, points=b.points.copy(),
                 decisions=b.decisions.copy())


def _decision_record(d: Decision) -> dict[str, Any]:
    return {"portfolio": d.portfolio, "seq": d.seq, "action": d.action.value,
            "agents": list(d.agents), "signals": dict(d.signals), "threat": d.threat,
            "reason": d.reason, "weights": dict(d.weights)}


def _decision_from(d: Mapping[str, Any]) -> Decision:
    return Decision(action=Action(d["action"]), portfolio=str(d["portfolio"]), seq=int(d["seq"]),
                    agents=tuple(d["agents"]), signals=dict(d["signals"]),
                    threat=float(d["threat"]), reason=str(d["reason"]),
                    weights=dict(d["weights"]))


def _estimate_record(e: Any) -> dict[str, Any]:
    d: dict[str, Any] = e.payload()
    d["signature"] = None if e.signature is None else e.signature.hex()
    return d


def _recorded_seconds(value: Any) -> float | None:
    """A tick entry's ``beat_seconds`` (None when absent or not a time: older entries)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if np.isfinite(v) and v >= 0 else None


@dataclass(frozen=True)
class CheckpointMark:
    """Where a checkpointed observer state stands: after beat ``seq`` of its portfolio,
    whose tick entry is at ledger ``index`` with hash ``hash`` (hex). Stored as the first
    line of the state (one JSON object), so state and mark are written and read as one."""

    seq: int
    index: int
    hash: str

    def line(self) -> bytes:
        return json.dumps({"seq": self.seq, "index": self.index, "hash": self.hash},
                          sort_keys=True).encode()

    @classmethod
    def split(cls, blob: bytes) -> tuple[CheckpointMark, bytes] | None:
        """The mark a stored state starts with and the observer's bytes after it; None
        when the blob does not start with a mark line (a state written before states
        carried their mark: its beat is unknown)."""
        head, newline, body = blob.partition(b"\n")
        try:
            d = json.loads(head) if newline else None
        except ValueError:
            return None
        if not isinstance(d, dict) or set(d) != {"seq", "index", "hash"}:
            return None
        seq, index, digest = d["seq"], d["index"], d["hash"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (seq, index)) or not isinstance(digest, str) \
                or not _HEX64.fullmatch(digest):
            return None
        return cls(seq, index, digest), body


@dataclass(frozen=True)
class _Attached:
    """An observer with its calls looked up once, when the desk gets it: ``observe``, and
    ``replay`` for recorded beats (its ``replay`` if it has one, else ``observe``), each
    with whether it takes ``beat_seconds=`` (the arbiter's PID does)."""

    observer: BeatObserver
    observe: Callable[..., Iterable[Decision]]
    observe_seconds: bool
    replay: Callable[..., Iterable[Decision]]
    replay_seconds: bool

    @classmethod
    def of(cls, obs: BeatObserver) -> _Attached:
        replay = getattr(obs, "replay", None)
        again = replay if callable(replay) else obs.observe
        return cls(obs, obs.observe, takes_seconds(obs.observe), again, takes_seconds(again))

    def __call__(self, report: BeatReport, seconds: float | None, again: bool
                 ) -> Iterable[Decision]:
        call, timed = ((self.replay, self.replay_seconds) if again
                       else (self.observe, self.observe_seconds))
        if seconds is not None and timed:
            return call(report, beat_seconds=seconds)
        return call(report)


def check_returns(items: Sequence[DatedReturn], what: str) -> None:
    """Finite returns above -100% in strictly increasing date order, else InvalidReturns."""
    for i, it in enumerate(items):
        if not np.isfinite(it.value) or it.value <= -1.0 or abs(it.value) > 10.0:
            raise InvalidReturns(f"{what}[{i}] ({it.as_of}) has return {it.value!r}; a daily log "
                                 "return must be a finite fraction (0.01 = 1%) above -1")
        if i and it.as_of <= items[i - 1].as_of:
            raise ConflictingInput(
                f"{what}: dates out of order at [{i}] ({it.as_of} after {items[i - 1].as_of}); "
                "send returns oldest first, one per date")


def policy_for(n_agents: int) -> Policy:
    """The swarm's policy where it tolerates a faulty agent (3 or more), else an equal mean."""
    if n_agents >= SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f):
        return SWARM_POLICY
    return Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.EQUAL)


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
        (the arbiter's) in ``<home>``'s state store; restored by a desk started there.

    Raises
    ------
    InvalidParameter
        ``checkpoint_every`` is not a whole number >= 1.
    """

    def __init__(self, ledger: Ledger, home: str | Path, *,
                 agents: Sequence[str] = ("NormalInverseGamma", "BayesianBootstrap"),
                 alphas: Sequence[float] = (0.99, 0.975), horizon: int = 1,
                 window: int = 1000, refit_every: int = 20, seed: int = 0,
                 observers: Sequence[BeatObserver] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 checkpoint_every: int = 250):
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 1:
            raise InvalidParameter(f"checkpoint_every must be a whole number >= 1 of beats, "
                                   f"not {checkpoint_every!r}")
        self.ledger = ledger
        self.home = Path(home)
        self.checkpoint_every = checkpoint_every
        self.agents = tuple(canonical_name(a) for a in agents)
        self.alphas = tuple(float(a) for a in alphas)
        self.horizon = horizon
        self.window = window
        self.refit_every = refit_every
        self.seed = seed
        self.observers = tuple(observers)
        self._attached = tuple(_Attached.of(obs) for obs in self.observers)
        self._clock = clock
        self._lock = threading.RLock()
        self._books: dict[str, _Book] = {}
        self._seen = 0
        self._on_beat: list[Callable[[str, BeatPoint], None]] = []
        self._on_report: list[Callable[[BeatReport, tuple[Decision, ...]], None]] = []
        #: (portfolio, observer's position) -> the seq its restored state stands at (the
        #: initial sync replays that observer only after it)
        self._restored: dict[tuple[str, int], int] = {}
        self._startup = self._stateful() != []
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

    def _info(self, b: _Book) -> PortfolioInfo:
        return PortfolioInfo(b.name, b.agents, b.alphas, b.swarm.config.horizon, b.seq,
                             b.last_date, b.created_by)

    def _book(self, name: str) -> _Book:
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

        Raises
        ------
        InvalidParameter, InvalidReturns, ConflictingInput, UnknownAgent
        """
        if not NAME.match(name):
            raise InvalidParameter(f"portfolio name {name!r}: use 1-64 letters, digits, '.', "
                                   "'_' or '-', starting with a letter or digit")
        if not MIN_HISTORY <= len(history) <= MAX_HISTORY:
            raise InvalidReturns(f"history has {len(history)} returns; send {MIN_HISTORY} to "
                                 f"{MAX_HISTORY} dated returns to fit the swarm on")
        check_returns(history, "history")
        names = tuple(dict.fromkeys(canonical_name(a) for a in (agents or self.agents)))
        details = {"portfolio": name, "agents": list(names), "alphas": list(self.alphas),
                   "horizon": self.horizon, "seed": self.seed,
                   "window": min(self.window, len(history)), "refit_every": self.refit_every,
                   "dates": [h.as_of.isoformat() for h in history],
                   "returns": [h.value for h in history], "key_id": key_id,
                   "request_id": request_id}
        with self._lock:
            for _ in range(_RETRIES):
                self.sync()
                if name in self._books:
                    raise ConflictingInput(f"a portfolio called {name!r} exists already")
                book = self._new_book(details)
                dead = [a for a, agent in book.swarm.agents.items() if agent is None]
                if dead:
                    raise InvalidReturns(
                        f"{', '.join(dead)} could not be fitted on {len(history)} returns; "
                        "send a longer history (the default swarm needs at least 50)")
                assert book.last is not None
                batch = [(EntryKind.ACTION, {"type": "portfolio.create", "details": details}),
                         *self._beat_entries(book, book.last, ())]
                if self._append(batch):
                    self._books[name] = book
                    self._record(book, book.last, (), None)
                    return self._info(book)
        raise SwarmVarError("the ledger kept changing under this write; retry")

    def ingest(self, name: str, items: Sequence[DatedReturn], *, key_id: str,
               request_id: str = "") -> list[Ingested]:
        """Record returns of a portfolio, each driving one beat; repeats change nothing.

        A return whose date is already recorded with the same value is a
        duplicate (reported, not stored again). The batch is all or nothing.

        Raises
        ------
        UnknownPortfolio, InvalidReturns
        ConflictingInput
            A recorded date with a different value, or a new date not after
            the last recorded one.
        """
        check_returns(items, "returns")
        with self._lock:
            for _ in range(_RETRIES):
                self.sync()
                book = self._book(name)
                fresh = self._fresh(book, items)
                if not fresh:
                    return [Ingested(name, it.as_of, self._seq_of(book, it.as_of), True)
                            for it in items]
                trial = _clone(book)
                excluded, factors = self._instructions(name)
                batch: list[tuple[EntryKind, Mapping[str, Any]]] = []
                reports: list[BeatReport] = []
                timed: list[tuple[int, float]] = []  # each beat's tick entry (in batch), seconds
                for it in fresh:
                    seq = trial.seq + 1
                    outcome = trial.swarm.beat(BeatInput(seq, _midnight(it.as_of), it.value,
                                                         excluded, factors))
                    report = outcome.report
                    seconds = beat_seconds(outcome.seconds)
                    timed.append((len(batch), seconds))
                    batch.append((EntryKind.ACTION, {"type": "tick", "details": {
                        "portfolio": name, "seq": seq, "as_of": it.as_of.isoformat(),
                        "return": it.value, "excluded": sorted(excluded),
                        "factors": dict(factors), "beat_seconds": seconds, "key_id": key_id,
                        "request_id": request_id}}))
                    batch.append((EntryKind.ESTIMATE, {
                        "portfolio": name, "seq": seq,
                        "estimates": [_estimate_record(e) for e in outcome.estimates]}))
                    batch += self._beat_entries(trial, report, ())
                    self._advance(trial, it, seq)
                    self._record(trial, report, (), it.value)
                    reports.append(report)
                rows = self._append(batch)
                if rows is None:
                    continue
                self._books[name] = trial
                # every beat of the batch reaches the observers (and its checkpoint) before
                # the decisions' append syncs in other processes' later beats
                decided: list[tuple[Decision, ...]] = []
                for report, (at, seconds) in zip(reports, timed, strict=True):
                    decisions = self._observe(report, seconds)
                    self._checkpoint(name, report.seq, rows[at])
                    trial.decisions.extend(decisions)
                    decided.append(decisions)
                if any(decided):
                    self._append_retrying([(EntryKind.DECISION, _decision_record(d))
                                           for ds in decided for d in ds])
                for report, decisions in zip(reports, decided, strict=True):
                    self._notify(name, trial, report.seq)
                    for cb in self._on_report:
                        cb(report, decisions)
                return [Ingested(name, it.as_of, self._seq_of(trial, it.as_of),
                                 it not in fresh) for it in items]
        raise SwarmVarError("the ledger kept changing under this write; retry")

    def note(self, kind: str, details: Mapping[str, Any]) -> int:
        """Record an administrative action (``action`` entry); return its index."""
        with self._lock:
            return self._append_retrying([(EntryKind.ACTION,
                                           {"type": kind, "details": dict(details)})])

    def _append_retrying(self, batch: Sequence[tuple[EntryKind, Mapping[str, Any]]]) -> int:
        for _ in range(_RETRIES):
            self.sync()
            at = self._seen
            if self._append(batch) is not None:
                return at
        raise SwarmVarError("the ledger kept changing under this write; retry")

    def _fresh(self, book: _Book, items: Sequence[DatedReturn]) -> list[DatedReturn]:
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

    @staticmethod
    def _seq_of(book: _Book, d: date) -> int:
        for p in reversed(book.points):
            if p.as_of == d and p.realized is not None:
                return p.seq
        return -1  # older than the beats kept in memory

    def _append(self, batch: Sequence[tuple[EntryKind, Mapping[str, Any]]]
                ) -> list[Row] | None:
        """The batch's stored rows, or None when another process appended first."""
        stamp = format_timestamp(self._clock())
        drafts = [(k.value, canonical_data(d), stamp) for k, d in batch]
        rows = self.ledger.store.append(drafts, if_size=self._seen)
        if rows is None:
            return None
        self._seen += len(rows)
        return rows

    # --- the runtime's steps, in order -----------------------------------------

    def _instructions(self, name: str) -> tuple[frozenset[str], dict[str, float]]:
        """The observers' quarantine and weight factors for the next beat of ``name``."""
        excluded: set[str] = set()
        factors: dict[str, float] = {}
        for obs in self.observers:
            excluded |= set(obs.excluded(name))
            for agent, f in obs.weight_factors(name).items():
                factors[agent] = factors.get(agent, 1.0) * float(f)
        return frozenset(excluded), factors

    def _observe(self, report: BeatReport, seconds: float | None, *, again: bool = False
                 ) -> tuple[Decision, ...]:
        """The observers' decisions on a beat, given its measured seconds where they take
        them (the arbiter's PID). ``again``: a recorded beat replayed (their ``replay``
        when they have one; an observer restored from a checkpoint past it skips it)."""
        out: list[Decision] = []
        for i, attached in enumerate(self._attached):
            if again and report.seq <= self._restored.get((report.portfolio, i), 0):
                continue  # in the checkpoint it was restored from
            out.extend(attached(report, seconds, again))
        return tuple(out)

    def _stateful(self) -> list[tuple[int, str, Any]]:
        """Observers whose state is checkpointed: (position, ``state_key``, observer)."""
        return [(i, str(getattr(obs, "state_key")), obs)  # noqa: B009
                for i, obs in enumerate(self.observers)
                if isinstance(getattr(obs, "state_key", None), str)
                and callable(getattr(obs, "checkpoint_state", None))
                and callable(getattr(obs, "restore_state", None))]

    @contextmanager
    def _state_store(self) -> Iterator[Any]:
        """The home's state store (opened for one checkpoint or one restore)."""
        from ..evolution import Database, StateStore

        db = Database(self.home)
        try:
            yield StateStore(db)
        finally:
            db.close()

    def _checkpoint(self, name: str, seq: int, row: Row) -> None:
        """Store the observers' states of ``name`` after its beat ``seq`` (every
        ``checkpoint_every`` beats), each headed by its mark: the ledger index and hash of
        the beat's tick entry ``row``. A failed write is logged: the ledger can replay them."""
        stateful = self._stateful()
        if not stateful or seq % self.checkpoint_every:
            return
        mark = CheckpointMark(seq, int(row[0]), bytes(row[5]).hex()).line()
        states = {f"{OBSERVER_PREFIX}{key}:{name}": mark + b"\n" + obs.checkpoint_state(name)
                  for _, key, obs in stateful}
        try:
            with self._state_store() as store:
                store.put_many(states, now=self._clock().timestamp())
                for key in states:
                    store.prune(key, keep=2)
        except (SwarmVarError, OSError) as exc:
            log.warning("checkpoint of %s's observers at beat %d failed (%s); a restart "
                        "replays them from the ledger", name, seq, exc)

    def _on_ledger(self, name: str, mark: CheckpointMark) -> bool:
        """Whether ``mark`` is beat ``mark.seq`` of ``name`` on this ledger: a tick entry of
        it at ``mark.index`` with hash ``mark.hash``."""
        if mark.index >= self.ledger.store.size():
            return False
        rows = list(self.ledger.store.rows(mark.index, mark.index + 1))
        if not rows or bytes(rows[0][5]).hex() != mark.hash:
            return False
        try:
            tick = json.loads(rows[0][3])
            details = tick["details"]
            return bool(tick.get("type") == "tick" and details.get("portfolio") == name
                        and int(details["seq"]) == mark.seq)
        except (ValueError, KeyError, TypeError, AttributeError):
            return False

    def _restore(self, book: _Book) -> None:
        """Restore each observer's state of a portfolio from the home's last checkpoint
        of it (at the start), at the beat its own mark names, if that mark stands on this
        ledger. An observer not restored replays every beat (the ledger is the truth)."""
        from ..evolution import UnknownState

        name = book.name
        stateful = self._stateful()
        blobs: dict[int, bytes] = {}
        try:
            with self._state_store() as store:
                for i, key, _ in stateful:
                    try:
                        blobs[i] = store.get(f"{OBSERVER_PREFIX}{key}:{name}")
                    except UnknownState:
                        continue  # never checkpointed here
        except (SwarmVarError, OSError) as exc:
            log.warning("the checkpoints of %s's observers cannot be read (%s); they replay "
                        "every beat", name, exc)
            return
        for i, key, obs in stateful:
            if i not in blobs:
                continue
            marked = CheckpointMark.split(blobs[i])
            if marked is None:
                log.warning("the %s state of %s has no checkpoint mark (written by an older "
                            "desk, or damaged); it replays every beat", key, name)
                continue
            mark, state = marked
            try:
                standing = self._on_ledger(name, mark)
            except (SwarmVarError, OSError) as exc:
                log.warning("the checkpoint of %s's %s state cannot be checked (%s); it "
                            "replays every beat", name, key, exc)
                continue
            if not standing:
                log.warning("the %s state of %s (beat %d) is not on this ledger; it replays "
                            "every beat", key, name, mark.seq)
                continue
            try:
                obs.restore_state(name, state, agents=book.agents)
            except SwarmVarError as exc:  # (a bad blob is refused before any change)
                log.warning("the %s state of %s cannot be restored (%s); it replays every "
                            "beat", key, name, exc)
                continue
            self._restored[name, i] = mark.seq

    def _new_book(self, details: Mapping[str, Any]) -> _Book:
        name = str(details["portfolio"])
        agents = tuple(details["agents"])
        config = PortfolioConfig(
            portfolio=name, agents=agents, alphas=tuple(float(a) for a in details["alphas"]),
            horizon=int(details["horizon"]), window=int(details["window"]),
            refit_every=int(details["refit_every"]), seed=int(details["seed"]),
            home=str(self.home), roles=RoleConfig(refit_lag=0), policy=policy_for(len(agents)))
        swarm = PortfolioSwarm(config)
        last = date.fromisoformat(details["dates"][-1])
        swarm.start(np.asarray(details["returns"], dtype=np.float64), _midnight(last))
        book = _Book(name=name, swarm=swarm, created_by=str(details["key_id"]))
        for d, v in zip(details["dates"], details["returns"], strict=True):
            book.recorded[date.fromisoformat(d)] = float(v)
        book.last_date = last
        book.last = BeatReport(portfolio=name, seq=0, as_of=_midnight(last), realized=0.0,
                               breaches={}, log_scores={}, forecasts=dict(swarm.forecasts),
                               consensus=tuple(swarm.consensus))
        return book

    @staticmethod
    def _advance(book: _Book, it: DatedReturn, seq: int) -> None:
        book.seq = seq
        book.recorded[it.as_of] = it.value
        book.last_date = it.as_of

    def _beat_entries(self, book: _Book, report: BeatReport, decisions: Iterable[Decision]
                      ) -> list[tuple[EntryKind, Mapping[str, Any]]]:
        out: list[tuple[EntryKind, Mapping[str, Any]]] = []
        tag = {"portfolio": book.name, "seq": report.seq}
        for n in book.agents:
            fc = report.forecasts.get(n)
            rec: dict[str, Any] = {**tag, "agent": n, "source": "service",
                                   "as_of": report.as_of.isoformat()}
            if fc is not None:
                rec["forecast"] = fc.to_dict()
            else:
                rec["error"] = report.rejected.get(n, "no forecast")
            if n in report.log_scores and np.isfinite(report.log_scores[n]):
                rec["log_score"] = report.log_scores[n]
            out.append((EntryKind.FORECAST, rec))
        for c in report.consensus:
            out.append((EntryKind.CONSENSUS, {**tag, "source": "service", **consensus_record(c)}))
        out += [(EntryKind.DECISION, _decision_record(d)) for d in decisions]
        return out

    def _record(self, book: _Book, report: BeatReport, decisions: Iterable[Decision],
                realized: float | None) -> None:
        book.last = report
        book.decisions.extend(decisions)
        cons = report.consensus
        book.points.append(BeatPoint(
            seq=report.seq, as_of=report.as_of.date(), realized=realized,
            alphas=tuple(c.alpha for c in cons), var=tuple(c.var for c in cons),
            es=tuple(c.es for c in cons), var_interval=tuple(c.var_interval for c in cons),
            es_interval=tuple(c.es_interval for c in cons),
            breaches=report.breaches.get("consensus", ())))

    def _notify(self, name: str, book: _Book, seq: int) -> None:
        point = next((p for p in reversed(book.points) if p.seq == seq), None)
        if point is not None:
            for cb in self._on_beat:
                cb(name, point)

    # --- sync: absorb what other processes recorded ---------------------------

    def sync(self) -> int:
        """Read ledger entries appended since the last look; return how many.

        Another process's beat is replayed here with the quarantine and
        factors it recorded (the same numbers), and shown to the observers;
        its decisions are read back, not decided again.
        """
        with self._lock:
            size = self.ledger.store.size()
            if size == self._seen:
                return 0
            start = self._seen
            for row in self.ledger.store.rows(self._seen, size):
                self._absorb(row)
            self._seen = size
            return size - start

    def _absorb(self, row: Row) -> None:
        kind, text = row[2], row[3]
        if kind == EntryKind.DECISION.value:
            d = json.loads(text)
            book = self._books.get(d.get("portfolio"))
            if book is not None:
                book.decisions.append(_decision_from(d))
            return
        if kind != EntryKind.ACTION.value or '"portfolio.create"' not in text \
                and '"tick"' not in text:
            return
        data = json.loads(text)
        d = data.get("details", {})
        if data.get("type") == "portfolio.create":
            book = self._new_book(d)
            self._books[book.name] = book
            if self._startup:  # the observers resume from the home's checkpoint
                self._restore(book)
            assert book.last is not None
            self._record(book, book.last, (), None)
            self._notify(book.name, book, 0)
        elif data.get("type") == "tick" and d.get("portfolio") in self._books:
            book = self._books[d["portfolio"]]
            it = DatedReturn(date.fromisoformat(d["as_of"]), float(d["return"]))
            seq = int(d["seq"])
            outcome = book.swarm.beat(BeatInput(
                seq, _midnight(it.as_of), it.value, frozenset(d.get("excluded", [])),
                {k: float(v) for k, v in d.get("factors", {}).items()}))
            self._advance(book, it, seq)
            self._record(book, outcome.report, (), it.value)
            self._observe(outcome.report, _recorded_seconds(d.get("beat_seconds")),
                          again=True)
            self._notify(book.name, book, seq)
