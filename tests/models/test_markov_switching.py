"""MarkovSwitching: the Hamilton filter against references, the mixture risk measures against
exact roots and Monte Carlo, the agent's online contract and its refusals."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from swarmvar.emergence.simulate import regime_filter
from swarmvar.errors import (
    ConvergenceWarning,
    InvalidParameter,
    InvalidReturns,
    InvalidState,
    NotFitted,
)
from swarmvar.models import _markov_switching_garch_lik as glik
from swarmvar.models import _markov_switching_lik as lik
from swarmvar.models import agent_class
from swarmvar.models._garch_family import TQuantileCache
from swarmvar.models._markov_switching_family import SwitchingTFamily
from swarmvar.models.base import forecast_day_by_day
from swarmvar.models.markov_switching import MarkovSwitching, MarkovSwitchingGarch
from swarmvar.models.registry import canonical_name

P = {"mu": 0.0003, "sigma1": 0.008, "sigma2": 0.02, "p11": 0.95, "p22": 0.9, "nu": 6.0}


def _brute_force_loglik(r: np.ndarray, p: dict[str, float]) -> float:
    """log p(r) as the sum over every state path (2^T of them) of prior x likelihood."""
    th = lik.theta(**p)
    f = math.sqrt((p["nu"] - 2) / p["nu"])
    scale = (p["sigma1"] * f, p["sigma2"] * f)
    trans = np.array([[p["p11"], 1 - p["p11"]], [1 - p["p22"], p["p22"]]])
    first = (float(th.ergodic[0]), 1 - float(th.ergodic[0]))
    dens = np.array([stats.t.pdf(r - p["mu"], p["nu"], scale=s) for s in scale])  # (2, T)
    total = 0.0
    for path in itertools.product((0, 1), repeat=r.size):
        prob = first[path[0]] * np.prod([trans[a, b] for a, b in itertools.pairwise(path)])
        total += prob * np.prod(dens[list(path), np.arange(r.size)])
    return math.log(total)


def test_filter_equals_the_sum_over_all_state_paths():
    r = lik.simulate(P, 10, np.random.default_rng(0))[0]
    exact = _brute_force_loglik(r, P)
    ll, _ = lik.loglik(r, lik.theta(**P))
    assert ll[0] == pytest.approx(exact, abs=1e-10)
    fast, _ = lik.loglik_fast(r, lik.theta(**P))
    assert fast[0] == pytest.approx(exact, abs=2e-4)  # float32


def test_filter_agrees_with_statsmodels_markov_regression():
    sm = pytest.importorskip("statsmodels.tsa.api")
    p = dict(P, nu=1e8)  # the Gaussian limit, which statsmodels' model is
    r = lik.simulate(dict(P, nu=1e6), 400, np.random.default_rng(1))[0]
    mod = sm.MarkovRegression(r, k_regimes=2, trend="c", switching_trend=False,
                              switching_variance=True)
    ref = mod.loglike(np.array([p["p11"], 1 - p["p22"], p["mu"], p["sigma1"] ** 2,
                                p["sigma2"] ** 2]))
    ll, _ = lik.loglik(r, lik.theta(**p))
    assert ll[0] == pytest.approx(ref, abs=1e-4)
    # the filtered probabilities: statsmodels' predicted P(s_t = 0 | r_<t)
    res = mod.filter(np.array([p["p11"], 1 - p["p22"], p["mu"], p["sigma1"] ** 2,
                               p["sigma2"] ** 2]))
    path = lik.filtered_path(r, p)
    np.testing.assert_allclose(path[:-1], res.predicted_joint_probabilities[0].sum(axis=0)
                               if res.predicted_joint_probabilities.ndim == 3
                               else res.predicted_joint_probabilities[0], atol=1e-6)


def test_filter_matches_the_emergence_truth_filter():
    p = {"mu": 0.0, "sigma1": 0.007, "sigma2": 0.02, "p11": 0.99, "p22": 0.97, "nu": 1e9}
    r = lik.simulate(p, 300, np.random.default_rng(2))[0]
    path = lik.filtered_path(r, p)
    e = float(lik.theta(**p).ergodic[0])
    ref = regime_filter(r, (0.007, 0.02), (0.99, 0.97), initial=(e, 1 - e))
    np.testing.assert_allclose(path[:-1], ref[:, 0], atol=1e-7)


def test_compiled_filter_agrees_with_numpy_over_prior_draws():
    rng = np.random.default_rng(3)
    th = lik.sample_prior(300, rng)
    r = lik.simulate(P, 700, rng)[0]
    a, pa = lik.loglik(r, th)
    b, pb = lik.loglik_fast(r, th)
    ok = np.isfinite(a)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(b[ok], a[ok], rtol=1e-4, atol=0.05)
    np.testing.assert_allclose(pb[ok], pa[ok], atol=1e-4)


def test_priors_are_densities_of_their_samples():
    rng = np.random.default_rng(4)
    th = lik.sample_prior(20000, rng)
    assert np.all(lik.is_valid(th))
    assert np.median(th.sigma2 / th.sigma1) == pytest.approx(
        math.exp(stats.gamma.median(lik.K_SHAPE, scale=1 / lik.K_RATE)), rel=0.05)
    assert th.p11.mean() == pytest.approx(lik.P_A / (lik.P_A + lik.P_B), abs=0.01)
    u = lik.to_unconstrained(th)
    np.testing.assert_allclose(lik.to_unconstrained(lik.from_unconstrained(u)), u, atol=1e-9)
    # the unconstrained prior integrates the 1-d margin of sigma1 correctly
    lp = lik.log_prior_u(u)
    assert np.all(np.isfinite(lp))


def _family(rng: np.random.Generator, s: int = 7) -> tuple[SwitchingTFamily, dict]:
    mu = rng.normal(0, 0.001, s)
    s1 = rng.uniform(0.005, 0.01, s)
    s2 = s1 * rng.uniform(1.2, 4.0, s)
    p1 = rng.uniform(0.05, 0.95, s)
    nu = rng.uniform(2.5, 30, s)
    w = rng.uniform(0.1, 1, s)
    fam = SwitchingTFamily(mu, s1, s2, p1, TQuantileCache(nu), w)
    return fam, {"mu": mu, "s1": s1, "s2": s2, "p1": p1, "nu": nu, "w": w / w.sum()}


def test_per_particle_and_mixture_var_are_the_exact_roots():
    fam, p = _family(np.random.default_rng(5))
    m = fam.level_measures((0.99, 0.975))
    def tail(v, i=None):
        c1 = (-v - p["mu"]) / p["s1"]
        c2 = (-v - p["mu"]) / p["s2"]
        per = p["p1"] * stats.t.cdf(c1, p["nu"]) + (1 - p["p1"]) * stats.t.cdf(c2, p["nu"])
        return per if i is None else per[i]

    for alpha, lm in zip((0.99, 0.975), m, strict=True):
        keep = 1 - alpha
        for i in range(p["mu"].size):
            exact = optimize.brentq(lambda v, i=i, k=keep: tail(v, i) - k, -1, 1, xtol=1e-14)
            assert lm.cond_var[i] == pytest.approx(exact, rel=2e-6)
        point = optimize.brentq(lambda v, k=keep: p["w"] @ tail(v) - k, -1, 1, xtol=1e-14)
        assert lm.var == pytest.approx(point, rel=2e-6)


def test_mixture_var_and_es_against_monte_carlo():
    rng = np.random.default_rng(6)
    fam, p = _family(rng)
    n = 2_000_000
    k = rng.choice(p["mu"].size, n, p=p["w"])
    state2 = rng.random(n) >= p["p1"][k]
    scale = np.where(state2, p["s2"][k], p["s1"][k])
    loss = -(p["mu"][k] + scale * rng.standard_t(p["nu"][k]))
    for alpha, lm in zip((0.99, 0.975), fam.level_measures((0.99, 0.975)), strict=True):
        q = np.quantile(loss, alpha)
        es = loss[loss >= q].mean()
        assert lm.var == pytest.approx(q, rel=0.01)
        assert lm.es == pytest.approx(es, rel=0.02)
        assert lm.es > lm.var


@pytest.fixture(scope="module")
def fitted() -> MarkovSwitching:
    r = lik.simulate({"mu": 0.0, "sigma1": 0.007, "sigma2": 0.02, "p11": 0.99, "p22": 0.97,
                      "nu": 30.0}, 600, np.random.default_rng(7))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MarkovSwitching(particles=400, runs=2).fit(r[:500], seed=1)


def test_registry_and_aliases():
    for alias in ("markov-switching", "ms", "msv", "MarkovSwitching"):
        assert canonical_name(alias) == "MarkovSwitching"
    assert agent_class("ms") is MarkovSwitching


def test_update_is_the_log_predictive_mixture_density(fitted):
    agent = MarkovSwitching.from_state(fitted.state())
    th, w, pred = agent._theta, agent._weights(), agent._aux[0].copy()  # noqa: SLF001
    x = -0.013
    s1, s2 = lik.scales(th)
    dens = pred * stats.t.pdf((x - th.mu) / s1, th.nu) / s1 + (1 - pred) * stats.t.pdf(
        (x - th.mu) / s2, th.nu) / s2
    assert agent.update(x) == pytest.approx(math.log(w @ dens), rel=1e-10)


def test_forecast_block_is_the_day_by_day_loop_bit_for_bit(fitted):
    xs = lik.simulate(P, 30, np.random.default_rng(8))[0]
    a = MarkovSwitching.from_state(fitted.state())
    b = MarkovSwitching.from_state(fitted.state())
    fa, da = a.forecast_block(xs, (0.99, 0.975))
    fb, db = forecast_day_by_day(b, xs, (0.99, 0.975))
    assert fa == fb
    assert np.array_equal(da, db)
    assert a.state() == b.state()


def test_forecast_is_coherent_and_horizons_grow(fitted):
    f1 = fitted.forecast((0.99, 0.975))
    for m in f1.levels:
        assert m.var_interval[0] <= m.var <= m.var_interval[1] or m.var > 0
        assert m.es > m.var > 0
    assert f1.levels[0].var > f1.levels[1].var
    f10 = fitted.forecast((0.99,), 10, seed=1)
    assert f10.horizon == 10 and f10.levels[0].var > 2 * f1.levels[0].var
    assert fitted.forecast((0.99,), 10, seed=1) == f10
    # horizon 1 by simulation agrees with the exact mixture (Monte Carlo error)
    from swarmvar.models.risk import EmpiricalFamily, risk_measures
    rng = np.random.default_rng(2)
    idx = np.repeat(np.arange(fitted.particles), 1)
    th = fitted._theta.take(idx)  # noqa: SLF001
    paths = lik.simulate_paths(th, fitted._aux[0], 1, 2000, rng)  # noqa: SLF001
    w = fitted._weights()  # noqa: SLF001
    mc = risk_measures(EmpiricalFamily(paths, weights=w), (0.99,))[0]
    assert mc.var == pytest.approx(f1.levels[0].var, rel=0.03)


def test_state_round_trip_and_damage(fitted):
    data = fitted.state()
    back = MarkovSwitching.from_state(data)
    assert back.state() == data
    assert back.forecast((0.99,)) == fitted.forecast((0.99,))
    assert back.posterior_draws().keys() == set(lik.PARAMS)
    with pytest.raises(InvalidState):
        MarkovSwitching.from_state(data[: len(data) // 2])
    with pytest.raises(InvalidState):
        agent_class("GarchT").from_state(data)


def test_refit_routes_and_target(fitted):
    r = lik.simulate({"mu": 0.0, "sigma1": 0.007, "sigma2": 0.02, "p11": 0.99, "p22": 0.97,
                      "nu": 30.0}, 600, np.random.default_rng(7))[0]
    agent = MarkovSwitching.from_state(fitted.state())
    for x in r[500:520]:
        agent.update(float(x))
    agent.refit(r[20:520], seed=3)
    assert agent.refit_route in ("reweight", "move")
    assert agent.history.size == 500
    # a very different window (ten times the scale): too few particles survive, fit anew
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent.refit(10 * r[:500], seed=4)
    assert agent.refit_route == "prior"
    assert agent.posterior_draws()["sigma1"].mean() > 0.03


def test_bad_input_raises_the_agents_errors(fitted):
    with pytest.raises(NotFitted):
        MarkovSwitching().forecast((0.99,))
    with pytest.raises(NotFitted):
        MarkovSwitching().update(0.01)
    for kwargs in ({"particles": 10}, {"runs": 1}, {"ess_threshold": 1.0},
                   {"particles": 100_000, "runs": 4}, {"particles": 1.5}):
        with pytest.raises(InvalidParameter):
            MarkovSwitching(**kwargs)
    with pytest.raises(InvalidReturns):
        MarkovSwitching().fit(np.r_[np.zeros(50), np.nan, np.ones(100) * 0.01])
    with pytest.raises(InvalidReturns):
        MarkovSwitching().fit(np.ones((200, 2)) * 0.01)
    with pytest.raises(InvalidReturns):
        MarkovSwitching().fit(np.zeros(200))  # no scale to estimate
    before = fitted.state()
    for bad in (np.nan, np.inf, "x", 3.0):
        with pytest.raises(InvalidReturns):
            fitted.update(bad)
    assert fitted.state() == before
    with pytest.raises(InvalidParameter):
        fitted.simulate({"mu": 0, "sigma1": 0.02, "sigma2": 0.01, "p11": 0.9, "p22": 0.9,
                         "nu": 5}, 10)
    with pytest.raises(InvalidParameter):
        fitted.simulate({"mu": 0}, 10)
    with pytest.raises(InvalidParameter):
        fitted.forecast((1.5,))


# --- MarkovSwitchingGarch (Haas, Mittnik & Paolella 2004) -------------------------------

G = {"mu": 0.0003, "omega1": 2e-6, "alpha1": 0.03, "beta1": 0.9, "gamma1": 0.04,
     "omega2": 2e-5, "alpha2": 0.05, "beta2": 0.85, "gamma2": 0.1, "p11": 0.97, "p22": 0.9,
     "nu": 6.0}
GJR = glik.ASYMMETRIC


def test_ms_garch_filter_equals_the_sum_over_all_state_paths():
    """Each state's GARCH variance is a function of past returns only: enumerate the paths."""
    th = GJR.theta(**G)
    r = glik.simulate(th, 10, np.random.default_rng(0))[0]
    v1, v2 = th.unconditional()
    h = np.empty((2, r.size))
    h[:, 0] = v1[0], v2[0]
    for t in range(1, r.size):
        e = r[t - 1] - G["mu"]
        for k in (0, 1):
            a = G[f"alpha{k + 1}"] + (e < 0) * G[f"gamma{k + 1}"]
            h[k, t] = G[f"omega{k + 1}"] + a * e * e + G[f"beta{k + 1}"] * h[k, t - 1]
    f = math.sqrt((G["nu"] - 2) / G["nu"])
    dens = stats.t.pdf(r - G["mu"], G["nu"], scale=np.sqrt(h) * f)  # (2, T)
    trans = np.array([[G["p11"], 1 - G["p11"]], [1 - G["p22"], G["p22"]]])
    first = (float(th.ergodic[0]), 1 - float(th.ergodic[0]))
    total = 0.0
    for path in itertools.product((0, 1), repeat=r.size):
        prob = first[path[0]] * np.prod([trans[a, b] for a, b in itertools.pairwise(path)])
        total += prob * np.prod(dens[list(path), np.arange(r.size)])
    ll, aux = glik.loglik(r, th)
    assert ll[0] == pytest.approx(math.log(total), abs=1e-10)
    fast, aux_fast = glik.filter_fast(r, th)
    assert fast[0] == pytest.approx(math.log(total), abs=2e-4)
    np.testing.assert_allclose(aux_fast, aux, rtol=1e-4)


@pytest.mark.parametrize("model", [glik.SYMMETRIC, glik.ASYMMETRIC])
def test_ms_garch_compiled_filter_and_prior_transforms(model):
    rng = np.random.default_rng(12)
    th = model.sample_prior(300, rng)
    assert np.all(model.is_valid(th))
    assert model.asymmetric or not np.any(th.gamma1)
    u = model.to_unconstrained(th)
    assert u.shape == (300, model.DIM)
    assert np.all(np.isfinite(model.log_prior_u(u)))
    np.testing.assert_allclose(model.to_unconstrained(model.from_unconstrained(u)), u, atol=1e-7)
    r = glik.simulate(GJR.theta(**G), 400, rng)[0]
    a, pa = glik.loglik(r, th)
    b, pb = glik.filter_fast(r, th)
    ok = np.isfinite(a)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(b[ok], a[ok], rtol=1e-4, atol=0.05)
    np.testing.assert_allclose(pb[:, ok], pa[:, ok], rtol=1e-3, atol=1e-6)


@pytest.fixture(scope="module")
def fitted_garch() -> MarkovSwitchingGarch:
    r = glik.simulate(GJR.theta(**G), 500, np.random.default_rng(13))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MarkovSwitchingGarch(particles=300, runs=2).fit(r, seed=1)


def test_ms_garch_block_state_update_and_refusals(fitted_garch):
    xs = glik.simulate(GJR.theta(**G), 25, np.random.default_rng(14))[0]
    a = MarkovSwitchingGarch.from_state(fitted_garch.state())
    b = MarkovSwitchingGarch.from_state(fitted_garch.state())
    fa, da = a.forecast_block(xs, (0.99, 0.975))
    fb, db = forecast_day_by_day(b, xs, (0.99, 0.975))
    assert fa == fb and np.array_equal(da, db) and a.state() == b.state()
    # the returned density is the weighted two-state mixture at each particle's variances
    c = MarkovSwitchingGarch.from_state(fitted_garch.state())
    th, w, aux = c._theta, c._weights(), c._aux.copy()  # noqa: SLF001
    f = np.sqrt((th.nu - 2) / th.nu)
    x = 0.021
    dens = sum(p * stats.t.pdf((x - th.mu) / (np.sqrt(hk) * f), th.nu) / (np.sqrt(hk) * f)
               for p, hk in ((aux[0], aux[1]), (1 - aux[0], aux[2])))
    assert c.update(x) == pytest.approx(math.log(w @ dens), rel=1e-10)
    m = fitted_garch.forecast((0.99, 0.975))
    assert all(lv.es > lv.var > 0 for lv in m.levels)
    assert fitted_garch.forecast((0.99,), 5, seed=2).levels[0].var > m.levels[0].var
    assert agent_class("ms-garch") is MarkovSwitchingGarch
    assert set(fitted_garch.posterior_draws()) == set(GJR.PARAMS)
    assert "gamma1" not in MarkovSwitchingGarch(asymmetric=False).sample_prior(3, seed=1)
    bad = dict(G, omega2=1e-7)  # state 2's unconditional variance below state 1's
    with pytest.raises(InvalidParameter, match="MarkovSwitchingGarch"):
        fitted_garch.simulate(bad, 10)
    with pytest.raises(InvalidState):
        MarkovSwitching.from_state(fitted_garch.state())
