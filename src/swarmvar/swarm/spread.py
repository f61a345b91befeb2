"""A portfolio's agents spread over several hosts: the groups sign, the runtime combines.

``Swarm(..., spread=K)`` (``swarmvar run --spread K``) splits each
portfolio's agents into ``K`` groups, agent ``i`` (its row in the portfolio)
into group ``i mod K``, each group hosted like a portfolio on its own host
(:func:`~.executors.place`): there its agents update, refit, forecast and
*sign* their estimates for the portfolio, seeded by their rows in the
portfolio (so the numbers are the unspread portfolio's). The portfolio's
consensus moves to the runtime (:class:`SpreadConsensus`): it scores the
last forecasts of every agent into the online track record (the tempered
weights), keeps the builders' windows, verifies the groups' signed
estimates (they crossed a process boundary) and combines them with
:func:`~swarmvar.consensus.combine` under the portfolio's policy — the same
code path as an unspread beat (:meth:`PortfolioSwarm._vote`), so with every
host up the consensus is the unspread portfolio's.

When a group's host is lost, the portfolio beats on with the groups that
answered: the consensus of the ``m`` live agents, ``available = m`` of
``total = n``, ``degraded``, each interval widened by the partition rule
for the missing agents (``combine(total=n)``); the lost agents are
``rejected`` ("host lost") in the report. The missed days enter the track
record as every missing forecast does (:class:`~.beat.OnlineTrackRecord`):
the lost agents' entries are filled with the median of the live agents'
forecasts of that day, neither rewarded nor punished, and are not rescored
when the restored group replays them; what the group forecast while
catching up is ledgered as its own (late) estimates.

The partition rule widens by the *live* agents' disagreement, which is
smaller than the whole swarm's when the lost agents were the outliers: on
its own it would claim more certainty with fewer agents. So each interval
of a degraded beat is also held at least as wide, around the live point, as
the same level's interval at the last beat where every agent answered, aged
by the partition rule's staleness term (``h' = sqrt(h^2 + z^2 (kappa *
point)^2 d)``, ``d`` days since then — what the runtime served for a lost
portfolio before spreading); the method says so. This floor is the swarm's
(``swarm/``), not the consensus engine's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ..errors import InvalidParameter, NotEnoughAgents
from ..types import BeatReport, Consensus, Diagnostics, Estimate, Forecast
from .beat import CONSENSUS, BeatInput, BeatOutcome, PortfolioConfig, PortfolioSwarm
from .consensus import uncrossed
from .roles import RoleRecord

#: The report reason of an agent whose group's host is lost.
HOST_LOST = "host lost"


def group_name(portfolio: str, g: int) -> str:
    """The hosted name of group ``g`` of a spread portfolio."""
    return f"{portfolio}#g{g}"


def spread_groups(config: PortfolioConfig, k: int) -> tuple[PortfolioConfig, ...]:
    """The ``k`` groups of a portfolio: agent ``i`` in group ``i mod k``.

    Each group is hosted like a portfolio (its name :func:`group_name`), signs
    for ``config.portfolio`` and leaves the builders to the runtime (which
    sees every agent's forecast). Raises InvalidParameter if ``k`` is more
    than the agents.
    """
    n = len(config.agents)
    if not 2 <= k <= n:
        raise InvalidParameter(f"spread must be between 2 and the portfolio's {n} agents, "
                               f"not {k}")
    roles = dataclasses.replace(config.roles, builders=False)
    out = []
    for g in range(k):
        rows = tuple(range(g, n, k))
        agents = tuple(config.agents[i] for i in rows)
        out.append(dataclasses.replace(
            config, portfolio=group_name(config.portfolio, g), agents=agents, roles=roles,
            params={a: p for a, p in config.params.items() if a in agents},
            variants={a: v for a, v in config.variants.items() if a in agents},
            spread=k, group_of=config.portfolio, rows=rows))
    return tuple(out)


def routed(tick: BeatInput, group: PortfolioConfig) -> BeatInput:
    """A portfolio's beat input as its group beats it: the refit requests for its agents
    (quarantine and weight factors act on the consensus, in the runtime)."""
    requests = tuple((a, why) for a, why in tick.requests if a == "*" or a in group.agents)
    return BeatInput(tick.seq, tick.as_of, tick.value, requests=requests)


class SpreadConsensus(PortfolioSwarm):
    """The runtime's part of a spread portfolio: no agents, the consensus over its groups.

    Holds what an unspread :class:`PortfolioSwarm` carries between beats for
    the consensus — the online track record of every agent, the builders,
    the last forecasts and consensus — and checkpoints it the same way
    (:meth:`state`), with a configuration whose ``spread`` is ``K``, plus
    ``full``: the consensus of the last beat where every agent answered (the
    floor of a degraded beat's intervals).
    """

    def __init__(self, config: PortfolioConfig) -> None:
        super().__init__(config)
        self.full: list[Consensus] = []

    def state(self, *, rebase: bool = True) -> bytes:
        from . import state as packing
        from .beat import _consensus_dict

        header, arrays = packing.unpack(super().state(rebase=rebase))
        header["full"] = [_consensus_dict(c) for c in self.full]
        return packing.pack(header, arrays)

    @classmethod
    def restore(cls, config: PortfolioConfig, blob: bytes) -> SpreadConsensus:
        from . import state as packing
        from .beat import _consensus_from

        self = super().restore(config, blob)
        assert isinstance(self, SpreadConsensus)
        header, _ = packing.unpack(blob)
        self.full = [_consensus_from(d) for d in header.get("full", [])]
        return self

    def begin(self, history: np.ndarray, as_of: datetime | None,
              forecasts: Mapping[str, Forecast]) -> None:
        """After the groups started: the first forecasts and their consensus (not ledgered;
        what the first beat scores). Signed here with the agents' keys, as a start does."""
        r = np.asarray(history, dtype=np.float64)
        self.t = int(r.size)
        self.returns = r[-self._keep():].copy()
        self.last_as_of = as_of
        self.forecasts = {a: forecasts[a] for a in self.config.agents if a in forecasts}
        self.consensus = self._combine(self.forecasts, frozenset(), {}, as_of)[0]
        self.full = list(self.consensus)

    def compose(self, tick: BeatInput, parts: Mapping[str, BeatOutcome],
                lost: Sequence[str]) -> BeatOutcome:
        """The portfolio's beat from its groups' outcomes (``lost``: agents out with a host).

        Scores the last forecasts (track record, builders, breaches), then
        combines every level from the groups' signed estimates, verified.
        """
        cfg = self.config
        value = float(tick.value)
        breaches = self._score(value)
        self.returns = self._returns_ring.append(self.returns, value)
        self.t += 1
        self.absorbed += 1
        self.seq = tick.seq
        self.last_as_of = tick.as_of
        forecasts: dict[str, Forecast] = {}
        log_scores: dict[str, float] = {}
        diags: dict[str, Diagnostics] = {}
        rejected: dict[str, str] = {}
        records: list[RoleRecord] = []
        scouts_seen = False
        regime = 0.0
        signed: dict[tuple[float, str], tuple[Estimate, object]] = {}
        seconds: dict[str, float] = {}
        for part in parts.values():
            rep = part.report
            forecasts.update(rep.forecasts)
            log_scores.update(rep.log_scores)
            diags.update(rep.diagnostics)
            rejected.update({a: why for a, why in rep.rejected.items() if a in cfg.agents})
            scout = [r for r in part.roles if r.role == "scout"]
            if not scouts_seen:  # every group's scouts watch the same returns: one is told
                regime = rep.regime_probability
                records.extend(scout)
                scouts_seen = True
            records.extend(r for r in part.roles if r.role != "scout")
            written = (part.estimate_records if len(part.estimate_records) == len(
                part.estimates) else (None,) * len(part.estimates))
            for e, w in zip(part.estimates, written, strict=True):
                signed[e.alpha, e.agent_id] = (e, w)
            for k, v in part.seconds.items():
                seconds[k] = max(seconds.get(k, 0.0), v)  # the groups ran in parallel
        for a in lost:
            rejected[a] = HOST_LOST
        self.forecasts = {a: forecasts[a] for a in cfg.agents if a in forecasts}
        validation: Mapping[str, Mapping[float, Any]] = {}
        if cfg.roles.builders and self.absorbed % cfg.refit_every == 0:
            validation = self.builders.current()
            records.append(_validation_record(validation))
        consensus: list[Consensus] = []
        if self.forecasts:
            policy, given, records_ = self._weighing()
            out = []
            try:
                for alpha in cfg.alphas:
                    level = [signed[alpha, a][0] for a in cfg.agents if (alpha, a) in signed]
                    out.append(self._vote(level, alpha, tick.excluded, tick.factors,
                                          tick.as_of, policy, given, records_))
                consensus = uncrossed(out)
            except NotEnoughAgents as exc:
                rejected[CONSENSUS] = str(exc)
        for a in tick.excluded:
            if a in cfg.agents:
                rejected.setdefault(a, "quarantined")
        if lost:  # agents out with a host: the consensus of the live ones, marked degraded
            consensus = [self._floored(c, tick.as_of) for c in consensus]
        elif len(consensus) == len(cfg.alphas):
            self.full = list(consensus)
        self.consensus = consensus
        order = [(alpha, a) for alpha in cfg.alphas for a in cfg.agents if (alpha, a) in signed]
        estimates = tuple(signed[key][0] for key in order)
        texts = tuple(signed[key][1] for key in order)
        report = BeatReport(
            portfolio=cfg.portfolio, seq=tick.seq, as_of=tick.as_of, realized=value,
            breaches=breaches, log_scores=log_scores, forecasts=dict(self.forecasts),
            consensus=tuple(consensus), diagnostics=diags, rejected=rejected,
            quarantined=tuple(sorted(a for a in tick.excluded if a in cfg.agents)),
            regime_probability=regime, events=tuple(r.words() for r in records))
        return BeatOutcome(report, estimates, (), tuple(records), validation, seconds,
                           texts if all(t is not None for t in texts) else ())  # type: ignore[arg-type]


    def _floored(self, c: Consensus, as_of: datetime) -> Consensus:
        """A degraded level: its intervals at least the last full consensus's, aged (above)."""
        from ..consensus import widen_interval

        full = next((f for f in self.full if f.alpha == c.alpha), None)
        if full is None or full.as_of is None:
            return dataclasses.replace(c, degraded=True)
        policy = self.config.policy
        days = max(0.0, (as_of - full.as_of).total_seconds() / 86_400.0)

        def floor(point: float, live: tuple[float, float], old_point: float,
                  old: tuple[float, float]) -> tuple[tuple[float, float], bool]:
            aged = widen_interval(old_point, old, available=1, total=1, spread=0.0,
                                  staleness_days=days, drift=policy.drift,
                                  mass=policy.interval_mass)
            low = min(live[0], point - (old_point - aged[0]))
            high = max(live[1], point + (aged[1] - old_point))
            if live[0] >= 0:
                low = max(low, 0.0)
            return (low, high), (low, high) != live

        vi, v_moved = floor(c.var, c.var_interval, full.var, full.var_interval)
        ei, e_moved = floor(c.es, c.es_interval, full.es, full.es_interval)
        note = (f"; floored at the full swarm's interval of {days:g} days before"
                if v_moved or e_moved else "")
        return dataclasses.replace(c, var_interval=vi, es_interval=ei, degraded=True,
                                   method=c.method + note)


def _validation_record(validation: Mapping[str, Mapping[float, object]]) -> RoleRecord:
    """The builders' record, as an unspread beat writes it."""
    import math

    return RoleRecord("builder", "validation", (), {
        row: {f"{a:g}": {k: (None if isinstance(x, float) and not math.isfinite(x) else x)
                         for k, x in dataclasses.asdict(v).items()}  # type: ignore[call-overload]
              for a, v in levels.items()}
        for row, levels in validation.items()})
