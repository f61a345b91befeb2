"""Step 5 of a portfolio's beat: sign each live agent's measures and combine them by level.

Methods of :class:`~.beat.PortfolioSwarm`, written as functions of
``self: PortfolioSwarm`` and bound in its class body. ``_combine`` (called
by ``start`` and ``beat``, :mod:`._portfolio_beat`, and by the spread
consensus's ``begin``, :mod:`.spread`) signs with the agents' keys (a
group of a spread portfolio only signs: the runtime combines) and votes
each level (``_vote``, which the spread consensus's ``compose`` calls too)
under the policy as the track record can meet it (``_weighing``: the
online tempered weights, or the records, or equal weights before any row),
APPLY_BALANCE factors re-weighing a level (``_rebalanced``), then uncrosses
the levels.

Reads ``config``, ``keys``, ``seq`` and ``track``. Writes ``own`` (the
signatures just made, not verified again) and ``ring``'s replay state and
refusal counts (through :func:`~swarmvar.consensus.combine`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from ..consensus import Policy, TrackRecord, Weighting, combine, sign_measures
from ..consensus.combine import agent_weights, aggregate_rows
from ..errors import NotEnoughAgents
from ..types import Consensus, Estimate, Forecast
from ._beat_types import CONSENSUS
from .consensus import uncrossed

if TYPE_CHECKING:
    from .beat import PortfolioSwarm


def _combine(self: PortfolioSwarm, forecasts: Mapping[str, Forecast],
             excluded: frozenset[str], factors: Mapping[str, float], as_of: datetime | None
             ) -> tuple[list[Consensus], list[Estimate], dict[str, str]]:
    """Sign every live agent's measures, combine each level, uncross the levels."""
    cfg = self.config
    missing = {a: "no forecast" for a in cfg.agents if a not in forecasts}
    if as_of is None or not forecasts:
        return [], [], missing
    policy, given, records = self._weighing()
    estimates: list[Estimate] = []
    out: list[Consensus] = []
    names = [a for a in cfg.agents if a in forecasts]
    for k, alpha in enumerate(cfg.alphas):
        # a group of a spread portfolio signs for it; the runtime combines (.spread)
        signed = sign_measures([(a, forecasts[a].at(alpha)) for a in names], self.keys,
                               portfolio=cfg.group_of or cfg.portfolio, horizon=cfg.horizon,
                               as_of=as_of, seq=self.seq * len(cfg.alphas) + k,
                               variant_ids=cfg.variants, own=self.own)
        estimates.extend(signed)
        if cfg.group_of is not None:
            continue
        try:
            c = self._vote(signed, alpha, excluded, factors, as_of, policy, given, records)
        except NotEnoughAgents as exc:
            missing[CONSENSUS] = str(exc)
            return [], estimates, missing
        out.append(c)
    for a in excluded:
        if a in cfg.agents:
            missing.setdefault(a, "quarantined")
    return uncrossed(out), estimates, missing


def _weighing(self: PortfolioSwarm
              ) -> tuple[Policy, Mapping[str, float] | None, list[TrackRecord] | None]:
    """The policy as this beat can meet it, and the agents' weights or track records."""
    policy = self.config.policy
    # tempered weights kept online (O(agents) a beat); other weightings read the record
    given = self.track.weights() if policy.weighting is not Weighting.EQUAL else None
    records = self.track.records() if given is None else None
    if given is None and records is None and policy.weighting is not Weighting.EQUAL:
        policy = dataclasses.replace(policy, weighting=Weighting.EQUAL)
    return policy, given, records


def _vote(self: PortfolioSwarm, signed: Sequence[Estimate], alpha: float,
          excluded: frozenset[str], factors: Mapping[str, float], as_of: datetime, policy: Policy,
          given: Mapping[str, float] | None, records: list[TrackRecord] | None
          ) -> Consensus:
    """One level's consensus of the signed estimates (quarantined agents held out)."""
    cfg = self.config
    voting = [e for e in signed if e.agent_id not in excluded]
    c = combine(voting, policy, keyring=self.ring, now=as_of, total=len(cfg.agents),
                track_record=records, weights=given, portfolio=cfg.portfolio,
                alpha=alpha, horizon=cfg.horizon, own=self.own)
    if factors:
        c = self._rebalanced(c, voting, policy, records, given, factors)
    return c


def _rebalanced(self: PortfolioSwarm, c: Consensus, voting: Sequence[Estimate], policy: Policy,
                records: list[TrackRecord] | None, given: Mapping[str, float] | None,
                factors: Mapping[str, float]) -> Consensus:
    """The level again with each agent's weight multiplied by its factor (APPLY_BALANCE)."""
    agents = sorted(a for a in (*c.used, *c.trimmed))
    by = {e.agent_id: e for e in voting}
    rows = np.array([[by[a].var, by[a].es, *by[a].var_interval, *by[a].es_interval]
                     for a in agents], dtype=np.float64)
    if given is None:
        prior = agent_weights(agents, policy, records)
    else:  # as agent_weights maps a record's weights onto the agents used
        known = np.array(list(given.values()), dtype=np.float64)
        mean = float(np.mean(known))
        prior = np.array([given.get(a, mean) for a in agents], dtype=np.float64)
        prior = (prior / prior.sum() if prior.sum() > 0
                 else np.full(len(agents), 1.0 / len(agents)))
    scale = np.array([min(1.0, max(0.0, float(factors.get(a, 1.0)))) for a in agents])
    w = prior * scale
    if not w.sum() > 0:
        return c
    w = w / w.sum()
    var, es, vi, ei, contribution = aggregate_rows(rows, policy, w, total=c.total,
                                                   staleness=c.staleness)
    return dataclasses.replace(
        c, var=var, es=es, var_interval=vi, es_interval=ei,
        method=c.method + ", balanced",
        used=tuple(a for a, x in zip(agents, contribution, strict=True) if x > 0),
        trimmed=tuple(a for a, x in zip(agents, contribution, strict=True) if x <= 0),
        weights={a: float(x) for a, x in zip(agents, contribution, strict=True) if x > 0})
