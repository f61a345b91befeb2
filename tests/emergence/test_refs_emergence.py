"""Emergence statistics against outside references.

* Diebold-Mariano with a Newey-West (Bartlett) long-run variance is the HAC
  t statistic of a regression of the loss differential on a constant:
  statsmodels ``OLS(...).fit(cov_type="HAC", use_correction=False)``; the
  consensus-versus-best-agent test of :func:`level_gain` is checked the same
  way on its own losses.
* Simulation with a known truth: an MA(1) loss differential of mean zero is
  the null; the HAC test holds its size there while the i.i.d. variance
  (``lags=0``) over-rejects (which is why HAC is used).
* The hit-residual error correlation is numpy's ``corrcoef`` of
  ``1{L > VaR_i} - (1 - alpha)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from _refs_t import t_var_es  # tests/_refs_t.py (on the path: conftest)
from swarmvar.emergence import error_correlation, level_gain
from swarmvar.validation import diebold_mariano, fz0_loss, newey_west_lags


def hac_t(d: np.ndarray, lags: int) -> tuple[float, float]:
    """t statistic and two-sided normal p of the mean of ``d`` with statsmodels' HAC."""
    res = sm.OLS(d, np.ones((d.size, 1))).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    return float(res.tvalues[0]), float(res.pvalues[0])


@pytest.mark.parametrize("lags", [0, 1, 4, 12, None])
@pytest.mark.parametrize("theta", [0.0, 0.6, -0.4])
def test_diebold_mariano_is_the_statsmodels_hac_t(lags: int | None, theta: float) -> None:
    rng = np.random.default_rng(3)
    n = 600
    e = rng.standard_normal(n + 1)
    d = 0.08 + e[1:] + theta * e[:-1]
    a = 2.0 + rng.standard_normal(n)
    res = diebold_mariano(a + d, a, lags=lags)
    t, p = hac_t(d, newey_west_lags(n) if lags is None else lags)
    assert res.statistic == pytest.approx(t, rel=1e-9)
    assert res.pvalue == pytest.approx(p, rel=1e-8)


def test_level_gain_dm_is_the_statsmodels_hac_t() -> None:
    rng = np.random.default_rng(4)
    days, alpha = 900, 0.975
    sd = 0.01 * np.exp(0.3 * np.sin(np.arange(days) / 50))
    losses = sd * rng.standard_t(5, days) / math.sqrt(5 / 3)
    q = stats.t.ppf(alpha, 5) / math.sqrt(5 / 3)
    t_var, t_es = t_var_es(1.0, 5.0, alpha)
    ratio = t_es / t_var  # ES / VaR of a t(5) loss
    k = np.array([0.7, 1.0, 1.4])
    var = sd[:, None] * q * k
    es = var * ratio
    cons_var, cons_es = var[:, 1] * 1.03, es[:, 1] * 1.03
    g = level_gain(losses, var, es, ("a", "b", "c"), cons_var, cons_es, alpha)
    agent = np.column_stack([fz0_loss(losses, var[:, i], es[:, i], alpha) for i in range(3)])
    best = int(np.argmin(agent.mean(axis=0)))
    d = fz0_loss(losses, cons_var, cons_es, alpha) - agent[:, best]
    t, p = hac_t(d, newey_west_lags(days))
    assert g.best_agent == ("a", "b", "c")[best]
    assert g.gain == pytest.approx(-d.mean(), rel=1e-9)
    assert g.dm_statistic == pytest.approx(t, rel=1e-9)
    assert g.dm_pvalue == pytest.approx(p, rel=1e-8)
    assert g.dm_pvalue_better == pytest.approx(stats.norm.cdf(t), rel=1e-9)


def test_hac_keeps_the_size_where_the_iid_variance_over_rejects() -> None:
    rng = np.random.default_rng(5)
    reps, n = 1000, 1000
    hac, iid = [], []
    for _ in range(reps):
        e = rng.standard_normal(n + 1)
        d = e[1:] + 0.8 * e[:-1]  # mean zero: the null; long-run variance 3.24 vs 1.64
        hac.append(diebold_mariano(d, np.zeros(n)).pvalue < 0.05)
        iid.append(diebold_mariano(d, np.zeros(n), lags=0).pvalue < 0.05)
    # truth: size 5%; a 99.9% binomial band (+1 point for the finite-lag Bartlett bias)
    assert abs(np.mean(hac) - 0.05) < 3.3 * math.sqrt(0.05 * 0.95 / reps) + 0.01
    # with the i.i.d. variance |t| is ~ sqrt(3.24 / 1.64) too large: P(|Z| > 1.96 / 1.41) ~ 17%
    expected_iid = 2 * stats.norm.sf(1.96 / math.sqrt(3.24 / 1.64))
    assert np.mean(iid) == pytest.approx(expected_iid, abs=0.04)


def test_hit_residual_correlation_is_numpys_corrcoef() -> None:
    rng = np.random.default_rng(6)
    days, alpha = 1000, 0.95
    losses = rng.standard_t(4, days)
    var = np.column_stack([np.full(days, 1.5), np.full(days, 2.0) + 0.3 * rng.random(days),
                           1.6 + 0.5 * rng.standard_normal(days)])
    got = error_correlation(var, losses, alpha)
    resid = (losses[:, None] > var) - (1 - alpha)
    np.testing.assert_allclose(got, np.corrcoef(resid.T), atol=1e-12)
