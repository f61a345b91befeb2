"""ES backtests: Acerbi-Szekely Z2 (Monte Carlo p-value) and McNeil-Frey (bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.errors import InvalidParameter
from swarmvar.validation import (
    acerbi_szekely_z2,
    matched_student_t,
    mcneil_frey,
    student_t_sampler,
)
from swarmvar.validation.es_tests import z2_statistic


def t_var_es(scale: np.ndarray, df: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    q = stats.t.ppf(alpha, df)
    es = stats.t.pdf(q, df) * (df + q * q) / ((df - 1) * (1 - alpha))
    return scale * q, scale * es


def test_es_formula_agrees_with_scipy_integration() -> None:
    v, e = t_var_es(np.array([1.0]), np.array([4.0]), 0.975)
    integral = stats.t.expect(lambda x: x, args=(4.0,), lb=v[0], conditional=True)
    assert e[0] == pytest.approx(integral, rel=1e-8)


def test_z2_statistic_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    loss = rng.standard_normal(300)
    var, es = np.full(300, 2.0), np.full(300, 2.4)
    sampler = student_t_sampler(np.zeros(300), 1, np.inf)
    res = acerbi_szekely_z2(loss, var, es, 0.975, sampler=sampler, n_sim=50, seed=1)
    direct = sum(loss[t] / (300 * 0.025 * es[t]) for t in range(300) if loss[t] > var[t]) - 1
    assert res.statistic == pytest.approx(direct, abs=1e-12)
    assert 0 < res.pvalue <= 1


def test_z2_pvalue_counts_simulations_at_least_as_extreme() -> None:
    sims = np.array([[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]])

    def sampler(rng: np.random.Generator, m: int) -> np.ndarray:
        return np.resize(sims, (m, 2))

    var, es = np.ones(2), np.full(2, 2.0)
    # observed one exceedance of 5 -> Z2 = 5/(2*0.5*2) - 1 = 1.5; sims give -1, 1.5, 4
    res = acerbi_szekely_z2([5.0, 0.0], var, es, 0.5, sampler=sampler, n_sim=3, seed=0)
    assert res.statistic == pytest.approx(1.5)
    assert res.pvalue == pytest.approx((1 + 2) / 4)


@pytest.mark.parametrize("censored", [False, True])
def test_z2_is_calibrated_under_the_null_and_rejects_understated_risk(censored: bool) -> None:
    rng = np.random.default_rng(2)
    alpha, n = 0.975, 500
    scale = 0.01 * np.exp(0.3 * rng.standard_normal(n))
    df = np.full(n, 5.0)
    var, es = t_var_es(scale, df, alpha)
    sampler = student_t_sampler(0.0, scale, df, above=var if censored else None)
    null_p, alt_p = [], []
    for _ in range(150):
        loss = scale * rng.standard_t(5, n)
        null_p.append(acerbi_szekely_z2(loss, var, es, alpha, sampler=sampler, n_sim=200,
                                        seed=rng).pvalue)
        alt_p.append(acerbi_szekely_z2(1.5 * loss, var, es, alpha, sampler=sampler,
                                       n_sim=200, seed=rng).pvalue)
    null_p, alt_p = np.array(null_p), np.array(alt_p)
    assert 0.01 <= np.mean(null_p < 0.05) <= 0.12
    assert stats.kstest(null_p, "uniform").pvalue > 0.001
    assert np.mean(alt_p < 0.05) > 0.8


def test_matched_student_t_recovers_scale_and_df() -> None:
    scale = np.array([0.005, 0.01, 0.02, 0.013])
    df = np.array([3.0, 5.0, 12.0, 40.0])
    for alpha in (0.99, 0.975):
        var, es = t_var_es(scale, df, alpha)
        got_scale, got_df = matched_student_t(var, es, alpha)
        np.testing.assert_allclose(got_df, df, rtol=1e-6)
        np.testing.assert_allclose(got_scale, scale, rtol=1e-6)
    # thinner than normal: largest df, VaR still matched
    s, d = matched_student_t([0.02], [0.0205], 0.99)
    assert d[0] == pytest.approx(1e4, rel=1e-6)
    assert s[0] * stats.t.ppf(0.99, d[0]) == pytest.approx(0.02, rel=1e-9)
    with pytest.raises(InvalidParameter):
        matched_student_t([0.02], [0.01], 0.99)


def test_student_t_sampler_draws_the_stated_distribution() -> None:
    sampler = student_t_sampler([0.0, 1.0], [1.0, 2.0], [4.0, np.inf])
    x = sampler(np.random.default_rng(3), 40_000)
    assert x.shape == (40_000, 2)
    assert stats.kstest(x[:, 0], stats.t(4).cdf).pvalue > 0.001
    assert stats.kstest(x[:, 1], stats.norm(1, 2).cdf).pvalue > 0.001


def test_censored_sampler_keeps_the_law_beyond_the_floor() -> None:
    loc, scale, df = np.array([0.0, 1.0, -0.5]), np.array([1.0, 2.0, 0.5]), np.array(
        [4.0, np.inf, 2.5])
    floor = loc + scale * np.array([stats.t.ppf(0.9, 4), 1.5, stats.t.ppf(0.5, 2.5)])
    x = student_t_sampler(loc, scale, df, above=floor)(np.random.default_rng(5), 60_000)
    assert x.shape == (60_000, 3) and np.all(x >= floor)
    laws = [stats.t(4, 0.0, 1.0), stats.norm(1.0, 2.0), stats.t(2.5, -0.5, 0.5)]
    for j, law in enumerate(laws):
        beyond = x[:, j][x[:, j] > floor[j]]
        p_beyond = law.sf(floor[j])
        # as many beyond the floor as the law says, and distributed as it says there
        assert abs(beyond.size / 60_000 - p_beyond) < 5 * np.sqrt(p_beyond / 60_000)
        conditional = (law.cdf(beyond) - law.cdf(floor[j])) / p_beyond
        assert stats.kstest(conditional, "uniform").pvalue > 0.001


def test_censoring_at_var_leaves_the_z2_null_distribution_unchanged() -> None:
    rng = np.random.default_rng(6)
    n, alpha = 400, 0.99
    scale, df = 0.01 * np.exp(0.2 * rng.standard_normal(n)), np.full(n, 6.0)
    var, es = t_var_es(scale, df, alpha)
    full = student_t_sampler(0.0, scale, df)(np.random.default_rng(7), 4000)
    cens = student_t_sampler(0.0, scale, df, above=var)(np.random.default_rng(8), 4000)
    z_full, z_cens = z2_statistic(full, var, es, alpha), z2_statistic(cens, var, es, alpha)
    assert stats.ks_2samp(z_full, z_cens).pvalue > 0.001
    assert z_cens.mean() == pytest.approx(0.0, abs=0.05)  # E[Z2] = 0 under the null
    with pytest.raises(InvalidParameter, match="finite"):
        student_t_sampler(0.0, 1.0, 5.0, above=[np.nan])


def test_mcneil_frey_statistic_and_power() -> None:
    rng = np.random.default_rng(4)
    alpha, n = 0.975, 2000
    scale = np.full(n, 0.01)
    var, es = t_var_es(scale, np.full(n, 4.0), alpha)
    loss = scale * rng.standard_t(4, n)
    res = mcneil_frey(loss, var, es, n_boot=2000, seed=5)
    hit = loss > var
    resid = (loss[hit] - es[hit]) / es[hit]
    t = resid.mean() / (resid.std(ddof=1) / np.sqrt(hit.sum()))
    assert res.statistic == pytest.approx(t, rel=1e-12)
    assert res.pvalue > 0.01
    # ES understated by 30% (VaR right): rejected
    bad = mcneil_frey(loss, var, 0.7 * es + 0.3 * var, n_boot=2000, seed=5)
    assert bad.statistic > 0 and bad.pvalue < 0.01
    # with a supplied volatility scale the statistic is computed on those residuals
    vol = mcneil_frey(loss, var, es, scale=2 * scale, n_boot=200, seed=5)
    resid2 = (loss[hit] - es[hit]) / (2 * scale[hit])
    assert vol.statistic == pytest.approx(
        resid2.mean() / (resid2.std(ddof=1) / np.sqrt(hit.sum())), rel=1e-12
    )


def test_mcneil_frey_size_under_the_null() -> None:
    rng = np.random.default_rng(6)
    n = 1000
    scale = np.full(n, 1.0)
    var, es = t_var_es(scale, np.full(n, 6.0), 0.975)
    p = np.array([mcneil_frey(rng.standard_t(6, n), var, es, n_boot=300, seed=rng).pvalue
                  for _ in range(200)])
    assert 0.01 <= np.mean(p < 0.05) <= 0.12


def test_es_tests_edge_cases_and_errors() -> None:
    none = mcneil_frey(np.zeros(10), np.ones(10), np.full(10, 2.0))
    assert np.isnan(none.statistic) and none.passed() is None
    with pytest.raises(InvalidParameter):
        acerbi_szekely_z2([1.0], [1.0], [0.0], 0.99, sampler=student_t_sampler(0, 1, 5))
    with pytest.raises(InvalidParameter):
        acerbi_szekely_z2([1.0, 2.0], [1.0, 1.0], [2.0, 2.0], 0.99,
                          sampler=lambda rng, m: np.zeros((m, 3)), n_sim=5)
    with pytest.raises(InvalidParameter):
        acerbi_szekely_z2([1.0], [1.0], [2.0], 0.99, sampler=student_t_sampler(0, 1, 5), n_sim=0)
    with pytest.raises(InvalidParameter):
        mcneil_frey([1.0, 2.0], [0.5, 0.5], [1.0, 1.0], scale=[1.0, -1.0])
    with pytest.raises(InvalidParameter):
        student_t_sampler(0.0, -1.0, 5.0)
