"""HarArch: likelihood, skewed t, one-step measures, IBIS, state, bad input, recovery (slow)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, NotFitted, SwarmVarError
from swarmvar.models import _har_arch_lik as lik
from swarmvar.models import _har_arch_smc as smc
from swarmvar.models.har_arch import HarArch, simulate_paths

FIXTURE = HealthCheck.function_scoped_fixture
TRUE = {"mu": 3e-4, "omega": 4e-6, "b1": 0.03, "b5": 0.10, "b22": 0.30, "g1": 0.05,
        "g5": 0.25, "g22": 0.40, "nu": 7.0, "lam": -0.15}


def _th(**over: float) -> lik.Theta:
    return lik.theta(**{**TRUE, **over})


# --- independent references (scipy, explicit loops) ---------------------------------


def _ref_skew_pdf(z: float, nu: float, lam: float) -> float:
    """Hansen's density through scipy's t: f(z) = b k t_nu(k q), k = sqrt(nu/(nu-2))."""
    c = math.gamma((nu + 1) / 2) / (math.sqrt(math.pi * (nu - 2)) * math.gamma(nu / 2))
    a = 4 * lam * c * (nu - 2) / (nu - 1)
    b = math.sqrt(1 + 3 * lam * lam - a * a)
    q = (b * z + a) / ((1 - lam) if z < -a / b else (1 + lam))
    k = math.sqrt(nu / (nu - 2))
    return b * k * float(stats.t.pdf(k * q, nu))


def _ref_loglik(r: np.ndarray, p: dict[str, float]) -> tuple[float, float]:
    """Day-by-day loops: the HAR variance from its definition, the density from scipy."""
    e = r - p["mu"]
    total, h = 0.0, 0.0
    for t in range(lik.LAGS, r.size + 1):
        past = e[t - 22 : t]
        neg = np.where(past < 0, past**2, 0.0)
        h = (p["omega"] + p["b1"] * past[-1] ** 2 + p["b5"] * np.mean(past[-5:] ** 2)
             + p["b22"] * np.mean(past**2) + p["g1"] * neg[-1] + p["g5"] * np.mean(neg[-5:])
             + p["g22"] * np.mean(neg))
        if t < r.size:
            z = e[t] / math.sqrt(h)
            total += math.log(_ref_skew_pdf(z, p["nu"], p["lam"])) - 0.5 * math.log(h)
    return total, h


def test_loglik_matches_a_loop_with_scipy_densities() -> None:
    rng = np.random.default_rng(0)
    r = rng.standard_t(5, 300) * 0.01
    params = [TRUE, {**TRUE, "lam": 0.3, "nu": 3.5, "g22": 0.0}, {**TRUE, "mu": -0.002}]
    th = lik.Theta(*(np.array([p[k] for p in params]) for k in lik.PARAMS))
    ll, h_next = lik.loglik(r, th)
    for i, p in enumerate(params):
        ref_ll, ref_h = _ref_loglik(r, p)
        assert ll[i] == pytest.approx(ref_ll, rel=1e-10)
        assert h_next[i] == pytest.approx(ref_h, rel=1e-12)


def test_loglik_is_minus_infinity_outside_the_support() -> None:
    r = np.random.default_rng(1).normal(0, 0.01, 100)
    for bad in ({"b22": 0.9}, {"nu": 1.5}, {"lam": 1.2}, {"g5": -0.1}):
        ll, _ = lik.loglik(r, _th(**bad))
        assert ll[0] == -math.inf


@pytest.mark.parametrize(("nu", "lam"), [(5.0, -0.3), (30.0, 0.2), (2.5, 0.0)])
def test_skew_t_is_a_unit_variance_density_and_its_tail_pieces_are_exact(nu: float,
                                                                         lam: float) -> None:
    s = lik.skew_t(np.array([nu]), np.array([lam]))

    def f(z: float) -> float:
        return float(np.exp(lik.skew_t_logpdf(np.array([z]), s))[0])

    assert f(0.37) == pytest.approx(_ref_skew_pdf(0.37, nu, lam), rel=1e-12)
    mass = integrate.quad(f, -np.inf, np.inf, limit=200)[0]
    mean = integrate.quad(lambda z: z * f(z), -np.inf, np.inf, limit=200)[0]
    var = integrate.quad(lambda z: z * z * f(z), -np.inf, np.inf, limit=200)[0]
    assert (mass, mean) == (pytest.approx(1, abs=1e-7), pytest.approx(0, abs=1e-6))
    if nu > 3:
        assert var == pytest.approx(1, abs=1e-5)
    for c in (-4.0, -1.0, -0.1, 0.4, 2.5):
        cdf, part = lik.skew_t_cdf_and_partial(np.array([c]), s)
        assert cdf[0] == pytest.approx(integrate.quad(f, -np.inf, c, limit=200)[0], abs=1e-8)
        assert part[0] == pytest.approx(
            integrate.quad(lambda z: z * f(z), -np.inf, c, limit=200)[0], abs=1e-6)
    for p in (0.001, 0.025, 0.4, 0.9):
        q = lik.skew_t_ppf(p, s)[0]
        assert lik.skew_t_cdf_and_partial(np.array([q]), s)[0][0] == pytest.approx(p, rel=1e-9)


def test_prior_density_integrates_the_draws_coordinates() -> None:
    """log_prior(u) is the density of unconstrain(sample_prior): its importance weights are flat."""
    rng = np.random.default_rng(2)
    u = lik.unconstrain(lik.sample_prior(4000, rng))
    back = lik.unconstrain(lik.constrain(u))
    assert np.allclose(back, u, atol=1e-8)
    # a Gaussian fitted to the draws as a proposal: E_q[p/q] = 1 if p integrates to one
    mean, cov = u.mean(axis=0), np.cov(u, rowvar=False) * 1.5
    z = rng.multivariate_normal(mean, cov, 200_000)
    log_q = stats.multivariate_normal(mean, cov).logpdf(z)
    ratio = np.exp(lik.log_prior(z) - log_q)
    assert ratio.mean() == pytest.approx(1.0, abs=0.05)


# --- the agent at fixed parameters ------------------------------------------------


def _fixed(params: dict[str, float], r: np.ndarray, particles: int = 100) -> HarArch:
    """An agent whose posterior is one point (every particle the same)."""
    agent = HarArch(particles=particles, runs=2)
    u = np.repeat(lik.unconstrain(lik.theta(**params)), particles, axis=0)
    lp, ll, h = smc.evaluate(r, u)
    agent._install(r, smc.Cloud(u, np.vstack([lp, ll, lp, h])), np.zeros(particles),  # noqa: SLF001
                   np.random.default_rng(3))
    agent._fit_diag = {"rhat": {}, "ess_bulk": {}, "ess_tail": {}}  # noqa: SLF001
    agent._acceptance, agent._seconds = 1.0, 0.0  # noqa: SLF001
    agent._fitted = True  # noqa: SLF001
    return agent


def test_one_step_var_es_at_fixed_parameters_match_numerical_integration() -> None:
    r = np.random.default_rng(4).standard_t(6, 200) * 0.01
    agent = _fixed(TRUE, r)
    _, h = _ref_loglik(r, TRUE)  # the variance of the return after r
    mu, nu, lam = TRUE["mu"], TRUE["nu"], TRUE["lam"]
    sd = math.sqrt(h)

    def pdf_loss(x: float) -> float:  # L = -(mu + sd z)
        return _ref_skew_pdf((-x - mu) / sd, nu, lam) / sd

    for m in agent.forecast((0.99, 0.975)).levels:
        tail = 1 - m.alpha
        var = optimize.brentq(lambda v, p=tail: integrate.quad(pdf_loss, v, np.inf)[0] - p,
                              -1.0, 1.0, xtol=1e-14)
        es = integrate.quad(lambda x: x * pdf_loss(x), var, np.inf)[0] / (1 - m.alpha)
        assert m.var == pytest.approx(var, rel=1e-7)
        assert m.es == pytest.approx(es, rel=1e-6)
        assert m.var_interval == pytest.approx((m.var, m.var), rel=1e-9)


def test_update_returns_the_mixture_predictive_density() -> None:
    r = np.random.default_rng(5).normal(0, 0.01, 150)
    agent = _fixed(TRUE, r)
    _, h = _ref_loglik(r, TRUE)
    x = -0.021
    ref = math.log(_ref_skew_pdf((x - TRUE["mu"]) / math.sqrt(h), TRUE["nu"], TRUE["lam"])
                   / math.sqrt(h))
    assert agent.update(x) == pytest.approx(ref, rel=1e-10)
    assert agent.history[-1] == x and agent.history.size == 151


def test_simulated_paths_have_the_models_unconditional_variance_and_skew() -> None:
    p = {**TRUE, "g22": 0.2, "b22": 0.2}
    th1 = lik.theta(**p)
    s = lik.skew_t(th1.nu, th1.lam)

    def f(z: float) -> float:
        return float(np.exp(lik.skew_t_logpdf(np.array([z]), s))[0])

    below = integrate.quad(lambda z: z * z * f(z), -np.inf, -s.a[0] / s.b[0])[0]
    below += integrate.quad(lambda z: z * z * f(z), -s.a[0] / s.b[0], 0.0)[0]  # E[z^2 1(z<0)]
    v = p["omega"] / (1 - p["b1"] - p["b5"] - p["b22"] - below * (p["g1"] + p["g5"] + p["g22"]))
    paths = 20_000
    th = th1.take(np.zeros(paths, dtype=np.intp))
    tail = p["mu"] + math.sqrt(v) * np.where(np.arange(lik.LAGS) % 2 == 0, 1.0, -1.0)
    x = simulate_paths(th, np.broadcast_to(tail, (paths, lik.LAGS)), 120,
                       np.random.default_rng(6))[:, 60:]
    assert np.var(x) == pytest.approx(v, rel=0.05)
    assert np.mean(x) == pytest.approx(p["mu"], abs=3 * math.sqrt(v / x.size) * 3)
    assert stats.skew(x.ravel()) < 0
    agent = HarArch()
    assert np.array_equal(agent.simulate(p, 300, seed=6), agent.simulate(p, 300, seed=6))
    with pytest.raises(InvalidParameter, match="b1 \\+ b5"):
        agent.simulate({**TRUE, "b22": 0.9}, 10)
    with pytest.raises(InvalidParameter, match="needs numbers"):
        agent.simulate({"mu": 0.0}, 10)


# --- fitted agent: round trip, online, horizons -------------------------------------


@pytest.fixture(scope="module")
def fitted() -> HarArch:
    r = HarArch().simulate(TRUE, 400, seed=7)
    return HarArch(particles=500, runs=2).fit(r, seed=8)


def test_fit_reports_diagnostics_and_a_spread_posterior(fitted: HarArch) -> None:
    d = fitted.diagnostics
    assert d.method == "smc" and d.draws == 1000 and d.max_rhat is not None
    draws = fitted.posterior_draws()
    assert set(draws) == set(lik.PARAMS) and all(v.shape == (500,) for v in draws.values())
    assert np.std(draws["g22"]) > 0 and np.all(draws["nu"] > 2)


def test_state_round_trip_is_exact_and_continues_identically(fitted: HarArch) -> None:
    raw = fitted.state()
    twin = HarArch.from_state(raw)
    assert twin.state() == raw
    a, b = HarArch.from_state(raw), HarArch.from_state(raw)
    xs = HarArch().simulate(TRUE, 40, seed=9)  # enough to trigger a resample-move
    assert [a.update(x) for x in xs] == [b.update(x) for x in xs]
    assert a.state() == b.state()
    assert a.forecast((0.99,), 5, seed=1) == b.forecast((0.99,), 5, seed=1)


def test_forecast_levels_intervals_and_horizons(fitted: HarArch) -> None:
    one = fitted.forecast((0.99, 0.975))
    m99, m975 = one.levels
    assert m99.var > m975.var > 0 and m99.es > m99.var
    for m in one.levels:
        assert m.var_interval[0] <= m.var <= m.var_interval[1]
        assert m.es_interval[0] <= m.es <= m.es_interval[1]
    ten = fitted.forecast((0.99,), 10, seed=3)
    assert ten.horizon == 10 and ten.levels[0].var > m99.var
    assert ten == fitted.forecast((0.99,), 10, seed=3)


def test_warm_refit_targets_the_window(fitted: HarArch) -> None:
    agent = HarArch.from_state(fitted.state())
    more = HarArch().simulate(TRUE, 60, seed=10)
    for x in more:
        agent.update(x)
    window = agent.history[60:]
    agent.refit(window, seed=11)
    assert np.array_equal(agent.history, window)
    lp, ll, _ = smc.evaluate(window, agent._cloud.u)  # noqa: SLF001
    assert np.allclose(agent._cloud.aux[smc.LL], ll)  # noqa: SLF001


# --- bad input -------------------------------------------------------------------------


def test_unfitted_agent_refuses_to_forecast() -> None:
    with pytest.raises(NotFitted):
        HarArch().forecast()
    with pytest.raises(NotFitted):
        HarArch().update(0.01)


@pytest.mark.parametrize("kwargs", [{"particles": 10}, {"particles": 150_000, "runs": 4},
                                    {"runs": 1}, {"ess_threshold": 1.0}, {"moves": 0},
                                    {"particles": "200"}, {"ess_threshold": float("nan")}])
def test_bad_parameters_are_invalid_parameter(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        HarArch(**kwargs)


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE])
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3),
                 st.none(), st.just([0.01]), st.floats(-1.5, 1.5)))
def test_update_of_anything_refuses_or_absorbs(fitted: HarArch, r: Any) -> None:
    agent = HarArch.from_state(fitted.state())
    before = agent.state()
    try:
        agent.update(r)
    except SwarmVarError:
        assert agent.state() == before  # nothing half-absorbed
    else:
        assert agent.history.size == fitted.history.size + 1


@settings(max_examples=30, deadline=None)
@given(st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=120),
    st.lists(st.just(0.0), min_size=100, max_size=130),
    st.just(np.zeros((120, 2))), st.text(max_size=5), st.none()))
def test_fit_of_bad_returns_is_invalid_returns(returns: Any) -> None:
    with pytest.raises(InvalidReturns):
        HarArch(particles=100, runs=2).fit(returns, seed=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[FIXTURE])
@given(st.data())
def test_damaged_state_is_invalid_state_or_intact(fitted: HarArch, data: st.DataObject) -> None:
    raw = bytearray(fitted.state())
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if how == "truncate":
        damaged = bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        damaged = bytes(raw)
    else:
        damaged = data.draw(st.binary(max_size=300))
    try:
        agent = HarArch.from_state(damaged)
    except InvalidState:
        return
    agent.forecast((0.99,))  # a state that loads is a working agent


def test_state_of_another_shape_is_refused(fitted: HarArch) -> None:
    raw = fitted.state()
    with pytest.raises(InvalidState):
        HarArch.from_state(raw.replace(b'"particles": 500', b'"particles": 300'))


# --- recovery of simulated truth (slow) -------------------------------------------------


@pytest.mark.slow
def test_posterior_recovers_simulated_parameters_and_var() -> None:
    agent = HarArch()
    r = agent.simulate(TRUE, 3000, seed=12)
    agent.fit(r, seed=13)
    draws = agent.posterior_draws()
    for k in ("nu", "lam", "mu"):
        lo, hi = np.quantile(draws[k], [0.005, 0.995])
        assert lo <= TRUE[k] <= hi, k
    persistence = lik.constrain(lik.unconstrain(lik.Theta(*(
        draws[k] for k in lik.PARAMS)))).persistence
    lo, hi = np.quantile(persistence, [0.005, 0.995])
    assert lo <= lik.theta(**TRUE).persistence[0] <= hi
    # the forecast's 99% VaR interval covers the true conditional VaR
    h = lik.next_variance(r[-lik.LAGS:], lik.theta(**TRUE))[0]
    s = lik.skew_t(np.array([TRUE["nu"]]), np.array([TRUE["lam"]]))
    true_var = -TRUE["mu"] - math.sqrt(h) * lik.skew_t_ppf(0.01, s)[0]
    m = agent.forecast((0.99,)).levels[0]
    assert m.var_interval[0] * 0.97 <= true_var <= m.var_interval[1] * 1.03


def test_refit_on_an_unlike_window_bridges_to_its_posterior(
        fitted: HarArch, monkeypatch: pytest.MonkeyPatch) -> None:
    """A window whose scale differs 3x: the one-step reweighting collapses, the bridge moves."""
    agent = HarArch.from_state(fitted.state())
    window = 3.0 * HarArch().simulate(TRUE, 400, seed=14)
    _, ll, _ = smc.evaluate(window, agent._cloud.u)  # noqa: SLF001
    assert smc._sir.ess(ll - agent._cloud.aux[smc.LL]) < 0.05 * 500  # noqa: SLF001

    def no_fresh_fit(*args: Any, **kwargs: Any) -> HarArch:
        raise AssertionError("the refit fell back to a fresh fit")

    monkeypatch.setattr(HarArch, "fit", no_fresh_fit)
    agent.refit(window, seed=15)
    monkeypatch.undo()
    assert np.array_equal(agent.history, window)
    lp, ll, h = smc.evaluate(window, agent._cloud.u)  # noqa: SLF001
    aux = agent._cloud.aux  # noqa: SLF001
    assert np.allclose(aux[smc.LL], ll) and np.allclose(aux[smc.H], h)
    fresh = HarArch(particles=500, runs=2).fit(window, seed=16)
    for k in ("omega", "nu"):
        a, b = agent.posterior_draws()[k], fresh.posterior_draws()[k]
        assert abs(np.median(a) - np.median(b)) < 0.5 * (np.std(a) + np.std(b)), k
