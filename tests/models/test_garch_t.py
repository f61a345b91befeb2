"""GarchT building blocks against scipy, brute force and arch; interface behaviour."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

from swarmvar.errors import (
    ConvergenceWarning,
    InvalidParameter,
    InvalidReturns,
    InvalidState,
    NotFitted,
)
from swarmvar.models import _garch_lik as lik
from swarmvar.models import _garch_smc as smc
from swarmvar.models._garch_family import (
    TQuantileCache,
    _tau_rows,
    fast_t_cdf,
    simulate_paths,
)
from swarmvar.models.garch_t import GarchT
from swarmvar.models.risk import StudentTFamily, risk_measures

TRUE = {"mu": 5e-4, "omega": 2e-6, "alpha": 0.08, "beta": 0.9, "nu": 6.0}


def _random_theta(s, seed, asymmetric=False):
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.02, 0.2, s)
    return lik.Theta(
        rng.normal(5e-4, 3e-4, s),
        np.exp(rng.normal(math.log(2e-6), 0.5, s)),
        alpha,
        rng.uniform(0.6, 0.7, s),
        rng.uniform(2.5, 30.0, s),
        rng.uniform(-alpha, 0.2) if asymmetric else np.zeros(s),
    )


def _brute_loglik(r, mu, omega, alpha, beta, nu, gamma=0.0):
    """Explicit loop (GJR-)GARCH recursion with arch's backcast, and scipy's t density."""
    m = min(r.size, 75)
    w = 0.94 ** np.arange(m)
    backcast = (w / w.sum()) @ (r[:m] - mu) ** 2
    h = omega + (alpha + gamma / 2 + beta) * backcast
    total = 0.0
    for x in r:
        sd = math.sqrt(h * (nu - 2) / nu)
        total += stats.t.logpdf(x, nu, loc=mu, scale=sd)
        e = x - mu
        h = omega + (alpha + (gamma if e < 0 else 0.0)) * e * e + beta * h
    return total, h


@pytest.fixture(scope="module")
def series():
    return GarchT().simulate(TRUE, 1500, seed=11)


@pytest.fixture(scope="module")
def small(series):
    with pytest.warns(ConvergenceWarning):  # 2 x 150 particles cannot reach ESS 400
        return GarchT(particles=150, runs=2).fit(series[:1200], seed=5)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_loglik_matches_scipy_brute_force(series, asymmetric):
    r = series[:700]  # spans two chunks of 512
    th = _random_theta(5, 1, asymmetric)
    ll, h = lik.loglik(r, th)
    for i in range(5):
        ref, h_ref = _brute_loglik(r, *(float(p[i]) for p in th))
        # float32 inside the scan: ~1e-7 relative on a sum of ~700 terms
        assert ll[i] == pytest.approx(ref, abs=2e-3)
        assert h[i] == pytest.approx(h_ref, rel=1e-5)
    if asymmetric:  # the gamma term matters: the symmetric likelihood differs
        sym = th._replace(gamma=np.zeros(5))
        assert np.all(np.abs(lik.loglik(r, sym)[0] - ll) > 0.1)


@pytest.mark.parametrize("o", [0, 1])
def test_loglik_matches_arch_near_its_mle(o):
    from arch import arch_model

    from swarmvar.data import load

    r = load("sp500").to_numpy()[-1500:]
    model = arch_model(100 * r, vol="GARCH", p=1, o=o, q=1, dist="t")
    p = model.fit(disp="off").params.copy()
    # arch backcasts from residuals about the sample mean, swarmvar about mu (so that
    # the likelihood is a function of the parameters alone); they agree at mu = mean.
    p["mu"] = 100 * r.mean()
    fixed = model.fix(p.to_numpy())
    gamma = p["gamma[1]"] if o else 0.0
    if o:
        assert gamma > 0.05  # the S&P 500's leverage effect, so the test exercises gamma
    th = lik.theta(p["mu"] / 100, p["omega"] / 1e4, p["alpha[1]"], p["beta[1]"], p["nu"], gamma)
    ll, _ = lik.loglik(r, th)
    # arch works in percent: log f_frac(r) = log f_pct(100 r) + log 100
    assert ll[0] == pytest.approx(fixed.loglikelihood + r.size * math.log(100), abs=5e-3)


@pytest.mark.parametrize("gamma", [0.0, 0.12])
def test_variance_path_matches_loop(series, gamma):
    r = series[:300]
    mu, omega, alpha, beta = 1e-4, 3e-6, 0.02, 0.85
    _, h_last = _brute_loglik(r, mu, omega, alpha, beta, 5.0, gamma)
    path = lik.variance_path(r, mu, omega, alpha, beta, gamma)
    assert path.shape == (301,)
    assert path[-1] == pytest.approx(h_last, rel=1e-12)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_prior_density_matches_scipy_with_numeric_jacobian(asymmetric):
    rng = np.random.default_rng(2)
    th = lik.sample_prior(6, rng, asymmetric)
    u = lik.to_unconstrained(th, asymmetric)
    d = lik.dim(asymmetric)
    assert u.shape == (6, d)
    got = lik.log_prior_u(u)
    for i in range(6):
        base = lik.Theta(*(np.array([p[i]]) for p in th))
        a, g, b = base.alpha[0], base.gamma[0], base.beta[0]
        if asymmetric:
            # Dirichlet(1,1,1,1) on (alpha/2, (alpha+gamma)/2, beta, rest); |d(.)/d(a,g,b)| = 1/4
            simplex = stats.dirichlet.logpdf(
                [a / 2, (a + g) / 2, b, 1 - a - g / 2 - b], np.ones(4)) + math.log(0.25)
        else:
            assert g == 0.0
            simplex = stats.dirichlet.logpdf([a, b, 1 - a - b], np.ones(3))
        dens = (
            stats.norm.logpdf(base.mu[0], 0, lik.MU_SD)
            + stats.lognorm.logpdf(
                base.omega[0], lik.LOG_OMEGA_SD, scale=math.exp(lik.LOG_OMEGA_MEAN)
            )
            + simplex
            + stats.gamma.logpdf(base.nu[0] - 2, lik.NU_SHAPE, scale=1 / lik.NU_RATE)
        )
        jac = np.empty((d, d))
        eps = 1e-6
        for j in range(d):
            du = u[i : i + 1].copy()
            du[0, j] += eps
            up = np.array(lik.from_unconstrained(du))[:d, 0]
            du[0, j] -= 2 * eps
            dn = np.array(lik.from_unconstrained(du))[:d, 0]
            jac[:, j] = (up - dn) / (2 * eps)
        expect = dens + math.log(abs(np.linalg.det(jac)))
        assert got[i] == pytest.approx(expect, abs=1e-5)
    back = lik.from_unconstrained(u)
    for a, b in zip(back, th, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_sample_prior_respects_constraints(asymmetric):
    d = GarchT(asymmetric=asymmetric).sample_prior(5000, seed=1)
    assert set(d) == set(lik.GJR_PARAMS if asymmetric else lik.PARAMS)
    assert np.all(d["omega"] > 0) and np.all(d["nu"] > 2)
    assert stats.kstest(d["nu"] - 2, stats.gamma(2, scale=10).cdf).pvalue > 1e-3
    gamma = d.get("gamma", np.zeros(5000))
    assert np.all(d["alpha"] > 0) and np.all(d["alpha"] + gamma > 0) and np.all(d["beta"] > 0)
    persistence = d["alpha"] + gamma / 2 + d["beta"]
    assert np.all(persistence < 1)
    # uniform on the stationary region: persistence ~ Beta(3, 1) (GJR) or Beta(2, 1) (GARCH)
    shape = 3 if asymmetric else 2
    assert stats.kstest(persistence, stats.beta(shape, 1).cdf).pvalue > 1e-3
    if asymmetric:  # exchangeable in positive and negative shocks: no prior lean to leverage
        share = (d["alpha"] + gamma) / (2 * d["alpha"] + gamma)
        assert stats.kstest(share, "uniform").pvalue > 1e-3
        assert np.mean(gamma > 0) == pytest.approx(0.5, abs=0.03)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=6, max_size=6))
def test_every_unconstrained_point_is_a_positive_stationary_gjr(u):
    th = lik.from_unconstrained(np.array([u]))
    assert lik.is_valid(th)[0] or th.persistence[0] >= 1 - 1e-12  # expit rounds to 1 at 30
    assert th.alpha[0] >= 0 and th.alpha_neg[0] >= 0 and th.beta[0] >= 0


def test_stationarity_and_positivity_are_enforced_in_simulate():
    gjr = GarchT(asymmetric=True)
    # alpha + beta < 1 but alpha + gamma / 2 + beta = 1.05: not stationary
    with pytest.raises(InvalidParameter, match="gamma / 2"):
        gjr.simulate({**TRUE, "alpha": 0.05, "beta": 0.9, "gamma": 0.2}, 10)
    with pytest.raises(InvalidParameter):  # alpha + gamma < 0: negative variances
        gjr.simulate({**TRUE, "alpha": 0.05, "gamma": -0.1}, 10)
    x = gjr.simulate({**TRUE, "alpha": 0.02, "beta": 0.9, "gamma": 0.12}, 100_000, seed=3)
    # stationary variance omega / (1 - alpha - gamma/2 - beta)
    assert x.var() == pytest.approx(TRUE["omega"] / (1 - 0.02 - 0.06 - 0.9), rel=0.1)
    # the symmetric model ignores gamma
    sym = GarchT(asymmetric=False)
    np.testing.assert_array_equal(sym.simulate({**TRUE, "gamma": 0.5}, 50, seed=1),
                                  sym.simulate(TRUE, 50, seed=1))


def test_simulated_paths_apply_the_gjr_recursion():
    th = lik.theta(1e-4, 2e-6, 0.03, 0.9, 5.0, 0.15)
    shocks = iter([np.full((1, 2), -1.5), np.array([[1.0, -1.0]]), np.full((1, 2), 0.5)])
    got = simulate_paths(th, np.array([1e-4]), 3, 2, np.random.default_rng(0),
                         lambda rng, shape: next(shocks))
    h, total = 1e-4, np.zeros(2)
    for z in ([-1.5, -1.5], [1.0, -1.0], [0.5, 0.5]):
        e = np.sqrt(h) * np.array(z)
        total = total + 1e-4 + e
        h = 2e-6 + np.where(e < 0, 0.18, 0.03) * e * e + 0.9 * h
    np.testing.assert_allclose(got[0], total, rtol=1e-13)


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


def test_lazily_widened_rows_give_the_full_table_cdf():
    rng = np.random.default_rng(5)
    df = rng.uniform(2.2, 60, 300)
    cache = TQuantileCache(df)
    for z in (rng.uniform(-3, -2, 300), rng.uniform(-2.2, -1.5, 300), rng.uniform(-90, 90, 300),
              np.full(300, -0.0)):
        rows, first = cache.rows_for(z)
        assert rows.shape[1] < cache.rows.shape[1] or first == 0
        got = fast_t_cdf(z, df, rows, first)
        np.testing.assert_allclose(got, fast_t_cdf(z, df, cache.rows), rtol=1e-13, atol=0)
        assert np.max(np.abs(got - special.stdtr(df, z))) < 1e-7


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
    mu, omega, alpha, beta, gamma = (float(np.average(draws[k])) for k in
                                     ("mu", "omega", "alpha", "beta", "gamma"))
    # the posterior mean is of the weighted particles; after fit the weights are equal
    h = lik.variance_path(hist, mu, omega, alpha, beta, gamma)[:-1]
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
    with pytest.raises(InvalidReturns, match="index 17"):
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
    assert set(d.rhat) == set(lik.GJR_PARAMS) == set(d.ess_bulk)  # GJR by default
    assert d.draws == 300 and 0 < d.acceptance < 1
    assert d.ess == pytest.approx(150.0)


def test_simulate_matches_stationary_variance():
    x = GarchT().simulate(TRUE, 100_000, seed=7)
    var = TRUE["omega"] / (1 - TRUE["alpha"] - TRUE["beta"])
    assert x.var() == pytest.approx(var, rel=0.1)
    assert x.mean() == pytest.approx(TRUE["mu"], abs=4 * math.sqrt(var / x.size) * 2)


def test_posterior_particles_are_the_predictive_particles_and_copies(small):
    agent = GarchT.from_state(small.state())
    agent.update(-0.02)  # unequal weights
    cloud = agent.posterior_particles()
    loc, scale, df, w = agent.next_moments()
    np.testing.assert_array_equal(cloud.weights, w)
    np.testing.assert_array_equal(cloud.theta.mu, loc)
    np.testing.assert_array_equal(cloud.theta.nu, df)
    np.testing.assert_allclose(np.sqrt(cloud.h_next * (df - 2) / df), scale, rtol=1e-14)
    assert np.all(lik.is_valid(cloud.theta))
    cloud.h_next[:] = 1.0
    cloud.theta.gamma[:] = 5.0
    np.testing.assert_array_equal(agent.next_moments()[1], scale)  # the agent is untouched
    assert np.all(agent.posterior_draws()["gamma"] < 1)


@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_gjr_raises_var_more_after_a_loss_than_after_an_equal_gain():
    """The leverage effect in the forecast: a -3% day raises tomorrow's VaR above a +3% day's."""
    sp = GarchT(particles=300, runs=2).fit(_sp500()[-1500:], seed=2)
    assert np.mean(sp.posterior_draws()["gamma"]) > 0.05
    down, up = GarchT.from_state(sp.state()), GarchT.from_state(sp.state())
    down.update(-0.03)
    up.update(0.03)
    assert down.forecast((0.99,)).at(0.99).var > 1.1 * up.forecast((0.99,)).at(0.99).var
    sym = GarchT(particles=300, runs=2, asymmetric=False).fit(_sp500()[-1500:], seed=2)
    down, up = GarchT.from_state(sym.state()), GarchT.from_state(sym.state())
    down.update(-0.03)
    up.update(0.03)
    # symmetric: the same rise either way (up to mu's offset)
    assert down.forecast((0.99,)).at(0.99).var == pytest.approx(
        up.forecast((0.99,)).at(0.99).var, rel=0.05)


def _sp500():
    from swarmvar.data import load

    return load("sp500").to_numpy()


@pytest.mark.parametrize("asymmetric", [False, True])
def test_state_keeps_the_model_and_round_trips(series, asymmetric):
    with pytest.warns(ConvergenceWarning):
        agent = GarchT(particles=100, runs=2, asymmetric=asymmetric).fit(series[:600], seed=1)
    back = GarchT.from_state(agent.state())
    assert back.asymmetric is asymmetric and back.params() == agent.params()
    assert set(back.posterior_draws()) == set(lik.GJR_PARAMS if asymmetric else lik.PARAMS)
    for r in (-0.05, 0.1, -0.12):  # forces a resample-move
        assert back.update(r) == agent.update(r)
    assert back.state() == agent.state()
    assert back.forecast((0.99,), horizon=4, seed=2) == agent.forecast((0.99,), horizon=4, seed=2)
    # a GJR state is not a GARCH one
    scalars, arrays = agent._get_state()
    with pytest.raises(InvalidState):
        GarchT(particles=100, runs=2, asymmetric=not asymmetric)._set_state(scalars, arrays)
    with pytest.raises(InvalidParameter):
        GarchT(asymmetric="yes")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(2, 400), spread=st.floats(0.0, 2.0))
def test_halley_mixture_var_and_es_equal_brent_on_the_same_table(seed, size, spread):
    # the batched Halley solve and its Taylor-carried ES against a plain root and partial
    # moment of the same tabulated mixture, at both levels of the backtest and one more
    rng = np.random.default_rng(seed)
    loc = rng.normal(0, 1e-3, size)
    scale = 0.01 * np.exp(spread * rng.normal(size=size))
    df, w = 2.05 + rng.exponential(6.0, size), rng.dirichlet(np.ones(size))
    fam = TQuantileCache(df).family(loc, scale, w)
    alphas = (0.99, 0.975, 0.9)
    got = fam.level_measures(alphas)
    for a, m in zip(alphas, got, strict=True):
        cond = fam.var(a)
        root = optimize.brentq(lambda v, a=a: float(w @ fam.tail(v)) - (1 - a),
                               cond.min() - 1e-12, cond.max() + 1e-12, xtol=1e-16, rtol=1e-15)
        assert m.var == pytest.approx(root, rel=1e-10)
        assert m.es == pytest.approx(root + float(w @ fam.excess(root)) / (1 - a), rel=1e-10)
        np.testing.assert_array_equal(m.cond_var, cond)
        np.testing.assert_array_equal(m.cond_es, cond + fam.excess(cond) / (1 - a))
        single = fam.level_measures((a,))[0]
        assert (single.var, single.es) == pytest.approx((m.var, m.es), rel=1e-13)


def test_batched_evaluation_is_the_one_pass_evaluation(series):
    u = lik.to_unconstrained(lik.sample_prior(300, np.random.default_rng(8), True), True)
    whole = smc.evaluate(series[:700], u)
    parts = smc.evaluate(series[:700], u, batch=100)
    for a, b in zip((whole.lp, whole.ll, whole.h), (parts.lp, parts.ll, parts.h), strict=True):
        np.testing.assert_array_equal(a, b)
