"""GarchT building blocks against scipy, brute force and arch; interface behaviour."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from swarmvar.errors import (
    ConvergenceWarning,
    InvalidParameter,
    InvalidReturns,
    InvalidState,
    NotFitted,
)
from swarmvar.models import _garch_lik as lik
from swarmvar.models import _garch_smc as smc
from swarmvar.models._garch_family import TQuantileCache, _tau_rows, fast_t_cdf
from swarmvar.models.garch_t import GarchT
from swarmvar.models.risk import StudentTFamily, risk_measures

TRUE = {"mu": 5e-4, "omega": 2e-6, "alpha": 0.08, "beta": 0.9, "nu": 6.0}


def _random_theta(s, seed):
    rng = np.random.default_rng(seed)
    return lik.Theta(
        rng.normal(5e-4, 3e-4, s),
        np.exp(rng.normal(math.log(2e-6), 0.5, s)),
        rng.uniform(0.02, 0.2, s),
        rng.uniform(0.6, 0.78, s),
        rng.uniform(2.5, 30.0, s),
    )


def _brute_loglik(r, mu, omega, alpha, beta, nu):
    """Explicit loop GARCH recursion with arch's backcast, and scipy's t density."""
    m = min(r.size, 75)
    w = 0.94 ** np.arange(m)
    backcast = (w / w.sum()) @ (r[:m] - mu) ** 2
    h = omega + (alpha + beta) * backcast
    total = 0.0
    for x in r:
        sd = math.sqrt(h * (nu - 2) / nu)
        total += stats.t.logpdf(x, nu, loc=mu, scale=sd)
        h = omega + alpha * (x - mu) ** 2 + beta * h
    return total, h


@pytest.fixture(scope="module")
def series():
    return GarchT().simulate(TRUE, 1500, seed=11)


@pytest.fixture(scope="module")
def small(series):
    with pytest.warns(ConvergenceWarning):  # 2 x 150 particles cannot reach ESS 400
        return GarchT(particles=150, runs=2).fit(series[:1200], seed=5)


def test_loglik_matches_scipy_brute_force(series):
    r = series[:700]  # spans two chunks of 512
    th = _random_theta(5, 1)
    ll, h = lik.loglik(r, th)
    for i in range(5):
        ref, h_ref = _brute_loglik(r, *(float(p[i]) for p in th))
        # float32 inside the scan: ~1e-7 relative on a sum of ~700 terms
        assert ll[i] == pytest.approx(ref, abs=2e-3)
        assert h[i] == pytest.approx(h_ref, rel=1e-5)


def test_loglik_matches_arch_near_its_mle():
    from arch import arch_model

    from swarmvar.data import load

    r = load("sp500").to_numpy()[-1500:]
    model = arch_model(100 * r, vol="GARCH", p=1, q=1, dist="t")
    p = model.fit(disp="off").params.copy()
    # arch backcasts from residuals about the sample mean, swarmvar about mu (so that
    # the likelihood is a function of the parameters alone); they agree at mu = mean.
    p["mu"] = 100 * r.mean()
    fixed = model.fix(p.to_numpy())
    th = lik.Theta(*(np.array([v]) for v in (
        p["mu"] / 100, p["omega"] / 1e4, p["alpha[1]"], p["beta[1]"], p["nu"])))
    ll, _ = lik.loglik(r, th)
    # arch works in percent: log f_frac(r) = log f_pct(100 r) + log 100
    assert ll[0] == pytest.approx(fixed.loglikelihood + r.size * math.log(100), abs=5e-3)


def test_variance_path_matches_loop(series):
    r = series[:300]
    mu, omega, alpha, beta = 1e-4, 3e-6, 0.1, 0.85
    _, h_last = _brute_loglik(r, mu, omega, alpha, beta, 5.0)
    path = lik.variance_path(r, mu, omega, alpha, beta)
    assert path.shape == (301,)
    assert path[-1] == pytest.approx(h_last, rel=1e-12)


def test_prior_density_matches_scipy_with_numeric_jacobian():
    rng = np.random.default_rng(2)
    th = lik.sample_prior(6, rng)
    u = lik.to_unconstrained(th)
    got = lik.log_prior_u(u)
    for i in range(6):
        base = lik.Theta(*(np.array([p[i]]) for p in th))
        dens = (
            stats.norm.logpdf(base.mu[0], 0, lik.MU_SD)
            + stats.lognorm.logpdf(
                base.omega[0], lik.LOG_OMEGA_SD, scale=math.exp(lik.LOG_OMEGA_MEAN)
            )
            + math.log(2.0)  # Dirichlet(1,1,1) on (alpha, beta)
            + stats.gamma.logpdf(base.nu[0] - 2, lik.NU_SHAPE, scale=1 / lik.NU_RATE)
        )
        jac = np.empty((5, 5))
        eps = 1e-6
        for j in range(5):
            du = u[i : i + 1].copy()
            du[0, j] += eps
            up = np.array(lik.from_unconstrained(du))[:, 0]
            du[0, j] -= 2 * eps
            dn = np.array(lik.from_unconstrained(du))[:, 0]
            jac[:, j] = (up - dn) / (2 * eps)
        expect = dens + math.log(abs(np.linalg.det(jac)))
        assert got[i] == pytest.approx(expect, abs=1e-5)
    back = lik.from_unconstrained(u)
    for a, b in zip(back, th, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_sample_prior_respects_constraints():
    d = GarchT().sample_prior(5000, seed=1)
    assert np.all(d["omega"] > 0) and np.all(d["nu"] > 2)
    assert np.all(d["alpha"] + d["beta"] < 1) and np.all(d["alpha"] > 0)
    assert stats.kstest(d["nu"] - 2, stats.gamma(2, scale=10).cdf).pvalue > 1e-3


def test_fast_t_cdf_against_stdtr():
    rng = np.random.default_rng(0)
    df = np.concatenate([rng.uniform(2.01, 40, 3000), 2 + rng.exponential(100, 1000)])
    z = rng.uniform(-80, 80, df.size)
    rows = _tau_rows(df)
    got, ref = fast_t_cdf(z, df, rows), special.stdtr(df, z)
    assert np.max(np.abs(got - ref)) < 1e-7
    z = rng.uniform(-15, -0.1, df.size)
    got, ref = fast_t_cdf(z, df, rows), special.stdtr(df, z)
    big = ref > 1e-4
    assert np.max(np.abs(got - ref)[big] / ref[big]) < 2e-6


def test_cached_family_matches_exact_student_t_family():
    rng = np.random.default_rng(4)
    s = 500
    loc, scale = rng.normal(0, 1e-3, s), rng.uniform(0.008, 0.02, s)
    df, w = rng.uniform(2.5, 30, s), rng.dirichlet(np.ones(s))
    fam = TQuantileCache(df).family(loc, scale, w)
    got = risk_measures(fam, (0.99, 0.975, 0.9))
    ref = risk_measures(StudentTFamily(loc, scale, df, w), (0.99, 0.975, 0.9))
    for a, b in zip(got, ref, strict=True):
        assert a.var == pytest.approx(b.var, rel=1e-7)
        assert a.es == pytest.approx(b.es, rel=1e-7)
        assert a.var_interval == pytest.approx(b.var_interval, rel=1e-9)
        assert a.es_interval == pytest.approx(b.es_interval, rel=1e-9)
    assert fam.mixture_var(0.99) == pytest.approx(ref[0].var, rel=1e-7)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    size=st.integers(1, 300),
    alpha=st.floats(0.6, 0.999),
    df_lo=st.floats(2.05, 50.0),
)
def test_cached_family_equals_exact_family_property(seed, size, alpha, df_lo):
    rng = np.random.default_rng(seed)
    loc, scale = rng.normal(0, 2e-3, size), rng.uniform(0.005, 0.03, size)
    df, w = df_lo + rng.exponential(5.0, size), rng.dirichlet(np.ones(size))
    got = risk_measures(TQuantileCache(df).family(loc, scale, w), (alpha,))[0]
    ref = risk_measures(StudentTFamily(loc, scale, df, w), (alpha,))[0]
    # the tabulated CDF is good to ~1e-6 relative; ES = VaR + excess / (1 - alpha) keeps it
    assert got.var == pytest.approx(ref.var, rel=1e-6, abs=1e-9)
    assert got.es == pytest.approx(ref.es, rel=1e-6, abs=1e-9)
    assert got.es >= got.var


def test_systematic_resample_counts_are_floor_or_ceil():
    w = np.random.default_rng(3).dirichlet(np.ones(50))
    idx = smc.systematic_resample(w, 1000, 0.37)
    counts = np.bincount(idx, minlength=50)
    assert np.all(np.abs(counts - 1000 * w) < 1.0 + 1e-9)


def test_update_returns_log_predictive_density_of_the_particle_mixture(small, series):
    agent = GarchT.from_state(small.state())
    for r in series[1200:1210]:
        loc, scale, df, w = agent.next_moments()
        expect = special.logsumexp(stats.t.logpdf(r, df, loc, scale), b=w)
        assert agent.update(r) == pytest.approx(expect, rel=1e-9, abs=1e-9)


def test_next_moments_and_residuals(small):
    loc, scale, df, w = small.next_moments()
    assert loc.shape == scale.shape == df.shape == w.shape == (150,)
    assert w.sum() == pytest.approx(1.0) and np.all(scale > 0) and np.all(df > 2)
    z = small.standardized_residuals()
    hist = small.history
    assert z.shape == hist.shape == (1200,)
    draws = small.posterior_draws()
    mu, omega, alpha, beta = (float(np.average(v, weights=None)) for v in
                              (draws["mu"], draws["omega"], draws["alpha"], draws["beta"]))
    # the posterior mean is of the weighted particles; after fit the weights are equal
    h = lik.variance_path(hist, mu, omega, alpha, beta)[:-1]
    np.testing.assert_allclose(z, (hist - mu) / np.sqrt(h), rtol=1e-6)
    assert 0.8 < z.std() < 1.2


def test_forecasts_are_finite_and_ordered(small):
    f = small.forecast((0.95, 0.975, 0.99))
    vars_ = [lv.var for lv in f.levels]
    assert all(math.isfinite(v) and v > 0 for v in vars_)
    assert vars_ == sorted(vars_)
    for lv in f.levels:
        assert lv.es >= lv.var
        assert lv.var_interval[0] <= lv.var <= lv.var_interval[1] * 1.001
    f5 = small.forecast((0.99,), horizon=5, seed=3)
    assert f5.horizon == 5 and f5.levels[0].es >= f5.levels[0].var
    assert f5.levels[0].var > f.at(0.99).var  # five days of risk exceed one
    assert small.forecast((0.99,), horizon=5, seed=3) == f5


def test_horizon_one_matches_reference_family(small):
    loc, scale, df, w = small.next_moments()
    ref = risk_measures(StudentTFamily(loc, scale, df, w), (0.99,))[0]
    got = small.forecast((0.99,)).levels[0]
    assert got.var == pytest.approx(ref.var, rel=1e-7)
    assert got.es == pytest.approx(ref.es, rel=1e-7)


def test_state_round_trips_through_rejuvenation(small):
    a = GarchT.from_state(small.state())
    b = GarchT.from_state(a.state())
    assert a.forecast((0.99,)) == b.forecast((0.99,))
    original = set(small.posterior_draws()["nu"])
    shock = [0.0, 0.15, -0.12, 0.1]  # crash days force a resample-move step
    for r in shock:
        assert a.update(r) == b.update(r)
    assert not set(a.posterior_draws()["nu"]) <= original  # particles were moved
    assert a.forecast((0.99, 0.975)) == b.forecast((0.99, 0.975))
    for k, v in a.posterior_draws().items():
        np.testing.assert_array_equal(v, b.posterior_draws()[k])
    assert a.diagnostics == b.diagnostics
    assert a.state() == b.state()


def test_rejected_updates_leave_the_agent_unchanged(small):
    agent = GarchT.from_state(small.state())
    before = agent.state()
    for bad in (float("nan"), float("inf"), "x", 5.0):
        with pytest.raises(InvalidReturns):
            agent.update(bad)
        assert agent.state() == before


def test_invalid_inputs_raise_named_errors(series):
    agent = GarchT(particles=100, runs=2)
    with pytest.raises(NotFitted):
        agent.update(0.01)
    with pytest.raises(NotFitted):
        agent.forecast()
    with pytest.raises(NotFitted):
        agent.next_moments()
    bad = series[:300].copy()
    bad[17] = np.nan
    with pytest.raises(InvalidReturns, match="row 17"):
        agent.fit(bad)
    bad[17] = np.inf
    with pytest.raises(InvalidReturns):
        agent.fit(bad)
    with pytest.raises(InvalidReturns, match="at least 100"):
        agent.fit(series[:50])
    for kwargs in ({"particles": 10}, {"particles": 1.5}, {"runs": 1}, {"runs": True},
                   {"ess_threshold": 0.0}, {"ess_threshold": 1.0}, {"ess_threshold": "x"}):
        with pytest.raises(InvalidParameter):
            GarchT(**kwargs)
    with pytest.raises(InvalidParameter):
        GarchT().simulate({**TRUE, "alpha": 0.5, "beta": 0.6}, 10)


def test_bad_forecast_arguments_and_state(small):
    for alphas in ((), (1.0,), (0.3,), ("a",)):
        with pytest.raises(InvalidParameter):
            small.forecast(alphas)
    for horizon in (0, -1, 1.5, True):
        with pytest.raises(InvalidParameter):
            small.forecast((0.99,), horizon=horizon)
    with pytest.raises(InvalidState):
        GarchT.from_state(b"not a state")
    from swarmvar.models.nig import NormalInverseGamma

    nig = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 200))
    with pytest.raises(InvalidState):
        GarchT.from_state(nig.state())


def test_diagnostics_are_smc_with_rhat_per_parameter(small):
    d = small.diagnostics
    assert d.method == "smc"
    assert set(d.rhat) == set(lik.PARAMS) == set(d.ess_bulk)
    assert d.draws == 300 and 0 < d.acceptance < 1
    assert d.ess == pytest.approx(150.0)


def test_simulate_matches_stationary_variance():
    x = GarchT().simulate(TRUE, 100_000, seed=7)
    var = TRUE["omega"] / (1 - TRUE["alpha"] - TRUE["beta"])
    assert x.var() == pytest.approx(var, rel=0.1)
    assert x.mean() == pytest.approx(TRUE["mu"], abs=4 * math.sqrt(var / x.size) * 2)
