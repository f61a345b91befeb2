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
from ..models.base import Agent, check_real, check_whole
from ._checks import float_array
from ._checks import level as _level

#: Most replications and returns per replication (each replication fits an agent).
MAX_REPLICATIONS = 100_000
MAX_OBSERVATIONS = 10_000_000


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


def _agent(make_agent: Callable[[], Agent]) -> Agent:
    """``make_agent()``, checked to be an :class:`~swarmvar.models.base.Agent`."""
    agent = make_agent()
    if not isinstance(agent, Agent):
        raise InvalidParameter(f"make_agent must build an Agent, not a {type(agent).__name__}")
    return agent


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
    alpha = _level(alpha)
    if not alpha > 0.5:
        raise InvalidParameter(f"alpha must lie in (0.5, 1), not {alpha!r}")
    n_rep = check_whole("n_rep (replications)", n_rep, 1, MAX_REPLICATIONS)
    n_obs = check_whole("n_obs (returns per replication)", n_obs, 1, MAX_OBSERVATIONS)
    true_var = check_real("true_var", true_var)
    true_es = None if true_es is None else check_real("true_es", true_es)
    seed = check_whole("seed", seed, 0)
    for name, fn in (("make_agent", make_agent), ("simulate", simulate)):
        if not callable(fn):
            raise InvalidParameter(f"{name} must be a callable, not {type(fn).__name__}")
    var_hits, es_hits = [], []
    mass = float("nan")
    for child in np.random.SeedSequence(seed).spawn(n_rep):
        rng = np.random.default_rng(child)
        data = float_array(simulate(rng, n_obs), "the returns simulate(rng, n_obs) drew")
        agent = _agent(make_agent).fit(data, seed=rng)
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
