"""Step 2 of a portfolio's beat: a realized return scores the forecasts it completes.

Methods of :class:`~.beat.PortfolioSwarm`, written as functions of
``self: PortfolioSwarm`` and bound in its class body. ``_absorb_tick``
(called by ``beat``, :mod:`._portfolio_beat`, and by the spread
consensus's ``compose``, :mod:`.spread`) scores the outstanding forecasts
on the return (``_score``: an ``h``-day forecast once its ``h`` returns are
in; ``_scored``: breaches per agent and for the consensus, one row pushed
into the online track record, :mod:`._track`, and the builders' windows),
then advances the return ring and the counters.

Reads ``config``, ``forecasts``, ``consensus``. Writes ``outstanding``,
``track``, ``builders``, ``returns`` (through ``_returns_ring``), ``t``,
``absorbed``, ``seq`` and ``last_as_of``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..types import Consensus, Forecast
from ._beat_types import CONSENSUS, BeatInput

if TYPE_CHECKING:
    from .beat import PortfolioSwarm


def _absorb_tick(self: PortfolioSwarm, tick: BeatInput, value: float
                 ) -> dict[str, tuple[bool, ...]]:
    """Score the last forecasts on ``value``, then advance the return ring and counters."""
    breaches = self._score(value)
    self.returns = self._returns_ring.append(self.returns, value)
    self.t += 1
    self.absorbed += 1
    self.seq = tick.seq
    self.last_as_of = tick.as_of
    return breaches


def _score(self: PortfolioSwarm, value: float) -> dict[str, tuple[bool, ...]]:
    """Score the forecasts ``value`` completes; feed the track record and builders.

    A forecast for ``h`` days made before return ``t`` is scored when
    return ``t + h - 1`` arrives, against the ``h``-day return (so the
    track record, as the backtest's ``h``-day weights, sees only realized
    losses); with ``h = 1`` that is the previous beat's forecast and ``value``.
    """
    cfg = self.config
    if not self.forecasts:
        return {}
    self.outstanding.append((self.forecasts, self.consensus))
    if len(self.outstanding) < cfg.horizon:
        return {}
    forecasts, consensus = self.outstanding.pop(0)
    realized = value if cfg.horizon == 1 else value + float(
        np.sum(self.returns[-(cfg.horizon - 1):]))
    return self._scored(realized, forecasts, consensus)


def _scored(self: PortfolioSwarm, value: float, forecasts: Mapping[str, Forecast],
            consensus: Sequence[Consensus]) -> dict[str, tuple[bool, ...]]:
    cfg = self.config
    loss = -value
    nan = math.nan
    # plain lists first, one array per level at the end (the same float64 values)
    var_rows = {a: [nan] * len(cfg.agents) for a in cfg.alphas}
    es_rows = {a: [nan] * len(cfg.agents) for a in cfg.alphas}
    breaches: dict[str, tuple[bool, ...]] = {}
    for k, name in enumerate(cfg.agents):
        fc = forecasts.get(name)
        if fc is None:
            continue
        hits = []
        for a in cfg.alphas:
            m = fc.at(a)
            var_rows[a][k], es_rows[a][k] = m.var, m.es
            hits.append(bool(loss > m.var))
        breaches[name] = tuple(hits)
    var = {a: np.array(v, dtype=np.float64) for a, v in var_rows.items()}
    es = {a: np.array(e, dtype=np.float64) for a, e in es_rows.items()}
    if any(np.isfinite(var[a]).any() for a in cfg.alphas):
        self.track.push(value, var, es)
    whole = bool(consensus) and len(consensus) == len(cfg.alphas)
    if whole:
        breaches[CONSENSUS] = tuple(bool(loss > c.var) for c in consensus)
    if cfg.roles.builders:
        cv = {a: np.array([*var_rows[a], consensus[i].var if whole else nan],
                          dtype=np.float64) for i, a in enumerate(cfg.alphas)}
        ce = {a: np.array([*es_rows[a], consensus[i].es if whole else nan],
                          dtype=np.float64) for i, a in enumerate(cfg.alphas)}
        self.builders.add(value, cv, ce)
    return breaches
