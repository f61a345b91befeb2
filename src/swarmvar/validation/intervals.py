"""Frequentist coverage of an agent's credible intervals on simulated data.

Data are simulated from a process whose true VaR (and optionally ES) is
known in closed form; an agent is fitted on each simulated history and we
count how often its credible interval for VaR contains the truth. For a
well-specified model the coverage of a 90% interval should be near 90%
(Bernstein-von Mises), and exactly so on average over the prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from ..errors import InvalidParameter
from ..models.base import Agent


@dataclass(frozen=True)
class IntervalCoverage:
    """How often the credible intervals covered the truth.

    ``var_covered``/``es_covered`` are per replication; ``fraction`` is the
    VaR coverage with a 95% Clopper-Pearson confidence interval ``ci``.
    """

    alpha: float
    interval_mass: float
    var_covered: NDArray[np.bool_]
    es_covered: NDArray[np.bool_] | None

    @property
    def fraction(self) -> float:
        return float(self.var_covered.mean())

    @property
    def es_fraction(self) -> float | None:
        return None if self.es_covered is None else float(self.es_covered.mean())

    @property
    def ci(self) -> tuple[float, float]:
        k, n = int(self.var_covered.sum()), self.var_covered.size
        low, high = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        return float(low), float(high)


def interval_coverage(
    make_agent: Callable[[], Agent],
    simulate: Callable[[np.random.Generator, int], NDArray[np.float64]],
    true_var: float,
    *,
    true_es: float | None = None,
    alpha: float = 0.99,
    n_obs: int = 500,
    n_rep: int = 200,
    seed: int = 0,
) -> IntervalCoverage:
    """Fraction of replications whose VaR (and ES) credible interval holds the true value.

    Parameters
    ----------
    make_agent : callable
        Builds a fresh, unfitted agent.
    simulate : callable ``(rng, n) -> (n,)``
        Draws ``n`` i.i.d. log returns from the true process.
    true_var, true_es : float
        The true next-period VaR/ES (positive losses, return units) of that process.
    alpha : float
        Confidence level of the VaR.
    n_obs, n_rep : int
        History length per replication, and replications.
    seed : int
    """
    if not 0.5 < alpha < 1.0:
        raise InvalidParameter(f"alpha must lie in (0.5, 1), not {alpha!r}")
    if n_rep < 1 or n_obs < 1:
        raise InvalidParameter("n_rep and n_obs must be positive")
    var_hits, es_hits = [], []
    mass = float("nan")
    for child in np.random.SeedSequence(seed).spawn(n_rep):
        rng = np.random.default_rng(child)
        data = np.asarray(simulate(rng, n_obs), dtype=float)
        agent = make_agent().fit(data, seed=rng)
        forecast = agent.forecast((alpha,), seed=rng)
        mass = forecast.interval_mass
        level = forecast.at(alpha)
        var_hits.append(level.var_interval[0] <= true_var <= level.var_interval[1])
        if true_es is not None:
            es_hits.append(level.es_interval[0] <= true_es <= level.es_interval[1])
    return IntervalCoverage(
        alpha=alpha,
        interval_mass=mass,
        var_covered=np.asarray(var_hits, dtype=bool),
        es_covered=None if true_es is None else np.asarray(es_hits, dtype=bool),
    )
