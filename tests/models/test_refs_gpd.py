"""GPD-tail VaR/ES against textbook closed forms and scipy's generalized Pareto law.

* One draw: the peaks-over-threshold estimators of McNeil & Frey (2000) /
  McNeil, Frey & Embrechts (*Quantitative Risk Management*, section 7.2.3),
  ``VaR_q = u + beta/xi ((q / p_u)^(-xi) - 1)`` and
  ``ES_q = VaR_q / (1 - xi) + (beta - xi u) / (1 - xi)`` (``xi = 0``:
  ``u - beta log(q / p_u)`` and ``VaR_q + beta``), for negative, zero and
  positive shapes, through :func:`risk_measures` (the family's own batched
  solver).
* Several posterior draws with location and scale: the predictive mixture's
  VaR solves ``sum_s w_s p_s S_s((v - loc_s)/scale_s - u) = 1 - alpha`` with
  ``S_s`` scipy's ``genpareto(c=xi_s, scale=beta_s).sf``, found by scipy's
  ``brentq``; ES is the tail integral of the mixture density by ``quad``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from swarmvar.models.gpd import GPDTailFamily
from swarmvar.models.risk import risk_measures

BODY = np.linspace(-3.0, 1.0, 40)


@pytest.mark.parametrize("xi", [-0.35, -0.1, 0.0, 0.15, 0.4, 0.7])
@pytest.mark.parametrize("alpha", [0.975, 0.99, 0.999])
def test_one_draw_is_the_textbook_pot_estimator(xi: float, alpha: float) -> None:
    u, beta, p_u = 1.0, 0.55, 0.07
    q = 1.0 - alpha
    if xi == 0.0:
        var = u - beta * math.log(q / p_u)
        es = var + beta
    else:
        var = u + beta / xi * ((q / p_u) ** (-xi) - 1.0)
        es = var / (1.0 - xi) + (beta - xi * u) / (1.0 - xi)
    (m,) = risk_measures(GPDTailFamily(u, [xi], [beta], [p_u], BODY), (alpha,))
    assert m.var == pytest.approx(var, rel=1e-10)
    assert m.es == pytest.approx(es, rel=1e-9)
    # the same from scipy's law: quantile and tail mean of u + GPD excess
    law = stats.genpareto(c=xi, scale=beta)
    assert m.var == pytest.approx(u + law.isf(q / p_u), rel=1e-10)
    mean_excess_beyond = law.expect(lambda y: y, lb=law.isf(q / p_u), conditional=True)
    assert m.es == pytest.approx(u + mean_excess_beyond, rel=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.975, 0.99])
def test_mixture_of_draws_against_scipy_brentq_and_quad(seed: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    s, u = 6, 1.2
    xi = rng.uniform(-0.2, 0.45, s)
    beta = rng.uniform(0.4, 0.8, s)
    p_u = rng.uniform(0.06, 0.12, s)
    loc = rng.normal(0.0, 5e-4, s)
    scale = rng.uniform(0.008, 0.016, s)
    w = rng.random(s) + 0.2
    fam = GPDTailFamily(u, xi, beta, p_u, np.linspace(-3.0, u, 60), loc=loc, scale=scale,
                        weights=w)
    w = w / w.sum()
    laws = [stats.genpareto(c=xi[i], scale=beta[i]) for i in range(s)]

    def tail(v: float) -> float:
        x = (v - loc) / scale
        return float(sum(w[i] * p_u[i] * laws[i].sf(x[i] - u) for i in range(s)))

    def density(v: float) -> float:
        x = (v - loc) / scale
        return float(sum(w[i] * p_u[i] * laws[i].pdf(x[i] - u) / scale[i] for i in range(s)))

    lo = float(np.max(loc + scale * u))  # every draw in its GPD tail from here on
    assert tail(lo) > 1 - alpha
    var = optimize.brentq(lambda v: tail(v) - (1 - alpha), lo, 1.0, xtol=1e-15, rtol=1e-14)
    tail_mean = integrate.quad(lambda v: v * density(v), var, np.inf, epsabs=1e-15,
                               epsrel=1e-11, limit=200)[0]
    (m,) = risk_measures(fam, (alpha,))
    assert m.var == pytest.approx(var, rel=1e-9)
    assert m.es == pytest.approx(tail_mean / (1 - alpha), rel=1e-7)
