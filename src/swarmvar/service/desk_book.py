"""A portfolio on the service's desk: the values the service reads, one portfolio's
book (its swarm and what it recorded), and a beat's ledger records.

Bookkeeping around :class:`~swarmvar.swarm.PortfolioSwarm`; the desk
(:mod:`swarmvar.service.desk`) drives the beats and
:mod:`swarmvar.service.desk_observers` the observers and their checkpoints.
"""

from __future__ import annotations

import copy
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..consensus import Aggregator, KeyRing, Policy, Weighting
from ..data import as_array
from ..errors import InvalidParameter, InvalidReturns
from ..ledger import EntryKind
from ..models.registry import most_needed
from ..swarm import BeatInput, PortfolioConfig, PortfolioSwarm, RoleConfig
from ..swarm.consensus import SWARM_POLICY
from ..swarm.record import consensus_record
from ..swarm.runtime import beat_seconds
from ..types import Action, BeatReport, Decision

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
#: Most returns a new portfolio's history may have (its least: :func:`min_history`).
MAX_HISTORY = 10_000
#: Fewest returns any new portfolio's history may have, whatever its agents (the least
#: fitting window ``serve --window`` accepts).
MIN_HISTORY = 30
#: Beats kept in memory per portfolio for history, charts and rolling statistics.
KEEP_BEATS = 5000


def min_history(agents: Sequence[str]) -> tuple[int, str]:
    """The fewest returns a portfolio of ``agents`` can be created with, and who needs them:
    the largest ``min_observations`` among the agents
    (:func:`~swarmvar.models.registry.most_needed`: each must fit on the history; the
    first named wins a tie), and never fewer than :data:`MIN_HISTORY` (then
    ``"every portfolio"`` needs them).

    Raises
    ------
    UnknownAgent
        A name is not a registered agent.
    InvalidParameter
        ``agents`` is empty.
    """
    names = tuple(agents)
    if not names:
        raise InvalidParameter("a portfolio needs at least one agent")
    need, needer = most_needed(names)
    return (need, needer) if need >= MIN_HISTORY else (MIN_HISTORY, "every portfolio")


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


@dataclass(frozen=True)
class RiskView:
    """A portfolio's last beat as ``GET /var`` shows it, read from one sync: its report,
    why each agent's estimate did not count (:meth:`Book.rejected`) and the portfolio."""

    report: BeatReport
    rejected: dict[str, str]
    info: PortfolioInfo


@dataclass
class Book:
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
    #: agent -> why it has no forecast since a beat (its own refusal, e.g. of a return a
    #: ledger written before the service checked the bound holds); gone once it forecasts
    silenced: dict[str, str] = field(default_factory=dict)

    @property
    def alphas(self) -> tuple[float, ...]:
        return self.swarm.config.alphas

    @property
    def agents(self) -> tuple[str, ...]:
        return self.swarm.config.agents

    def clone(self) -> Book:
        """A copy to compute beats on: the swarm deep-copied, the rest shallow.

        The signing keys are shared; the key ring is a new one (it remembers the
        sequence numbers it admitted, and a discarded trial's must not count as
        seen when the beat is computed again or replayed from another process).
        """
        sw = self.swarm
        ring = KeyRing({a: k.public_key() for a, k in sw.keys.items()})
        swarm = copy.deepcopy(sw, {id(sw.keys): sw.keys, id(sw.ring): ring,
                                   id(sw.config): sw.config})
        return Book(name=self.name, swarm=swarm, created_by=self.created_by,
                    recorded=dict(self.recorded), last_date=self.last_date, seq=self.seq,
                    last=self.last, points=self.points.copy(), decisions=self.decisions.copy(),
                    silenced=dict(self.silenced))

    def advance(self, it: DatedReturn, seq: int) -> None:
        """Beat ``seq`` took return ``it``."""
        self.seq = seq
        self.recorded[it.as_of] = it.value
        self.last_date = it.as_of

    def record(self, report: BeatReport, decisions: Iterable[Decision],
               realized: float | None) -> None:
        """Keep a beat's report, its decisions and its point (history, dashboard), and why
        each agent without a forecast lost it: its own last error (start, update, forecast
        or refit: the swarm's ``errors``) or the beat's reason if more than "no forecast" -
        the first one, kept until it forecasts again."""
        self.last = report
        cfg = self.swarm.config
        for a in self.agents:
            why = report.rejected.get(a)
            if a not in report.forecasts and why in (None, "no forecast"):
                # its own last error says more (the swarm keeps one per agent)
                why = self.swarm.errors.get(a) or why
            if a in report.forecasts:
                self.silenced.pop(a, None)
            elif why and why != "no forecast" and a not in self.silenced:
                self.silenced[a] = (
                    f"no forecast since beat {report.seq} ({report.as_of.date()}): {why}; it "
                    f"is fitted again every {cfg.refit_every} beats on its last "
                    f"{cfg.window} returns and forecasts once a fit succeeds")
        self.decisions.extend(decisions)
        cons = report.consensus
        self.points.append(BeatPoint(
            seq=report.seq, as_of=report.as_of.date(), realized=realized,
            alphas=tuple(c.alpha for c in cons), var=tuple(c.var for c in cons),
            es=tuple(c.es for c in cons), var_interval=tuple(c.var_interval for c in cons),
            es_interval=tuple(c.es_interval for c in cons),
            breaches=report.breaches.get("consensus", ())))

    def rejected(self) -> dict[str, str]:
        """Why each agent's estimate did not count at the last beat: the beat's reason,
        and for an agent with no forecast ("no forecast") its own refusal and since which
        beat when one is known (:attr:`silenced`)."""
        assert self.last is not None  # every book has beat 0
        return {a: self.silenced.get(a, why) if why == "no forecast" else why
                for a, why in self.last.rejected.items()}

    def seq_of(self, d: date) -> int:
        """The beat that took the return dated ``d`` (-1: older than the beats kept)."""
        for p in reversed(self.points):
            if p.as_of == d and p.realized is not None:
                return p.seq
        return -1

    def point(self, seq: int) -> BeatPoint | None:
        """Beat ``seq``'s point, if still kept."""
        return next((p for p in reversed(self.points) if p.seq == seq), None)


def midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def decision_record(d: Decision) -> dict[str, Any]:
    """A decision as its ledger entry's data."""
    return {"portfolio": d.portfolio, "seq": d.seq, "action": d.action.value,
            "agents": list(d.agents), "signals": dict(d.signals), "threat": d.threat,
            "reason": d.reason, "weights": dict(d.weights)}


def decision_from(d: Mapping[str, Any]) -> Decision:
    """A decision from its ledger entry's data."""
    return Decision(action=Action(d["action"]), portfolio=str(d["portfolio"]), seq=int(d["seq"]),
                    agents=tuple(d["agents"]), signals=dict(d["signals"]),
                    threat=float(d["threat"]), reason=str(d["reason"]),
                    weights=dict(d["weights"]))


def estimate_record(e: Any) -> dict[str, Any]:
    """A signed estimate as recorded in the beat's ``estimate`` entry (signature in hex)."""
    d: dict[str, Any] = e.payload()
    d["signature"] = None if e.signature is None else e.signature.hex()
    return d


def recorded_seconds(value: Any) -> float | None:
    """A tick entry's ``beat_seconds`` (None when absent or not a time: older entries)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if np.isfinite(v) and v >= 0 else None


def check_returns(items: Sequence[DatedReturn], what: str) -> None:
    """Returns the agents take, in strictly increasing date order, else InvalidReturns.

    Each value passes the data layer's rule (:func:`swarmvar.data.as_array`: a number,
    finite, ``|r| <=`` :data:`~swarmvar.data.MAX_ABS_RETURN`, else a message naming the row
    as ``what[i] (date)``, the value and the percent hint), the one the agents apply to every return
    they fit on or absorb: a return they would refuse is refused here, before anything is
    stored, rather than silencing the portfolio's agents. The order is the request's own
    (a 422 naming the first pair out of order); a date not after what is recorded is the
    desk's ``ConflictingInput`` (409), checked there.
    """
    values = [it.value for it in items]
    try:
        as_array(values, min_obs=0)
    except InvalidReturns:  # again, to name the field's row and date (labels cost only here)
        try:
            as_array(values, min_obs=0, labels=pd.Index(
                [f"{what}[{i}] ({it.as_of})" for i, it in enumerate(items)]))
        except InvalidReturns as exc:
            raise InvalidReturns(f"{exc}; nothing was stored") from None
        raise
    for i in range(1, len(items)):
        it = items[i]
        if it.as_of <= items[i - 1].as_of:
            how = "repeats" if it.as_of == items[i - 1].as_of else "comes before"
            raise InvalidReturns(
                f"{what}: dates not strictly increasing: {what}[{i}] ({it.as_of}) {how} "
                f"{what}[{i - 1}] ({items[i - 1].as_of}); send returns oldest first, one per "
                "date")


def policy_for(n_agents: int) -> Policy:
    """The swarm's policy where it tolerates a faulty agent (3 or more), else an equal mean."""
    if n_agents >= SWARM_POLICY.aggregator.min_agents(SWARM_POLICY.f):
        return SWARM_POLICY
    return Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.EQUAL)


def open_book(details: Mapping[str, Any], home: Path) -> Book:
    """A portfolio's book from its ``portfolio.create`` details: its swarm fitted on the
    history (beat 0), the history recorded. Signing keys live under ``home``."""
    name = str(details["portfolio"])
    agents = tuple(details["agents"])
    config = PortfolioConfig(
        portfolio=name, agents=agents, alphas=tuple(float(a) for a in details["alphas"]),
        horizon=int(details["horizon"]), window=int(details["window"]),
        refit_every=int(details["refit_every"]), seed=int(details["seed"]),
        home=str(home), roles=RoleConfig(refit_lag=0), policy=policy_for(len(agents)))
    swarm = PortfolioSwarm(config)
    last = date.fromisoformat(details["dates"][-1])
    swarm.start(np.asarray(details["returns"], dtype=np.float64), midnight(last))
    book = Book(name=name, swarm=swarm, created_by=str(details["key_id"]))
    for d, v in zip(details["dates"], details["returns"], strict=True):
        book.recorded[date.fromisoformat(d)] = float(v)
    book.last_date = last
    book.last = BeatReport(portfolio=name, seq=0, as_of=midnight(last), realized=0.0,
                           breaches={}, log_scores={}, forecasts=dict(swarm.forecasts),
                           consensus=tuple(swarm.consensus))
    return book


def beat_entries(book: Book, report: BeatReport, decisions: Iterable[Decision]
                 ) -> list[tuple[EntryKind, Mapping[str, Any]]]:
    """A beat's ledger entries after its tick: one forecast per agent, one consensus per
    level, then ``decisions``."""
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
    out += [(EntryKind.DECISION, decision_record(d)) for d in decisions]
    return out


def run_beats(trial: Book, fresh: Sequence[DatedReturn],
              instructions: tuple[frozenset[str], dict[str, float]], key_id: str,
              request_id: str) -> tuple[list[tuple[EntryKind, Mapping[str, Any]]],
                                        list[BeatReport], list[tuple[int, float]]]:
    """One beat per return of ``fresh`` on ``trial`` (a copy of a portfolio's book, which it
    advances; no lock needed) under the observers' ``instructions`` (quarantine, weight
    factors): the beats' ledger batch (each a ``tick``, its signed ``estimate``, the
    forecasts and the consensus), their reports, and each beat's tick entry (its place in
    the batch) with the beat's measured seconds."""
    excluded, factors = instructions
    batch: list[tuple[EntryKind, Mapping[str, Any]]] = []
    reports: list[BeatReport] = []
    timed: list[tuple[int, float]] = []
    for it in fresh:
        seq = trial.seq + 1
        outcome = trial.swarm.beat(BeatInput(seq, midnight(it.as_of), it.value, excluded,
                                             factors))
        report = outcome.report
        seconds = beat_seconds(outcome.seconds)
        timed.append((len(batch), seconds))
        batch.append((EntryKind.ACTION, {"type": "tick", "details": {
            "portfolio": trial.name, "seq": seq, "as_of": it.as_of.isoformat(),
            "return": it.value, "excluded": sorted(excluded), "factors": dict(factors),
            "beat_seconds": seconds, "key_id": key_id, "request_id": request_id}}))
        batch.append((EntryKind.ESTIMATE, {
            "portfolio": trial.name, "seq": seq,
            "estimates": [estimate_record(e) for e in outcome.estimates]}))
        batch += beat_entries(trial, report, ())
        trial.advance(it, seq)
        trial.record(report, (), it.value)
        reports.append(report)
    return batch, reports, timed
