"""The Bayesian bootstrap's VaR credible interval against its Beta closed form.

Under the Bayesian bootstrap (Rubin 1981) the weights are Dirichlet(1, ..., 1)
over the ``n`` returns of the window, so the total weight ``W_m`` of the
``m`` largest losses is Beta(``m``, ``n - m``) (aggregation property of the
Dirichlet). A draw's VaR at ``alpha`` (left-continuous quantile) is at most
the ``m``-th largest loss ``L_m`` (``L_0`` the largest) exactly when
``W_m <= 1 - alpha``, so ``P(VaR <= L_m) = BetaCDF(1 - alpha; m, n - m)``
(scipy). The interval's 5% and 95% endpoints are the order statistics where
that CDF crosses 5% and 95%, up to the Monte Carlo error of the draws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from swarmvar.models import BayesianBootstrap


def acceptable(losses_desc: np.ndarray, tail: float, p: float, draws: int) -> set[float]:
    """Losses ``L_m`` that can be the ``p`` quantile of ``draws`` posterior VaRs."""
    n = losses_desc.size
    m = np.arange(1, n)
    cdf = stats.beta.cdf(tail, m, n - m)  # P(VaR <= L_m), decreasing in m
    exact = int(m[cdf >= p].max())  # the smallest loss whose probability reaches p
    slack = 5 * math.sqrt(p * (1 - p) / draws)  # Monte Carlo error of the draws' quantile
    near = {int(k) for k in m[np.abs(cdf - p) < slack]}
    out = {float(losses_desc[exact])}
    for k in near:  # a crossing this close may land on either neighbour
        out |= {float(losses_desc[k]), float(losses_desc[k - 1])}
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_var_interval_is_the_beta_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, draws = 300, 20_000
    returns = 0.01 * rng.standard_t(4, n)
    agent = BayesianBootstrap(window=n, draws=draws).fit(returns, seed=seed)
    losses_desc = np.sort(-returns)[::-1]
    fc = agent.forecast((0.99, 0.975, 0.95), seed=seed + 10)
    for level in fc.levels:
        tail = 1.0 - level.alpha
        low, high = level.var_interval
        assert low in acceptable(losses_desc, tail, 0.05, draws), (level.alpha, low)
        assert high in acceptable(losses_desc, tail, 0.95, draws), (level.alpha, high)
        # the point value: historical simulation, the left-continuous empirical quantile
        assert level.var == float(np.quantile(-returns, level.alpha, method="inverted_cdf"))
