"""The joint agents: conjugate formulas, online = batch, states, bad input, sane forecasts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, NotFitted
from swarmvar.models import DEFAULT_BOOK_AGENTS, book_agent_class
from swarmvar.models.book_baselines import RiskMetrics
from swarmvar.models.joint_garch import GRID, GjrFilters
from swarmvar.models.joint_niw import NormalInverseWishart, bartlett_factors

SIGMA = np.array([[1.0, 0.5, 0.2], [0.5, 2.0, -0.3], [0.2, -0.3, 1.5]]) * 1e-4


def _data(t: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([2e-4, 0.0, -1e-4], SIGMA, size=t)


def _murphy(x: np.ndarray, kappa0: float, nu0: float, psi0: np.ndarray, c: np.ndarray):
    """NIW posterior with weighted counts, from the textbook formulas (m0 = 0)."""
    w = c.sum()
    xbar = c @ x / w
    s = ((x - xbar) * c[:, None]).T @ (x - xbar)
    kappa = kappa0 + w
    m = w * xbar / kappa
    psi = psi0 + s + kappa0 * w / kappa * np.outer(xbar, xbar)
    return m, kappa, nu0 + w, psi


@pytest.mark.parametrize("lam", [1.0, 0.98])
def test_niw_posterior_matches_the_conjugate_formulas(lam: float) -> None:
    x = _data()
    agent = NormalInverseWishart(lam=lam, kappa0=2.0, prior_vol=0.02).fit(x)
    m, kappa, nu, psi = agent.posterior()
    c = lam ** np.arange(len(x) - 1, -1, -1.0)
    em, ek, enu, epsi = _murphy(x, 2.0, 5.0, np.eye(3) * 0.02 ** 2 * (5.0 - 3 - 1), c)
    np.testing.assert_allclose(m, em, rtol=1e-10, atol=1e-14)
    assert kappa == pytest.approx(ek) and nu == pytest.approx(enu)
    np.testing.assert_allclose(psi, epsi, rtol=1e-9, atol=1e-16)


def test_niw_online_updates_equal_the_batch_fit_and_score_by_multivariate_t() -> None:
    x = _data(300)
    online = NormalInverseWishart(lam=0.99).fit(x[:200])
    batch = NormalInverseWishart(lam=0.99).fit(x)
    for row in x[200:]:
        m, kappa, nu, psi = online.posterior()
        df = nu - 3 + 1
        ref = stats.multivariate_t(loc=m, shape=psi * (kappa + 1) / (kappa * df), df=df).logpdf(row)
        assert online.update(row) == pytest.approx(ref, rel=1e-10)
    for a, b in zip(online.posterior(), batch.posterior(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)


def test_bartlett_draws_have_the_inverse_wishart_mean() -> None:
    psi = SIGMA * 20
    fac = bartlett_factors(np.random.default_rng(0), psi, 30.0, 20000)
    mean = (fac @ np.swapaxes(fac, 1, 2)).mean(axis=0)
    np.testing.assert_allclose(mean, psi / (30.0 - 3 - 1), rtol=0.05, atol=2e-6)


def test_niw_book_var_against_the_normal_closed_form_with_much_data() -> None:
    x = _data(20000, seed=3)
    p = np.array([5e5, -2e5, 3e5])
    agent = NormalInverseWishart(lam=1.0, draws=20, paths=40000, positions=tuple(p)).fit(x)
    fc = agent.forecast((0.99,), seed=1).at(0.99)
    sd = np.sqrt(p @ SIGMA @ p)
    mu = np.array([2e-4, 0.0, -1e-4]) @ p
    assert fc.var == pytest.approx(stats.norm.ppf(0.99) * sd - mu, rel=0.03)
    assert fc.var_interval[0] <= fc.var <= fc.var_interval[1]


def test_gjr_filters_online_step_is_the_recursion() -> None:
    x = _data(300)
    filt, z = GjrFilters.fit(x)
    assert z.shape == x.shape and np.isfinite(z).all()
    s2, lp = filt.s2.copy(), filt.logpost.copy()
    row = x[-1] * 3
    filt.update(row)
    e = row - filt.mu
    a, g, b = GRID[:, :1], GRID[:, 1:2], GRID[:, 2:3]
    expected = filt.v * (1 - a - g / 2 - b) + (a + g * (e < 0)) * e * e + b * s2
    np.testing.assert_allclose(filt.s2, expected, rtol=1e-12)
    assert not np.allclose(filt.logpost, lp)
    np.testing.assert_allclose(filt.weights().sum(axis=0), 1.0)


@pytest.mark.parametrize("name", [*DEFAULT_BOOK_AGENTS, "RiskMetrics"])
def test_every_joint_agent_forecasts_restores_and_refuses_bad_rows(name: str) -> None:
    cls = book_agent_class(name)
    small = {"draws": 10, "paths": 200} if name != "RiskMetrics" else {"paths": 500}
    agent = cls(**small)
    with pytest.raises(NotFitted):
        agent.forecast()
    x = _data(300)
    agent.fit(x[:-1], seed=0)
    dens = agent.update(x[-1])
    assert np.isfinite(dens)
    fc = agent.forecast((0.99, 0.975), seed=5)
    for m in fc.levels:
        assert 0 < m.var < m.es < 0.1
        assert m.var_interval[0] <= m.var_interval[1]
    again = cls.from_state(agent.state())
    assert again.forecast((0.99, 0.975), seed=5) == fc
    scen = agent.scenarios(3, seed=1)
    assert scen.horizon == 3 and scen.returns.shape[2] == 3
    bad = x[-1].copy()
    bad[1] = np.nan
    with pytest.raises(InvalidReturns, match="asset 1"):
        agent.update(bad)
    with pytest.raises(InvalidReturns):
        agent.update(x[-1, :2])
    with pytest.raises(InvalidReturns):
        cls(**small).fit(x[:, 0])
    with pytest.raises(InvalidState):
        cls.from_state(b"not a state")
    with pytest.raises(InvalidParameter):
        cls(positions=(1.0, 2.0)).fit(x)


def test_forecast_block_is_forecast_then_update() -> None:
    x = _data(260)
    a = NormalInverseWishart(draws=5, paths=100).fit(x[:250])
    b = NormalInverseWishart(draws=5, paths=100).fit(x[:250])
    fcs, dens = a.forecast_block(x[250:], (0.99,), seeds=list(range(10)))
    for j, row in enumerate(x[250:]):
        assert b.forecast((0.99,), seed=j) == fcs[j]
        assert b.update(row) == dens[j]


def test_riskmetrics_is_the_ewma_delta_normal() -> None:
    x = _data(200)
    rm = RiskMetrics(positions=(1e6, -5e5, 2e5)).fit(x)
    sigma = x[:30].T @ x[:30] / 30
    for row in x[30:]:
        sigma = 0.94 * sigma + 0.06 * np.outer(row, row)
    np.testing.assert_allclose(rm.covariance, sigma)
    p = np.array([1e6, -5e5, 2e5])
    sd = np.sqrt(p @ sigma @ p)
    m = rm.forecast((0.99,)).at(0.99)
    assert m.var == pytest.approx(stats.norm.ppf(0.99) * sd)
    assert m.es == pytest.approx(stats.norm.pdf(stats.norm.ppf(0.99)) / 0.01 * sd)
    var, es, cv, ce = rm.delta_normal(p, 0.99)
    assert cv.sum() == pytest.approx(var) and ce.sum() == pytest.approx(es)
