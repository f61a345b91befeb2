"""NormalInverseGamma's interval tables: steady state of the discount recursion, miss path."""

import math

import numpy as np
import pytest
from scipy import optimize, special

from swarmvar.models import nig
from swarmvar.models.nig import NormalInverseGamma


def _brent_w_quantile(a, kappa, c, p):
    """The quadrature CDF of W with numpy's leggauss nodes, inverted by Brent's method."""
    x, wts = np.polynomial.legendre.leggauss(nig._QUAD_NODES)
    root_g = np.sqrt(special.gammaincinv(a, 0.5 * (x + 1.0)))
    sk = math.sqrt(kappa)

    def cdf(w):
        return float(0.5 * wts @ special.ndtr(sk * (w * root_g - c))) - p

    return optimize.brentq(cdf, -60, 60, xtol=1e-15, rtol=1e-14)


@pytest.mark.parametrize("a, kappa", [(1.2, 1.5), (2.5, 1.0), (16.666, 33.33), (300.0, 600.0)])
@pytest.mark.parametrize("c", [1.2816, 2.3263, 2.6652])
def test_newton_miss_path_matches_brent(a, kappa, c):
    nig._w_quantiles.cache_clear()
    fast = nig._w_quantiles(a, kappa, c, (0.05, 0.95))
    for q, p in zip(fast, (0.05, 0.95), strict=True):
        assert q == pytest.approx(_brent_w_quantile(a, kappa, c, p), rel=1e-11, abs=1e-13)


@pytest.mark.parametrize("lam", [0.9, 0.97])
def test_recursion_reaches_the_closed_form_steady_state(lam):
    # kappa' = lam kappa + 1 and a' = lam a + 1/2 converge to 1/(1-lam) and 1/(2(1-lam))
    x = np.random.default_rng(1).normal(0, 0.01, 1500)
    agent = NormalInverseGamma(forgetting=lam).fit(x)
    _, kappa, a, _ = agent.sufficient()
    assert kappa == pytest.approx(1.0 / (1.0 - lam), rel=1e-12)
    assert a == pytest.approx(0.5 / (1.0 - lam), rel=1e-12)


def test_steady_state_forecasts_never_miss_the_interval_cache():
    x = np.random.default_rng(2).normal(0, 0.01, 1200)
    agent = NormalInverseGamma().fit(x[:1000])
    agent.forecast((0.99, 0.975))
    misses = nig._level_constants.cache_info().misses
    for r in x[1000:]:
        agent.update(float(r))
        agent.forecast((0.99, 0.975))
    assert nig._level_constants.cache_info().misses == misses
