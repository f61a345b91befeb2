"""The arch GARCH-t baseline's VaR, ES and log score against arch's own distribution.

The backtests' reference row must give the numbers arch itself gives: arch's
standardized Student-t (``arch.univariate.StudentsT``, unit variance) has
``ppf`` and ``loglikelihood``; the VaR is ``-(mu + sigma * ppf(1 - alpha))``
(arch's documented Value-at-Risk recipe), ES the tail mean of that law by
quadrature, and the log predictive density is arch's per-observation
log-likelihood (in percent; ``+ log 100`` for returns in fractions).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch import arch_model

from _refs_t import ARCH_T, arch_tail_mean  # tests/_refs_t.py (on the path: conftest)
from swarmvar.validation import GarchTBaseline
from swarmvar.validation.baseline import standardized_t_var_es


@pytest.mark.parametrize("nu", [2.5, 4.0, 7.3, 30.0])
@pytest.mark.parametrize("alpha", [0.95, 0.975, 0.99])
def test_standardized_t_var_es_are_archs(nu: float, alpha: float) -> None:
    var, es = standardized_t_var_es(nu, alpha)
    assert var == pytest.approx(-ARCH_T.ppf(np.array([1.0 - alpha]), np.array([nu]))[0],
                                rel=1e-10)
    assert es == pytest.approx(arch_tail_mean(nu, alpha), rel=1e-7)


@pytest.fixture(scope="module")
def fitted() -> tuple[GarchTBaseline, object, np.ndarray]:
    r = 0.01 * np.random.default_rng(5).standard_t(5, 700) * math.sqrt(3 / 5)
    base = GarchTBaseline().fit(r[:600])
    res = arch_model(100 * r[:600], mean="Constant", vol="GARCH", p=1, o=0, q=1, dist="t",
                     rescale=False).fit(disp="off", show_warning=False)
    return base, res, r


def test_one_day_var_and_es_are_archs_recipe(fitted) -> None:  # type: ignore[no-untyped-def]
    base, res, _ = fitted
    fc = res.forecast(horizon=1, reindex=False)
    mu = float(fc.mean.to_numpy()[-1, 0])
    sigma = math.sqrt(float(fc.variance.to_numpy()[-1, 0]))
    nu = float(res.params["nu"])
    forecast = base.forecast((0.99, 0.975))
    for alpha in (0.99, 0.975):
        q = float(ARCH_T.ppf(np.array([1.0 - alpha]), np.array([nu]))[0])
        level = forecast.at(alpha)
        assert level.var == pytest.approx(-(mu + sigma * q) / 100, rel=1e-9)
        assert level.es == pytest.approx((-mu + sigma * arch_tail_mean(nu, alpha)) / 100,
                                         rel=1e-7)


def test_log_score_is_archs_log_likelihood(fitted) -> None:  # type: ignore[no-untyped-def]
    base, res, r = fitted
    mu, omega, a, b, nu = (float(res.params[k])
                           for k in ("mu", "omega", "alpha[1]", "beta[1]", "nu"))
    s2 = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
    for x in r[600:640]:
        xp = 100 * float(x)
        want = float(ARCH_T.loglikelihood(np.array([nu]), np.array([xp - mu]), np.array([s2]),
                                          individual=True)[0]) + math.log(100)
        assert base.update(float(x)) == pytest.approx(want, rel=1e-10, abs=1e-10)
        s2 = omega + a * (xp - mu) ** 2 + b * s2  # arch's GARCH(1,1) recursion
