"""One swarm per portfolio, its beats driven by ingestion: what the HTTP face runs inside.

:class:`Desk` is the one seam between the service and the runtime. It owns
no statistics: a beat is the runtime's steps in order (``Agent.update``
scores the return, ``Agent.forecast``, :func:`swarmvar.swarm.consensus.
swarm_consensus` signs and combines, observers such as the arbiter decide),
and the beat's entries go to the ledger as one atomic batch.

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
  key_id, request_id}}`` followed by one ``forecast`` per agent, one
  ``consensus`` per level and the observers' ``decision`` entries, all
  carrying ``portfolio`` and ``seq``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np

from ..consensus import Aggregator, Policy, Weighting
from ..errors import (
    ConflictingInput,
    InvalidParameter,
    InvalidReturns,
    SwarmVarError,
    UnknownPortfolio,
)
from ..ledger import EntryKind, Ledger
from ..ledger.entry import canonical_data, format_timestamp
from ..models import Agent, agent_class, canonical_name
from ..swarm.consensus import SWARM_POLICY, agent_keys, swarm_consensus
from ..swarm.local import AgentRun
from ..swarm.record import consensus_record
from ..types import Action, BeatReport, Consensus, Decision, Forecast, RiskMeasure

#: Observers see every beat and may decide (the arbiter is one).
Observer = Callable[[BeatReport], Sequence[Decision]]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MIN_HISTORY, MAX_HISTORY = 20, 10_000
#: Beats kept in memory per portfolio for history, charts and rolling statistics.
KEEP_BEATS = 5000
_RETRIES = 200


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
    agents: dict[str, Agent]
    alphas: tuple[float, ...]
    horizon: int
    seed: int
    created_by: str
    recorded: dict[date, float] = field(default_factory=dict)
    last_date: date = date.min
    seq: int = 0
    last: BeatReport | None = None
    points: deque[BeatPoint] = field(default_factory=lambda: deque(maxlen=KEEP_BEATS))
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=KEEP_BEATS))


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def _seed(seed: int, portfolio: str, seq: int) -> int:
    """Seed of a portfolio's beat: the same in every process that computes it."""
    ss = np.random.SeedSequence([seed, zlib.crc32(portfolio.encode()), seq])
    return int(ss.generate_state(1)[0])


def _forecast_from(d: Mapping[str, Any]) -> Forecast:
    levels = tuple(RiskMeasure(float(m["alpha"]), float(m["var"]), float(m["es"]),
                               (float(m["var_interval"][0]), float(m["var_interval"][1])),
                               (float(m["es_interval"][0]), float(m["es_interval"][1])))
                   for m in d["levels"])
    return Forecast(str(d["model"]), int(d["horizon"]), levels, float(d["interval_mass"]))


def _consensus_from(d: Mapping[str, Any]) -> Consensus:
    return Consensus(
        alpha=float(d["alpha"]), horizon=int(d["horizon"]), var=float(d["var"]),
        es=float(d["es"]), var_interval=(float(d["var_interval"][0]), float(d["var_interval"][1])),
        es_interval=(float(d["es_interval"][0]), float(d["es_interval"][1])),
        method=str(d["method"]), used=tuple(d["used"]), trimmed=tuple(d["trimmed"]),
        rejected=dict(d["rejected"]), weights={k: float(v) for k, v in d["weights"].items()},
        available=int(d["available"]), total=int(d["total"]), staleness=float(d["staleness"]),
        degraded=bool(d["degraded"]),
        as_of=None if d.get("as_of") is None else datetime.fromisoformat(d["as_of"]))


def _decision_record(d: Decision) -> dict[str, Any]:
    return {"portfolio": d.portfolio, "seq": d.seq, "action": d.action.value,
            "agents": list(d.agents), "signals": dict(d.signals), "threat": d.threat,
            "reason": d.reason, "weights": dict(d.weights)}


def _decision_from(d: Mapping[str, Any]) -> Decision:
    return Decision(action=Action(d["action"]), portfolio=str(d["portfolio"]), seq=int(d["seq"]),
                    agents=tuple(d["agents"]), signals=dict(d["signals"]),
                    threat=float(d["threat"]), reason=str(d["reason"]),
                    weights=dict(d["weights"]))


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


class Desk:
    """The portfolios' swarms over one ledger; every method is thread-safe.

    Parameters
    ----------
    ledger : Ledger
        Shared by every process serving the same portfolios.
    home : path
        Holds the agents' signing keys (``<home>/keys/agents``).
    agents : names of the default swarm (see :mod:`swarmvar.models.registry`).
    alphas : confidence levels, horizon : days.
    seed : base seed; each portfolio's beat ``seq`` is seeded from (seed, name, seq).
    observers : called with each beat's report; their decisions are recorded with it.
    clock : wall time of entries (default: the system clock, UTC).
    """

    def __init__(self, ledger: Ledger, home: str | Path, *,
                 agents: Sequence[str] = ("NormalInverseGamma", "BayesianBootstrap"),
                 alphas: Sequence[float] = (0.99, 0.975), horizon: int = 1, seed: int = 0,
                 observers: Sequence[Observer] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.ledger = ledger
        self.home = Path(home)
        self.agents = tuple(canonical_name(a) for a in agents)
        self.alphas = tuple(float(a) for a in alphas)
        self.horizon = horizon
        self.seed = seed
        self.observers = tuple(observers)
        self._clock = clock
        self._lock = threading.RLock()
        self._books: dict[str, _Book] = {}
        self._seen = 0
        self._keys = agent_keys(self.home, self.agents)
        self._on_beat: list[Callable[[str, BeatPoint], None]] = []
        self._on_report: list[Callable[[BeatReport, tuple[Decision, ...]], None]] = []
        self.sync()

    # --- reading ------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, BeatPoint], None]) -> None:
        """Call ``callback(portfolio, point)`` on every beat this process learns of."""
        self._on_beat.append(callback)

    def watch(self, callback: Callable[[BeatReport, tuple[Decision, ...]], None]) -> None:
        """Call ``callback(report, decisions)`` on every beat this process runs."""
        self._on_report.append(callback)

    def portfolios(self) -> list[PortfolioInfo]:
        with self._lock:
            return [self._info(b) for b in self._books.values()]

    def info(self, name: str) -> PortfolioInfo:
        with self._lock:
            return self._info(self._book(name))

    def latest(self, name: str) -> BeatReport:
        with self._lock:
            report = self._book(name).last
            assert report is not None  # every book has beat 0
            return report

    def points(self, name: str, since: int = 0, limit: int = KEEP_BEATS) -> list[BeatPoint]:
        with self._lock:
            pts = [p for p in self._book(name).points if p.seq >= since]
        return pts[-limit:] if limit > 0 else []

    def decisions(self, name: str, limit: int = 100) -> list[Decision]:
        with self._lock:
            return list(self._book(name).decisions)[-limit:] if limit > 0 else []

    @property
    def ledger_size(self) -> int:
        return self._seen

    def _info(self, b: _Book) -> PortfolioInfo:
        return PortfolioInfo(b.name, tuple(b.agents), b.alphas, b.horizon, b.seq, b.last_date,
                             b.created_by)

    def _book(self, name: str) -> _Book:
        book = self._books.get(name)
        if book is None:
            raise UnknownPortfolio(f"no portfolio {name!r}; create it with POST /v1/portfolios "
                                   "or list them with GET /v1/portfolios")
        return book

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
        for n in names:
            if n not in self._keys:
                self._keys.update(agent_keys(self.home, [n]))
        details = {"portfolio": name, "agents": list(names), "alphas": list(self.alphas),
                   "horizon": self.horizon, "seed": self.seed,
                   "dates": [h.as_of.isoformat() for h in history],
                   "returns": [h.value for h in history], "key_id": key_id,
                   "request_id": request_id}
        with self._lock:
            for _ in range(_RETRIES):
                self.sync()
                if name in self._books:
                    raise ConflictingInput(f"a portfolio called {name!r} exists already")
                book = self._new_book(details)
                report = self._beat(book, None, history[-1].as_of)
                batch = [(EntryKind.ACTION, {"type": "portfolio.create", "details": details}),
                         *self._beat_entries(book, report, ())]
                if self._append(batch):
                    self._books[name] = book
                    self._record(book, report, ())
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
                batch: list[tuple[EntryKind, Mapping[str, Any]]] = []
                beats: list[tuple[BeatReport, tuple[Decision, ...]]] = []
                for it in fresh:
                    report = self._beat(trial, it.value, it.as_of)
                    decisions = tuple(d for obs in self.observers for d in obs(report))
                    batch.append((EntryKind.ACTION, {"type": "tick", "details": {
                        "portfolio": name, "seq": report.seq, "as_of": it.as_of.isoformat(),
                        "return": it.value, "key_id": key_id, "request_id": request_id}}))
                    batch += self._beat_entries(trial, report, decisions)
                    self._record(trial, report, decisions, it.value)
                    beats.append((report, decisions))
                if self._append(batch):
                    self._books[name] = trial
                    for report, decisions in beats:
                        self._notify(name, trial, report.seq)
                        for cb in self._on_report:
                            cb(report, decisions)
                    return [Ingested(name, it.as_of, self._seq_of(trial, it.as_of),
                                     it not in fresh) for it in items]
        raise SwarmVarError("the ledger kept changing under this write; retry")

    def note(self, kind: str, details: Mapping[str, Any]) -> int:
        """Record an administrative action (``action`` entry); return its index."""
        with self._lock:
            for _ in range(_RETRIES):
                self.sync()
                at = self._seen
                if self._append([(EntryKind.ACTION, {"type": kind, "details": dict(details)})]):
                    return at
        raise SwarmVarError("the ledger kept changing under this write; retry")

    def backtest(self, name: str, window: int = 250) -> list[LevelStats]:
        """Rolling coverage of the consensus VaR over the last ``window`` beats, per level."""
        from ..validation import christoffersen, kupiec  # statistics stay in the engine

        with self._lock:
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

    def _append(self, batch: Sequence[tuple[EntryKind, Mapping[str, Any]]]) -> bool:
        stamp = format_timestamp(self._clock())
        drafts = [(k.value, canonical_data(d), stamp) for k, d in batch]
        rows = self.ledger.store.append(drafts, if_size=self._seen)
        if rows is None:
            return False
        self._seen += len(rows)
        return True

    # --- the beat (runtime steps in order; no statistics here) ---------------

    def _new_book(self, details: Mapping[str, Any]) -> _Book:
        name = str(details["portfolio"])
        seed = int(details["seed"])
        book = _Book(name=name, agents={}, alphas=tuple(details["alphas"]),
                     horizon=int(details["horizon"]), seed=seed,
                     created_by=str(details["key_id"]))
        x = np.asarray(details["returns"], dtype=float)
        for n in details["agents"]:
            book.agents[n] = agent_class(n)().fit(x, seed=_seed(seed, f"{name}/{n}", 0))
        for d, v in zip(details["dates"], details["returns"], strict=True):
            book.recorded[date.fromisoformat(d)] = float(v)
        book.last_date = date.fromisoformat(details["dates"][-1])
        return book

    def _beat(self, book: _Book, r: float | None, as_of: date) -> BeatReport:
        """Score ``r`` against the last forecasts, absorb it, forecast, agree (mutates ``book``)."""
        seq = book.seq + (r is not None)
        prev = book.last
        breaches: dict[str, tuple[bool, ...]] = {}
        scores: dict[str, float] = {}
        runs = []
        for n, agent in book.agents.items():
            try:
                if r is not None:
                    scores[n] = float(agent.update(r))
                fc = agent.forecast(book.alphas, book.horizon,
                                    seed=_seed(book.seed, f"{book.name}/{n}", seq))
                runs.append(AgentRun(n, fc, None, 0.0, agent))
            except SwarmVarError as exc:
                runs.append(AgentRun(n, None, None, 0.0, agent, error=str(exc)))
            if r is not None and prev is not None and n in prev.forecasts:
                breaches[n] = tuple(-r > m.var for m in prev.forecasts[n].levels)
        if r is not None and prev is not None and prev.consensus:
            breaches["consensus"] = tuple(-r > c.var for c in prev.consensus)
        rejected = {run.name: run.error or "" for run in runs if not run.ok}
        good = [run for run in runs if run.ok]
        policy = SWARM_POLICY if len(good) >= SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f) \
            else Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.EQUAL)
        try:
            agreed = tuple(swarm_consensus(runs, self._keys, as_of=_midnight(as_of),
                                           seq=seq * len(book.alphas), portfolio=book.name,
                                           horizon=book.horizon, policy=policy))
        except SwarmVarError as exc:
            agreed, rejected = (), {**rejected, "consensus": str(exc)}
        book.seq = seq
        if r is not None:
            book.recorded[as_of] = r
            book.last_date = as_of
        return BeatReport(portfolio=book.name, seq=seq, as_of=_midnight(as_of),
                          realized=0.0 if r is None else r, breaches=breaches, log_scores=scores,
                          forecasts={run.name: run.forecast for run in good
                                     if run.forecast is not None},
                          consensus=agreed, rejected=rejected)

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
                realized: float | None = None) -> None:
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
        """Read ledger entries appended since the last look; return how many."""
        with self._lock:
            size = self.ledger.store.size()
            if size == self._seen:
                return 0
            start, pending = self._seen, _Pending()
            for row in self.ledger.store.rows(self._seen, size):
                self._absorb(row[2], json.loads(row[3]), pending)
            self._flush(pending)
            self._seen = size
            return size - start

    def _absorb(self, kind: str, data: dict[str, Any], pending: _Pending) -> None:
        if kind == EntryKind.ACTION.value and data.get("type") in ("portfolio.create", "tick"):
            self._flush(pending)
            d = data["details"]
            name = d["portfolio"]
            if data["type"] == "portfolio.create":
                book = self._new_book(d)
                self._books[name] = book
                pending.start(book, 0, None, book.last_date)
            elif name in self._books:
                book = self._books[name]
                r = float(d["return"])
                for agent in book.agents.values():
                    try:
                        agent.update(r)
                    except SwarmVarError:
                        pass  # the beat that recorded it reported the same refusal
                as_of = date.fromisoformat(d["as_of"])
                book.recorded[as_of], book.last_date, book.seq = r, as_of, int(d["seq"])
                pending.start(book, int(d["seq"]), r, as_of)
            return
        if pending.book is None or data.get("portfolio") != pending.book.name \
                or data.get("seq") != pending.seq:
            return
        if kind == EntryKind.FORECAST.value and "forecast" in data:
            pending.forecasts[data["agent"]] = _forecast_from(data["forecast"])
        elif kind == EntryKind.CONSENSUS.value:
            pending.consensus.append(_consensus_from(data))
        elif kind == EntryKind.DECISION.value:
            pending.decisions.append(_decision_from(data))

    def _flush(self, p: _Pending) -> None:
        book = p.book
        if book is None:
            return
        prev = book.last
        breaches: dict[str, tuple[bool, ...]] = {}
        if p.realized is not None and prev is not None:
            r = p.realized
            breaches = {n: tuple(-r > m.var for m in f.levels) for n, f in prev.forecasts.items()}
            if prev.consensus:
                breaches["consensus"] = tuple(-r > c.var for c in prev.consensus)
        report = BeatReport(portfolio=book.name, seq=p.seq, as_of=_midnight(p.as_of),
                            realized=p.realized or 0.0, breaches=breaches, log_scores={},
                            forecasts=dict(p.forecasts), consensus=tuple(p.consensus))
        self._record(book, report, p.decisions, p.realized)
        self._notify(book.name, book, p.seq)
        p.book = None


def _clone(b: _Book) -> _Book:
    """A copy to compute beats on: agents deep-copied, the rest shallow (cheap)."""
    return _Book(name=b.name, agents=copy.deepcopy(b.agents), alphas=b.alphas,
                 horizon=b.horizon, seed=b.seed, created_by=b.created_by,
                 recorded=dict(b.recorded), last_date=b.last_date, seq=b.seq, last=b.last,
                 points=b.points.copy(), decisions=b.decisions.copy())


@dataclass
class _Pending:
    """A beat being read back from the ledger, entry by entry."""

    book: _Book | None = None
    seq: int = 0
    realized: float | None = None
    as_of: date = date.min
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    consensus: list[Consensus] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def start(self, book: _Book, seq: int, realized: float | None, as_of: date) -> None:
        self.book, self.seq, self.realized, self.as_of = book, seq, realized, as_of
        self.forecasts, self.consensus, self.decisions = {}, [], []
