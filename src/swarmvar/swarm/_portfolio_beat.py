"""The portfolio's beat itself: ``start`` and ``beat`` of :class:`~.beat.PortfolioSwarm`.

Methods of :class:`~.beat.PortfolioSwarm`, written as functions of
``self: PortfolioSwarm`` and bound in its class body. The executor calls
them (:mod:`.executors`: in this process, a worker process or a Ray actor).
``start`` fits every agent on the history's last ``window`` returns and
forecasts the first day. ``beat`` runs one tick's steps in order: every
live agent absorbs the return (``update``), the forecasts it completes are
scored and the counters advance (``_absorb_tick``, :mod:`._portfolio_scoring`),
finished refits are swapped in (``_swap``), scouts and guards look, due
refits run or are handed out (``_refits``, :mod:`._portfolio_refits`), the
builders' tests are read on the refit rhythm, every agent forecasts
(``_forecast_all``), this beat's sandbox violations are recorded and held
out, and the measures are signed and combined (``_combine``,
:mod:`._portfolio_vote`); it returns a :class:`~._beat_types.BeatOutcome`.

Reads ``config``, ``host``, ``own`` and the roles (``scouts``, ``guards``,
``builders``: ``observe`` and ``check`` update their own state). Writes
``agents`` (an agent that fails becomes None), ``violations`` (emptied
once recorded), ``forecasts``, ``consensus``, ``cpu_seconds``; ``start``
also ``t``, ``returns``, ``last_as_of`` and ``scouts``. Through the other
groups' methods: the counters, return ring, ``outstanding``, track record
and builders (``_absorb_tick``), ``pending`` (``_refits``, ``_swap``),
``own`` and the key ring's replay state (``_combine``).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..consensus.signing import estimate_record
from ..errors import InvalidParameter, SwarmVarError
from ..types import BeatReport, Diagnostics, Forecast
from ._beat_types import BeatInput, BeatOutcome, FloatArray
from .roles import RoleRecord, Scouts, fit_seed

if TYPE_CHECKING:
    from .beat import PortfolioSwarm


def start(self: PortfolioSwarm, history: FloatArray, as_of: datetime | None) -> None:
    """Fit every agent on the history's last ``window`` returns and forecast the next day."""
    cfg = self.config
    r = np.asarray(history, dtype=np.float64)
    if r.size < cfg.window:
        raise InvalidParameter(
            f"portfolio {cfg.portfolio!r}: {r.size} history returns, but the window is "
            f"{cfg.window}; give a longer history or a shorter window")
    self.t = int(r.size)
    self.returns = r[-self._keep():].copy()
    self.last_as_of = as_of
    for name in cfg.agents:
        try:
            agent = self.host.new(name)
            agent.fit(r[-cfg.window:], seed=fit_seed(cfg.seed, cfg.row(name), self.t))
            self.agents[name] = agent
        except SwarmVarError as exc:
            self._note(name, exc)
            self.agents[name] = None
    if cfg.roles.scouts:
        self.scouts = Scouts(float(np.std(r[-cfg.window:], ddof=1)), cfg.roles)
        self.scouts.warm(r[-cfg.roles.scout_warmup:] if cfg.roles.scout_warmup else r[:0])
    self.forecasts = self._forecast_all()
    self.consensus = self._combine(self.forecasts, frozenset(), {}, as_of)[0]


def beat(self: PortfolioSwarm, tick: BeatInput) -> BeatOutcome:
    """Absorb one return, score, refit if due, forecast, sign and combine."""
    import time

    cfg = self.config
    clock, cpu = time.perf_counter, time.thread_time
    begin, begin_cpu = clock(), cpu()
    value = float(tick.value)
    log_scores: dict[str, float] = {}
    rejected: dict[str, str] = {}
    for name, agent in self.agents.items():
        if agent is None:
            continue
        try:
            log_scores[name] = float(agent.update(value))
        except SwarmVarError as exc:
            self._note(name, exc)
            self.agents[name] = None
            rejected[name] = f"update failed: {exc}"
    agents_seconds, agents_cpu = clock() - begin, cpu() - begin_cpu
    breaches = self._absorb_tick(tick, value)
    records: list[RoleRecord] = []
    # swaps first: a refit launched earlier replaces the live agent at this boundary
    for result in tick.swaps:
        records.append(self._swap(result))
    # roles that watch the returns
    regime = 0.0
    asks: list[tuple[str, str]] = list(tick.requests)
    if self.scouts is not None:
        regime, flag = self.scouts.observe(value)
        if flag is not None:
            records.append(flag)
            if cfg.roles.scout_refits:
                asks.append(("*", "regime"))
    diags = self._diagnostics()
    if cfg.roles.guards:
        for found in self.guards.check(self.absorbed, log_scores, diags, cfg.refit_every):
            records.append(found)
            if cfg.roles.guard_refits:
                asks.extend((a, "guard") for a in found.agents)
    # foragers: the backtest's rhythm, then what was asked
    due = [(name, "schedule") for name in cfg.agents] if (
        self.absorbed % cfg.refit_every == 0) else []
    for who, why in asks:
        names = cfg.agents if who == "*" else (who,)
        due.extend((n, why) for n in names if n in cfg.agents)
    # an agent that failed at this beat is fitted again at once, from its window
    due.extend((n, "revive") for n in cfg.agents if n in rejected)
    jobs, refit_seconds = self._refits(due, records)
    validation: dict[str, Any] = {}
    if cfg.roles.builders and self.absorbed % cfg.refit_every == 0:
        # the windows are current every beat; their tests are read on the refit rhythm
        validation = self.builders.current()
        records.append(RoleRecord("builder", "validation", (), {
            row: {f"{a:g}": {k: (None if isinstance(x, float) and not math.isfinite(x)
                                 else x) for k, x in dataclasses.asdict(v).items()}
                  for a, v in levels.items()}
            for row, levels in validation.items()}))
    begin, begin_cpu = clock(), cpu()
    self.forecasts = self._forecast_all()
    agents_seconds += clock() - begin
    agents_cpu += cpu() - begin_cpu
    begin, begin_cpu = clock(), cpu()
    # an agent that broke its sandbox at this beat is held out of this beat's consensus
    violated = frozenset(self.violations)
    for name, broke in self.violations.items():
        records.append(RoleRecord("sandbox", "violation", (name,), {
            "violation": broke.violation.value, "detail": str(broke)[:500]}))
    self.violations = {}
    consensus, estimates, missing = self._combine(self.forecasts, tick.excluded | violated,
                                                  tick.factors, tick.as_of)
    rejected.update(missing)
    for name in violated:
        rejected[name] = "sandbox violation"
    self.consensus = consensus
    written = tuple(estimate_record(e, self.own) for e in estimates)
    combine_seconds = clock() - begin
    #: this beat's CPU time of this thread (what a loaded machine cannot add to), for
    #: benchmarks: the agents' update + forecast, and signing + combine
    self.cpu_seconds = {"agents": agents_cpu, "combine": cpu() - begin_cpu}
    report = BeatReport(
        portfolio=cfg.portfolio, seq=tick.seq, as_of=tick.as_of, realized=value,
        breaches=breaches, log_scores=log_scores, forecasts=dict(self.forecasts),
        consensus=tuple(consensus), diagnostics=diags, rejected=rejected,
        quarantined=tuple(sorted(a for a in tick.excluded | violated
                                 if a in cfg.agents)),
        regime_probability=regime, events=tuple(r.words() for r in records))
    return BeatOutcome(report, tuple(estimates), tuple(jobs), tuple(records),
                       validation,
                       {"agents": agents_seconds, "refit": refit_seconds,
                        "combine": combine_seconds}, written)


def _diagnostics(self: PortfolioSwarm) -> dict[str, Diagnostics]:
    out = {}
    for name, agent in self.agents.items():
        if agent is not None:
            try:
                out[name] = agent.diagnostics
            except SwarmVarError:
                continue
    return out


def _forecast_all(self: PortfolioSwarm) -> dict[str, Forecast]:
    cfg = self.config
    out = {}
    for name in cfg.agents:
        agent = self.agents.get(name)
        if agent is None:
            continue
        try:
            out[name] = agent.forecast(cfg.alphas, cfg.horizon, seed=np.random.default_rng(
                [cfg.seed, cfg.row(name), self.t, 1]))
        except SwarmVarError as exc:
            self._note(name, exc)
            self.agents[name] = None
    return out
