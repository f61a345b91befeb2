"""The book backtest's arch GJR-GARCH-t row against arch's own numbers.

``ArchGjrT`` fits arch's GJR-GARCH(1,1)-t to the book's P&L; its one-day
VaR must be arch's documented recipe ``-(mu + sigma * ppf(1 - alpha))`` with
arch's standardized t (``arch.univariate.StudentsT``), its ES the tail mean of
that law (quadrature of arch's density), its ``h``-day variance the sum of
arch's analytic variance forecasts, and its log score arch's per-observation
log-likelihood along the GJR recursion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch import arch_model

from _refs_t import ARCH_T, arch_tail_mean  # tests/_refs_t.py (on the path: conftest)
from swarmvar.models.book_baselines import ArchGjrT


@pytest.fixture(scope="module")
def fitted() -> tuple[ArchGjrT, object, np.ndarray]:
    rng = np.random.default_rng(12)
    r = 0.01 * rng.standard_t(6, 800) * math.sqrt(4 / 6)
    row = ArchGjrT().fit(r[:700])
    res = arch_model(100 * r[:700], mean="Constant", vol="GARCH", p=1, o=1, q=1,
                     dist="t").fit(disp="off", show_warning=False)
    assert res.convergence_flag == 0
    return row, res, r


def test_one_day_var_es_are_archs_recipe(fitted) -> None:  # type: ignore[no-untyped-def]
    row, res, _ = fitted
    fc = res.forecast(horizon=1, reindex=False)
    mu, sigma = float(fc.mean.to_numpy()[-1, 0]), math.sqrt(float(fc.variance.to_numpy()[-1, 0]))
    nu = float(res.params["nu"])
    got = row.forecast((0.99, 0.975))
    for alpha in (0.99, 0.975):
        q = float(ARCH_T.ppf(np.array([1.0 - alpha]), np.array([nu]))[0])
        assert got.at(alpha).var == pytest.approx(-(mu + sigma * q) / 100, rel=1e-7)
        assert got.at(alpha).es == pytest.approx((-mu + sigma * arch_tail_mean(nu, alpha)) / 100,
                                                 rel=1e-7)


def test_h_day_variance_is_the_sum_of_archs_forecasts(fitted) -> None:  # type: ignore[no-untyped-def]
    row, res, _ = fitted
    h = 10
    variance = res.forecast(horizon=h, reindex=False).variance.to_numpy()[-1]
    nu = float(res.params["nu"])
    fc = row.forecast((0.99,), horizon=h)
    mu = float(res.params["mu"])
    q = float(ARCH_T.ppf(np.array([0.01]), np.array([nu]))[0])
    # the row's h-day law: loc -h mu, a unit-variance t scaled by the summed variance
    assert fc.at(0.99).var == pytest.approx((-h * mu - math.sqrt(variance.sum()) * q) / 100,
                                            rel=1e-7)


def test_log_score_is_archs_log_likelihood(fitted) -> None:  # type: ignore[no-untyped-def]
    row, res, r = fitted
    mu, omega, a, g, b, nu = (float(res.params[k]) for k in
                              ("mu", "omega", "alpha[1]", "gamma[1]", "beta[1]", "nu"))
    s2 = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
    for x in r[700:760]:
        e = 100 * float(x) - mu
        want = float(ARCH_T.loglikelihood(np.array([nu]), np.array([e]), np.array([s2]),
                                          individual=True)[0]) + math.log(100)
        assert row.update(float(x)) == pytest.approx(want, rel=1e-10, abs=1e-10)
        s2 = omega + (a + g * (e < 0)) * e * e + b * s2  # arch's GJR recursion
