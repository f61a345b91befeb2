"""Bayesian GPD tail: densities, quantiles and expected excess against scipy; grid posterior."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models.gpd import (
    GPDTailFamily,
    body_suffix_sums,
    gpd_logpdf,
    gpd_posterior,
    gpd_survival,
)
from swarmvar.models.risk import risk_measures


@pytest.mark.parametrize("xi", [-0.4, -0.1, 0.0, 1e-12, 0.2, 0.6])
@pytest.mark.parametrize("beta", [0.3, 1.7])
def test_density_and_survival_match_scipy(xi: float, beta: float) -> None:
    y = np.linspace(0.0, 6.0, 61)
    ref = stats.genpareto(c=xi, scale=beta)
    expected = ref.logpdf(y)
    got = gpd_logpdf(y, xi, beta)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-12)
    assert np.all(np.isneginf(got[~finite]))
    np.testing.assert_allclose(gpd_survival(y, xi, beta), ref.sf(y), rtol=1e-10, atol=1e-15)


def test_negative_excess_has_zero_density() -> None:
    assert np.isneginf(gpd_logpdf(-0.1, 0.2, 1.0))


@pytest.mark.parametrize("xi", [-0.3, 0.0, 0.25])
def test_family_tail_quantile_excess_above_threshold(xi: float) -> None:
    u, beta, p_u = 1.2, 0.6, 0.1
    body = np.linspace(-3, u, 50)
    fam = GPDTailFamily(u, [xi], [beta], [p_u], body, loc=[0.001], scale=[0.02])
    ref = stats.genpareto(c=xi, scale=beta)
    for alpha in (0.95, 0.99, 0.999):
        z = u + ref.isf((1 - alpha) / p_u)
        assert fam.var(alpha)[0] == pytest.approx(0.001 + 0.02 * z, rel=1e-10)
        # the tail estimator of McNeil & Frey, by its formula
        if xi != 0.0:
            zq = u + beta / xi * (((1 - alpha) / p_u) ** (-xi) - 1)
            assert z == pytest.approx(zq, rel=1e-10)
        assert fam.tail(float(fam.var(alpha)[0]))[0] == pytest.approx(1 - alpha, rel=1e-9)
    for x in (u, u + 0.3, u + 1.1):
        v = 0.001 + 0.02 * x
        assert fam.tail(v)[0] == pytest.approx(p_u * ref.sf(x - u), rel=1e-10)
        numeric, _ = integrate.quad(lambda t: p_u * ref.sf(t - u), x, np.inf)
        assert fam.excess(v)[0] == pytest.approx(0.02 * numeric, rel=1e-7)


def test_family_body_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_t(5, 2000)
    losses = -z
    u = float(np.quantile(losses, 0.9))
    body = losses[losses <= u]
    p_u, xi, beta = 0.1, 0.15, 0.5
    fam = GPDTailFamily(u, [xi], [beta], [p_u], body)
    for x in (-1.0, 0.0, 0.5, u - 1e-3):
        brute_tail = p_u + (1 - p_u) * np.mean(body > x)
        assert fam.tail(x)[0] == pytest.approx(brute_tail, rel=1e-12)
        gpd_mean_excess = (u - x) + beta / (1 - xi)
        brute_ex = (1 - p_u) * np.mean(np.maximum(body - x, 0)) + p_u * gpd_mean_excess
        assert fam.excess(x)[0] == pytest.approx(brute_ex, rel=1e-12)
    for alpha in (0.6, 0.75, 0.85):
        v = fam.var(alpha)[0]
        assert fam.tail(v)[0] <= 1 - alpha + 1e-12
        smaller = body[body < v]
        if smaller.size:
            assert fam.tail(smaller.max())[0] > 1 - alpha


def test_closed_form_es_of_tail_estimator() -> None:
    # McNeil & Frey (2000): ES_q = z_q / (1 - xi) + (beta - xi u) / (1 - xi)
    u, xi, beta, p_u = 1.0, 0.2, 0.5, 0.08
    fam = GPDTailFamily(u, [xi], [beta], [p_u], np.linspace(-2, u, 30))
    (m,) = risk_measures(fam, (0.99,))
    zq = u + beta / xi * (((0.01) / p_u) ** (-xi) - 1)
    assert m.var == pytest.approx(zq, rel=1e-9)
    assert m.es == pytest.approx(zq / (1 - xi) + (beta - xi * u) / (1 - xi), rel=1e-9)


def test_risk_measures_monotone_over_draws() -> None:
    rng = np.random.default_rng(0)
    s = 200
    fam = GPDTailFamily(1.3, rng.uniform(-0.1, 0.4, s), rng.uniform(0.4, 0.7, s),
                        rng.uniform(0.08, 0.12, s), np.linspace(-3, 1.3, 100),
                        loc=rng.normal(0, 1e-4, s), scale=rng.uniform(0.008, 0.012, s))
    levels = risk_measures(fam, (0.95, 0.975, 0.99, 0.995))
    vars_ = [lv.var for lv in levels]
    assert all(np.diff(vars_) > 0)
    for lv in levels:
        assert lv.es >= lv.var
        assert lv.var_interval[0] <= lv.var <= lv.var_interval[1]


def test_posterior_mode_matches_scipy_mle() -> None:
    y = stats.genpareto(c=0.2, scale=0.6).rvs(size=400, random_state=11)
    post = gpd_posterior(y, 4000)
    c, _, scale = stats.genpareto.fit(y, floc=0)
    i, j = np.unravel_index(np.argmax(post.log_post), post.log_post.shape)
    # flat priors in (xi, log beta): the mode is the MLE up to the grid step
    assert abs(post.xi[i] - c) <= 0.011
    assert abs(post.log_beta[j] - np.log(scale)) <= post.log_beta[1] - post.log_beta[0]
    assert abs(post.mean("xi") - c) < 0.5 * np.sqrt(
        post.marginal("xi")[1] @ (post.xi - post.mean("xi")) ** 2) + 0.02


def test_credible_intervals_cover_truth_in_most_seeds() -> None:
    hits_xi = hits_beta = 0
    seeds = range(20)
    for seed in seeds:
        y = stats.genpareto(c=0.1, scale=0.5).rvs(size=200, random_state=seed)
        post = gpd_posterior(y, 2000)
        lo, hi = post.interval("xi")
        hits_xi += lo <= 0.1 <= hi
        lo, hi = post.interval("log_beta")
        hits_beta += lo <= np.log(0.5) <= hi
    # 90% intervals: P(hits <= 14 of 20) is about 4% under exact coverage
    assert hits_xi >= 15 and hits_beta >= 15


def test_online_update_equals_batch() -> None:
    y = stats.genpareto(c=0.1, scale=0.5).rvs(size=60, random_state=1)
    post = gpd_posterior(y[:40], 400)
    for value in y[40:]:
        post = post.add_excess(float(value)).add_non_exceedance()
    batch = gpd_posterior(y[:40], 400)
    from swarmvar.models.gpd import GPDPosterior
    batch = GPDPosterior(batch.xi, batch.log_beta,
                         batch.log_post + sum(gpd_logpdf(v, batch.xi[:, None],
                                                         np.exp(batch.log_beta)[None, :])
                                              for v in y[40:]), 60, 440)
    np.testing.assert_allclose(post.log_post, batch.log_post, rtol=1e-12, atol=1e-9)
    assert (post.n_exceed, post.n_obs) == (60, 440)


def test_draws_follow_the_grid_posterior() -> None:
    y = stats.genpareto(c=0.2, scale=0.6).rvs(size=300, random_state=5)
    post = gpd_posterior(y, 3000)
    xi, beta, p_u = post.draws(20000, np.random.default_rng(0))
    assert xi.mean() == pytest.approx(post.mean("xi"), abs=0.01)
    assert np.log(beta).mean() == pytest.approx(post.mean("log_beta"), abs=0.01)
    assert p_u.mean() == pytest.approx(300.5 / 3001, rel=0.02)


def test_invalid_inputs_raise_named_errors() -> None:
    with pytest.raises(InvalidReturns, match="excess #2"):
        gpd_posterior([0.1, 0.2, -0.3, 0.4, 0.5, 0.6], 100)
    with pytest.raises(InvalidReturns, match="at least 5"):
        gpd_posterior([0.1, 0.2], 100)
    with pytest.raises(InvalidParameter, match="n_obs"):
        gpd_posterior(np.ones(10), 5)
    with pytest.raises(InvalidParameter):
        GPDTailFamily(1.0, [1.2], [0.5], [0.1], [0.0])
    with pytest.raises(InvalidParameter):
        GPDTailFamily(1.0, [0.2], [0.5], [0.1], [2.0])  # body above the threshold
    post = gpd_posterior(np.ones(10), 100)
    with pytest.raises(InvalidReturns):
        post.add_excess(float("nan"))


@settings(max_examples=60, deadline=None)
@given(xi=st.floats(-0.45, 0.9), beta=st.floats(0.1, 3.0), p_u=st.floats(0.02, 0.3),
       alpha=st.floats(0.51, 0.9999))
def test_family_quantile_inverts_tail(xi: float, beta: float, p_u: float, alpha: float) -> None:
    body = np.linspace(-2.0, 1.0, 40)
    fam = GPDTailFamily(1.0, [xi], [beta], [p_u], body)
    v = float(fam.var(alpha)[0])
    # left-continuous quantile: the tail at VaR is at most 1 - alpha ...
    assert fam.tail(v)[0] <= (1 - alpha) * (1 + 1e-9) + 1e-12
    # ... and just below VaR it is above
    assert fam.tail(v - 1e-9)[0] >= (1 - alpha) * (1 - 1e-6)
    # expected excess is convex and decreasing, with slope -tail
    h = 1e-6
    slope = (fam.excess(v + h)[0] - fam.excess(v - h)[0]) / (2 * h)
    assert slope == pytest.approx(-0.5 * (fam.tail(v + h)[0] + fam.tail(v - h)[0]), abs=1e-4)


def test_grid_loglik_equals_summed_scipy_logpdf() -> None:
    from swarmvar.models.gpd import grid_loglik

    y = stats.genpareto(c=0.15, scale=0.5).rvs(size=70, random_state=8)
    xi = np.array([-0.5, -0.2, -1e-12, 0.0, 0.3, 0.9])
    beta = np.exp(np.linspace(-2.5, 1.0, 9))
    ref = np.array([[stats.genpareto.logpdf(y, c=a, scale=b).sum() for b in beta] for a in xi])
    got = grid_loglik(y, xi, beta)
    finite = np.isfinite(ref)
    assert (~finite).any()  # some nodes with xi < 0 cannot reach the largest excess
    np.testing.assert_array_equal(np.isfinite(got), finite)
    # tabulated float64 sums (tests/models/test_gpd_fast.py): ~1e-11 relative
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-10, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(2, 200), alpha=st.floats(0.9, 0.999))
def test_newton_mixture_var_equals_brent(seed: int, size: int, alpha: float) -> None:
    from swarmvar.models import risk

    rng = np.random.default_rng(seed)
    fam = GPDTailFamily(1.2, rng.uniform(-0.4, 0.6, size), rng.uniform(0.3, 1.0, size),
                        rng.uniform(0.05, 0.15, size), rng.normal(0, 0.6, 300).clip(max=1.2),
                        loc=rng.normal(0, 1e-3, size), scale=rng.uniform(0.005, 0.03, size),
                        weights=rng.dirichlet(np.ones(size)))

    class Plain:  # the same family without the shortcut: risk.mixture_var's Brent search
        weights = fam.weights
        var, tail, excess = fam.var, fam.tail, fam.excess

    got = fam.mixture_var(alpha)
    ref = risk.mixture_var(Plain(), alpha)  # type: ignore[arg-type]
    assert got == pytest.approx(ref, rel=2e-9, abs=1e-12)
    # the mixture tail crosses 1 - alpha there (it may jump, in the empirical body)
    eps = 1e-9 * abs(got)
    assert float(fam.weights @ fam.tail(got - eps)) >= (1 - alpha) * (1 - 1e-6)
    assert float(fam.weights @ fam.tail(got + eps)) <= (1 - alpha) * (1 + 1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(2, 200), spread=st.floats(0.0, 1.5),
       exponential=st.booleans())
def test_level_measures_equal_brent_and_the_plain_route(seed: int, size: int, spread: float,
                                                       exponential: bool) -> None:
    # the batched Halley solve against Brent on the same family, and the per-draw measures
    # against var / excess bit for bit; a wide spread of scales puts some draws in the body,
    # and xi = 0 (the exponential tail) takes the general path
    from swarmvar.models import risk

    rng = np.random.default_rng(seed)
    xi = rng.uniform(-0.4, 0.6, size)
    if exponential:
        xi[rng.random(size) < 0.5] = 0.0
    fam = GPDTailFamily(1.2, xi, rng.uniform(0.3, 1.0, size),
                        rng.uniform(0.05, 0.15, size), rng.normal(0, 0.6, 300).clip(max=1.2),
                        loc=rng.normal(0, 1e-3, size),
                        scale=0.01 * np.exp(spread * rng.normal(size=size)),
                        weights=rng.dirichlet(np.ones(size)))

    class Plain:  # the same family without the shortcuts: the generic route of risk.py
        weights = fam.weights
        var, tail, excess = fam.var, fam.tail, fam.excess

    alphas = (0.99, 0.975, 0.9)
    for a, m in zip(alphas, fam.level_measures(alphas), strict=True):
        ref = risk.level_measures(Plain(), a)  # type: ignore[arg-type]
        assert m.var == pytest.approx(ref.var, rel=2e-9, abs=1e-12)
        assert m.es == pytest.approx(ref.es, rel=1e-9, abs=1e-12)
        np.testing.assert_array_equal(m.cond_var, ref.cond_var)
        np.testing.assert_array_equal(m.cond_es, ref.cond_es)


def test_unchecked_family_is_the_checked_one() -> None:
    rng = np.random.default_rng(2)
    s = 50
    xi, beta, p_u = rng.uniform(-0.2, 0.5, s), rng.uniform(0.3, 1.0, s), rng.uniform(0.05, 0.2, s)
    body = np.sort(rng.normal(0, 0.6, 200).clip(max=1.1))
    loc, scale, w = rng.normal(0, 1e-3, s), rng.uniform(0.01, 0.02, s), rng.dirichlet(np.ones(s))
    checked = GPDTailFamily(1.1, xi, beta, p_u, body, loc=loc, scale=scale, weights=w)
    fast = GPDTailFamily.unchecked(1.1, xi, beta, p_u, body, body_suffix_sums(body), loc, scale,
                                   w)
    assert risk_measures(fast, (0.99, 0.9)) == risk_measures(checked, (0.99, 0.9))


def test_grid_step_is_gpd_logpdf_on_the_grid() -> None:
    from swarmvar.models.gpd import _grid_logpdf

    xi = np.linspace(-0.5, 0.95, 146)  # holds a node at ~0 (the exponential limit)
    beta = np.exp(np.linspace(-3.0, 2.0, 201))
    for y in (0.0, 1e-9, 0.3, 2.5, 40.0):
        ref = gpd_logpdf(y, xi[:, None], beta[None, :])
        got = _grid_logpdf(y, xi, beta)
        assert got.tobytes() == ref.tobytes()


def test_draws_are_generator_choice_draws() -> None:
    # draws() inlines Generator.choice: the same cells, jitter and p_u from the same stream
    post = gpd_posterior(np.random.default_rng(4).pareto(4.0, 80) + 1e-3, 700)
    rng = np.random.default_rng(9)
    p = post.probabilities.ravel()
    i, j = np.unravel_index(rng.choice(p.size, size=500, p=p), post.log_post.shape)
    xi = post.xi[i] + (post.xi[1] - post.xi[0]) * (rng.random(500) - 0.5)
    beta = np.exp(post.log_beta[j] + (post.log_beta[1] - post.log_beta[0]) * (
        rng.random(500) - 0.5))
    p_u = rng.beta(post.n_exceed + 0.5, post.n_obs - post.n_exceed + 0.5, size=500)
    for got, ref in zip(post.draws(500, np.random.default_rng(9)), (xi, beta, p_u), strict=True):
        np.testing.assert_array_equal(got, ref)
