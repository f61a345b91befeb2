"""BetaSkewTEgarch (Harvey's Beta-t-EGARCH with leverage) against references.

Likelihood against an independent scipy implementation, one-step VaR/ES
against the t's closed forms, the online update against the likelihood of
the longer history, exact state round trips, and the fuzz contract every
agent meets (tests/fuzz/test_fuzz_models.py's strategies, reused).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning, InvalidParameter, InvalidState, SwarmVarError
from swarmvar.models import _score_driven_lik as lik
from swarmvar.models.base import MAX_HORIZON, forecast_day_by_day
from swarmvar.models.risk import risk_measures
from swarmvar.models.score_driven import BetaSkewTEgarch


def _fuzz_helpers() -> Any:
    """The agents' fuzz module (strategies and state editors), loaded by path."""
    path = Path(__file__).parents[1] / "fuzz" / "test_fuzz_models.py"
    spec = importlib.util.spec_from_file_location("_fuzz_models_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FZ = _fuzz_helpers()
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
SMALL = {"particles": 100, "runs": 2}
TRUTH = {"mu": 0.0004, "omega": math.log(0.008), "phi": 0.97, "kappa": 0.05,
         "kappa_star": 0.03, "nu": 6.0, "gamma": 0.9}


def _reference_loglik(r: np.ndarray, p: dict[str, float]) -> tuple[float, float]:
    """Straightforward: lambda by the recursion as written, densities by scipy's t.

    Fernandez-Steel: ``f(x) = 2 / (g + 1/g) f_t(eps g^(-sgn eps)) / scale``.
    """
    lam, total, g = p["omega"], 0.0, p["gamma"]
    for x in r:
        eps = (x - p["mu"]) / math.exp(lam)
        w = eps * (g if eps < 0 else 1.0 / g)
        total += (math.log(2.0 / (g + 1.0 / g)) - lam
                  + float(stats.t.logpdf(w, p["nu"])))
        # d/dlam of -lam - (nu+1)/2 log(1 + w^2 / nu), w = eps g^(-sgn) = w(lam) e^(-lam)
        score = -1.0 + (p["nu"] + 1.0) * w**2 / (p["nu"] + w**2)
        lam = (p["omega"] + p["phi"] * (lam - p["omega"]) + p["kappa"] * score
               + p["kappa_star"] * float(np.sign(-eps)) * (score + 1.0))
    return total, lam


def _skew_t_logpdf(x: float, mu: np.ndarray, lam: np.ndarray, nu: np.ndarray,
                   g: np.ndarray) -> np.ndarray:
    eps = (x - mu) / np.exp(lam)
    w = eps * np.where(eps < 0, g, 1.0 / g)
    return np.log(2.0 / (g + 1.0 / g)) - lam + stats.t.logpdf(w, nu)


@functools.cache
def _fitted_state() -> bytes:
    r = load("sp500").to_numpy()[-400:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds: R-hat may doubt
        return BetaSkewTEgarch(**SMALL).fit(r, seed=3).state()


def _agent() -> BetaSkewTEgarch:
    return BetaSkewTEgarch.from_state(_fitted_state())


# --- the likelihood -------------------------------------------------------------------


def test_loglik_matches_scipy_at_fixed_parameters() -> None:
    r = load("sp500").to_numpy()[-300:]
    rng = np.random.default_rng(0)
    prior = lik.sample_prior(5, rng)
    points = [TRUTH, {**TRUTH, "kappa_star": -0.04, "nu": 3.1, "gamma": 1.3}] + [
        {k: float(getattr(prior, k)[i]) for k in lik.PARAMS} for i in range(5)]
    th = lik.Theta(*(np.array([p[k] for p in points]) for k in lik.PARAMS))
    ll, lam = lik.loglik(r, th)
    for i, p in enumerate(points):
        ref_ll, ref_lam = _reference_loglik(r, p)
        assert ll[i] == pytest.approx(ref_ll, rel=1e-10, abs=1e-8)
        assert lam[i] == pytest.approx(ref_lam, rel=1e-10, abs=1e-10)


def test_score_is_the_derivative_of_the_log_density() -> None:
    """u = d log f / d lambda, checked by central differences of scipy's logpdf."""
    nu, lam, h, g = 5.0, math.log(0.009), 1e-6, 0.8
    for x in (-0.021, 0.013):
        th = lik.Theta(*(np.array([v]) for v in (0.0, lam, 0.0, 1.0, 0.0, nu, g)))
        dens, nxt = lik.loglik(np.array([x]), th)  # phi = 0, omega = lam: nxt = lam + u
        ll_plus, _ = lik.loglik(np.array([x]), th._replace(omega=np.array([lam + h])))
        ll_minus, _ = lik.loglik(np.array([x]), th._replace(omega=np.array([lam - h])))
        numeric = (ll_plus[0] - ll_minus[0]) / (2 * h)  # lambda_1 = omega
        assert float(nxt[0]) - lam == pytest.approx(numeric, rel=1e-6)
        sym = th._replace(gamma=np.array([1.0]))
        t_numeric = (stats.t.logpdf(x, nu, scale=math.exp(lam + h))
                     - stats.t.logpdf(x, nu, scale=math.exp(lam - h))) / (2 * h)
        assert float(lik.loglik(np.array([x]), sym)[1][0]) - lam == pytest.approx(
            t_numeric, rel=1e-6)


def test_prior_density_integrates_the_sampler() -> None:
    """log_prior_u is the log density of sample_prior's draws (a 1-d check per coordinate)."""
    rng = np.random.default_rng(1)
    u = lik.to_unconstrained(lik.sample_prior(200_000, rng))
    base = np.median(u, axis=0)
    for k in range(lik.DIM):
        grid = np.linspace(*np.quantile(u[:, k], [0.1, 0.9]), 5)
        pts = np.tile(base, (grid.size, 1))
        pts[:, k] = grid
        log_joint = lik.log_prior_u(pts)
        # the prior factorizes: differences along one coordinate are that marginal's
        hist, edges = np.histogram(u[:, k], bins=150, density=True)
        centers = 0.5 * (edges[1:] + edges[:-1])
        emp = np.log(np.interp(grid, centers, hist))
        assert np.allclose(log_joint - log_joint[2], emp - emp[2], atol=0.08)


# --- the predictive -----------------------------------------------------------------


def _point_agent(p: dict[str, float], lam: float) -> BetaSkewTEgarch:
    """An agent whose every particle is ``p`` with ``lambda_{n+1} = lam``: one t."""
    u = lik.to_unconstrained(lik.Theta(*(np.array([p[k]]) for k in lik.PARAMS)))

    def arrays(a: dict[str, Any]) -> dict[str, Any]:
        s = a["u"].shape[0]
        return {**a, "u": np.repeat(u, s, axis=0), "lam": np.full(s, lam), "logw": np.zeros(s)}

    return BetaSkewTEgarch.from_state(FZ._rebuilt(_fitted_state(), lambda h: h, arrays))


@pytest.mark.parametrize("nu", [3.5, 6.0, 30.0])
def test_one_step_var_es_are_the_scaled_t_closed_forms(nu: float) -> None:
    p, lam = {**TRUTH, "nu": nu, "gamma": 1.0}, math.log(0.011)
    fc = _point_agent(p, lam).forecast((0.99, 0.975, 0.95))
    s = math.exp(lam)
    for m in fc.levels:
        q = stats.t.ppf(m.alpha, nu)
        var = -p["mu"] + s * q
        es = -p["mu"] + s * stats.t.pdf(q, nu) / (1 - m.alpha) * (nu + q * q) / (nu - 1)
        assert m.var == pytest.approx(var, rel=1e-6)
        assert m.es == pytest.approx(es, rel=1e-6)
        assert m.var_interval == pytest.approx((var, var), rel=1e-6)


@pytest.mark.parametrize(("gamma", "alpha"), [(0.8, 0.99), (0.8, 0.975), (1.25, 0.99),
                                            (0.8, 0.3)])
def test_skew_t_var_es_tail_excess_against_quadrature(gamma: float, alpha: float) -> None:
    nu, loc, scale = 5.0, 0.001, 0.01

    def pdf(x: float) -> float:
        e = (x - loc) / scale
        return float(2 / (gamma + 1 / gamma) * stats.t.pdf(e * gamma ** (-np.sign(e)), nu)
                     / scale)

    fam = lik.FernandezSteelSkewTFamily(*(np.array([v]) for v in (loc, scale, nu, gamma, 1.0)))
    v = float(fam.var(alpha)[0])
    assert integrate.quad(pdf, -np.inf, -v)[0] == pytest.approx(1 - alpha, rel=1e-8)
    es = -integrate.quad(lambda x: x * pdf(x), -np.inf, -v)[0] / (1 - alpha)
    assert v + float(fam.excess(v)[0]) / (1 - alpha) == pytest.approx(es, rel=1e-7)
    for u in (0.03, 0.0, -0.004):
        assert float(fam.tail(u)[0]) == pytest.approx(
            integrate.quad(pdf, -np.inf, -u)[0], rel=1e-7)
        assert float(fam.excess(u)[0]) == pytest.approx(
            integrate.quad(lambda x, u=u: (-x - u) * pdf(x), -np.inf, -u)[0], rel=1e-6,
            abs=1e-12)
    draws = lik.skew_t_draws(nu, gamma, 100_000, np.random.default_rng(0)) * scale + loc
    assert np.mean(draws < -v) == pytest.approx(1 - alpha, abs=4 * math.sqrt(
        alpha * (1 - alpha) / 100_000))


def test_one_step_mixture_var_is_the_mixture_quantile() -> None:
    """Two particles: the point VaR solves sum_s w_s F_s(-VaR) = 1 - alpha."""
    fam = lik.FernandezSteelSkewTFamily(np.array([0.0, 0.001]), np.array([0.01, 0.02]),
                                        np.array([4.0, 9.0]), np.array([0.8, 1.1]),
                                        np.array([0.3, 0.7]))
    m = risk_measures(fam, (0.99,))[0]
    assert float(fam.weights @ fam.tail(m.var)) == pytest.approx(0.01, rel=1e-8)


def test_h_day_paths_match_the_scalar_simulator() -> None:
    """Sums of 5 days by the vectorized paths and by lik.simulate: the same law (KS)."""
    p, lam0 = TRUTH, TRUTH["omega"]
    th = lik.Theta(*(np.array([p[k]]) for k in lik.PARAMS))
    paths = lik.simulate_paths(th, np.array([lam0]), 5, 20_000, np.random.default_rng(0))[0]
    rng = np.random.default_rng(1)
    scalar = np.array([lik.simulate(p, 5, rng).sum() for _ in range(4000)])
    assert stats.ks_2samp(paths, scalar).pvalue > 0.001


def test_long_horizon_is_seeded_and_ordered() -> None:
    agent = _agent()
    a = agent.forecast((0.99, 0.975), 10, seed=5)
    assert a == agent.forecast((0.99, 0.975), 10, seed=5)
    one = agent.forecast((0.99,)).levels[0]
    ten = a.levels[0]
    assert ten.var > 2 * one.var and ten.es >= ten.var
    assert ten.var_interval[0] <= ten.var <= ten.var_interval[1]


# --- online and state ---------------------------------------------------------------


def test_update_is_the_likelihood_of_the_longer_history() -> None:
    """Between moves, each particle's log-likelihood and lambda are the longer history's,
    its weight the prior weight times the new densities, and ``update`` returns the
    posterior mixture's log density of the new return."""
    agent = _agent()
    new = load("sp500").to_numpy()[-410:-400]
    w0 = agent._weights()
    th = agent._theta
    dens = []
    for x in new:
        before = agent._weights()
        d = _skew_t_logpdf(float(x), th.mu, agent._lam, th.nu, th.gamma)
        expected = float(np.log(before @ np.exp(d)))
        assert agent.update(float(x)) == pytest.approx(expected, rel=1e-10)
        dens.append(d)
    assert agent._theta is th  # no move happened (else the check below does not apply)
    ll, lam = lik.loglik(agent.history, th)
    assert np.allclose(agent._ll, ll, rtol=1e-10) and np.allclose(agent._lam, lam, rtol=1e-10)
    w = w0 * np.exp(np.sum(dens, axis=0))
    assert np.allclose(agent._weights(), w / w.sum(), rtol=1e-8)


def test_refit_on_the_same_history_keeps_the_particles() -> None:
    agent = _agent()
    draws = agent.posterior_draws()
    agent.refit(agent.history, seed=0)
    assert all(np.array_equal(draws[k], v) for k, v in agent.posterior_draws().items())


def _crisis() -> np.ndarray:
    """S&P 500, Sep 2008 - Mar 2009: a window the last 400 days' posterior barely covers."""
    return load("sp500").loc["2008-09-15":"2009-03-31"].to_numpy()


def test_refit_to_an_unrelated_window_bridges_to_its_posterior() -> None:
    """Reweighting alone leaves < 5% effective particles: the tempered bridge runs (not a
    fit from the prior), and its particles carry the window's likelihood and scale."""
    agent = _agent()
    r = _crisis()
    ll_hist, _ = lik.loglik(r, agent._theta)
    assert _ess_of(agent._logw + ll_hist - agent._ll) < 0.05 * agent.particles
    agent.refit(r, seed=5)
    assert agent.refit_route == "bridge"
    assert np.array_equal(agent.history, r)
    ll, lam = lik.loglik(r, agent._theta)
    assert np.allclose(agent._ll, ll, rtol=1e-12) and np.allclose(agent._lam, lam, rtol=1e-12)
    assert agent.diagnostics.ess >= agent.ess_threshold * agent.particles * 0.99
    # the crisis scale: omega's posterior moves well above the calm window's
    assert np.mean(agent.posterior_draws()["omega"]) > np.mean(
        _agent().posterior_draws()["omega"]) + 0.3
    again = BetaSkewTEgarch.from_state(agent.state())
    assert again.refit_route == "bridge"


def test_a_stalled_bridge_falls_back_to_a_fit_from_the_prior(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.models import _score_driven_bridge as bridge

    monkeypatch.setattr(bridge, "LEAST_MOVED", 1.01)  # no stage can move enough particles
    agent = _agent()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent.refit(_crisis(), seed=5)
    assert agent.refit_route == "prior"
    assert np.array_equal(agent.history, _crisis())


def _ess_of(logw: np.ndarray) -> float:
    w = np.exp(logw - np.max(logw))
    return float(w.sum() ** 2 / (w @ w))


def test_rejuvenation_keeps_ess_and_history() -> None:
    agent = _agent()
    shock = np.r_[-0.08, np.full(5, 0.03)]  # a crash moves the posterior: ESS drops, moves
    for x in shock:
        agent.update(float(x))
    assert agent.diagnostics.ess >= agent.ess_threshold * agent.particles * 0.99
    assert agent.history.size == 406 and agent.history[-6] == -0.08
    ll, lam = lik.loglik(agent.history, agent._theta)
    assert np.allclose(agent._ll, ll, rtol=1e-10) and np.allclose(agent._lam, lam)


def test_state_round_trips_bit_for_bit_and_continues_alike() -> None:
    agent = _agent()
    for x in (-0.03, 0.01):
        agent.update(x)
    blob = agent.state()
    twin = BetaSkewTEgarch.from_state(blob)
    assert twin.state() == blob
    xs = np.r_[-0.05, 0.02, -0.01, 0.004]
    f1, d1 = forecast_day_by_day(agent, xs, (0.99,), seeds=[1, 2, 3, 4])
    f2, d2 = twin.forecast_block(xs, (0.99,), seeds=[1, 2, 3, 4])
    assert f1 == f2 and np.array_equal(d1, d2) and agent.state() == twin.state()


def test_fit_posterior_and_diagnostics() -> None:
    r = load("sp500").to_numpy()[-600:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent = BetaSkewTEgarch(particles=200, runs=2).fit(r, seed=0)
    d = agent.diagnostics
    assert d.method == "smc" and set(d.rhat) == set(lik.PARAMS) and d.draws == 400
    draws = agent.posterior_draws()
    assert set(draws) == set(lik.PARAMS) and all(v.shape == (200,) for v in draws.values())
    assert 0.8 < np.median(draws["phi"]) < 1.0 and np.median(draws["kappa"]) > 0.01
    assert np.median(draws["kappa_star"]) > 0  # leverage: falls raise the scale
    assert 2 < np.median(draws["nu"]) < 30
    same = BetaSkewTEgarch(particles=200, runs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same.fit(r, seed=0)
    # a seed fixes everything but the timing
    assert all(np.array_equal(v, same.posterior_draws()[k]) for k, v in draws.items())
    assert same.forecast((0.99,)) == agent.forecast((0.99,))


def test_generative_side() -> None:
    agent = BetaSkewTEgarch(**SMALL)
    prior = agent.sample_prior(1000, seed=0)
    assert set(prior) == set(lik.PARAMS) and np.all(np.abs(prior["phi"]) < 1)
    x = agent.simulate(TRUTH, 3000, seed=0)
    assert x.shape == (3000,) and np.all(np.isfinite(x))
    assert 3 < stats.kurtosis(x) + 3 < 40 and stats.skew(x) < 0.5
    with pytest.raises(InvalidParameter, match="phi"):
        agent.simulate({**TRUTH, "phi": 1.2}, 10)
    with pytest.raises(InvalidParameter, match="numbers"):
        agent.simulate({"mu": 0.0}, 10)


# --- bad input (the fuzz contract of tests/fuzz/test_fuzz_models.py) ---------------


@pytest.mark.parametrize("bad", ["0.9", None, [0.5], True, float("nan"), 1j, b"1"])
def test_wrong_types_for_every_parameter_are_invalid_parameter(bad: Any) -> None:
    for param in BetaSkewTEgarch.parameter_names():
        with pytest.raises(InvalidParameter, match=param):
            BetaSkewTEgarch(**{param: bad})
    with pytest.raises(InvalidParameter, match="particles x runs"):
        BetaSkewTEgarch(particles=100_000, runs=8)


@FEW
@given(st.data())
def test_constructor_of_any_parameters(data: st.DataObject) -> None:
    names = BetaSkewTEgarch.parameter_names()
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    kwargs = {k: data.draw(FZ.anything, label=k) for k in chosen}
    try:
        agent = BetaSkewTEgarch(**kwargs)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert BetaSkewTEgarch(**agent.params()).params() == agent.params()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(FZ.returns_like)
def test_fit_of_anything(returns: Any) -> None:
    agent = BetaSkewTEgarch(**SMALL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent.fit(returns, seed=0)
    except SwarmVarError as exc:
        assert str(exc) and not agent.is_fitted
        return
    x = np.asarray(returns, dtype=float)
    assert x.ndim == 1 and x.size >= agent.min_observations and np.all(np.abs(x) <= 1)
    fc = agent.forecast((0.99,))
    assert all(math.isfinite(m.var) and m.es >= m.var - 1e-12 for m in fc.levels)


@FEW
@given(st.one_of(FZ.anything, st.floats(-1.5, 1.5)))
def test_update_of_anything_leaves_a_refusing_agent_as_it_was(r: Any) -> None:
    agent = _agent()
    before = agent.state()
    try:
        logpdf = agent.update(r)
    except SwarmVarError:
        assert agent.state() == before
        return
    assert math.isfinite(logpdf) and abs(float(r)) <= 1


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(FZ.returns_like)
def test_refit_of_anything_leaves_a_refusing_agent_as_it_was(returns: Any) -> None:
    agent = _agent()
    before = agent.state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent.refit(returns, seed=1)
    except SwarmVarError:
        assert agent.state() == before
        return
    assert math.isfinite(agent.forecast((0.99,)).levels[0].var)


@FEW
@given(st.one_of(st.lists(st.floats(-0.05, 0.05), max_size=6),
                 st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6),
                 FZ.anything),
       st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-1, 5), FZ.anything),
                                     max_size=6)),
       st.sampled_from([1, 1, 2, 0, MAX_HORIZON + 1]))
def test_forecast_block_of_anything(returns: Any, seeds: Any, horizon: int) -> None:
    agent = _agent()
    before = agent.state()
    try:
        forecasts, dens = agent.forecast_block(returns, (0.99,), horizon, seeds=seeds)
    except SwarmVarError:
        assert agent.state() == before
        return
    assert len(forecasts) == np.asarray(returns).size == dens.size and np.all(np.isfinite(dens))


@FEW
@given(FZ.alphas_like, FZ.horizon_like, st.one_of(st.none(), FZ.anything))
def test_forecast_of_anything(alphas: Any, horizon: Any, seed: Any) -> None:
    try:
        fc = _agent().forecast(alphas, horizon, seed=seed)
    except SwarmVarError as exc:
        assert str(exc)
        return
    for m in fc.levels:
        assert math.isfinite(m.var) and math.isfinite(m.es) and m.es >= m.var - 1e-12
        assert m.var_interval[0] <= m.var_interval[1]


def test_from_state_of_damaged_bytes() -> None:
    original = _fitted_state()

    @FEW
    @given(FZ.damaged(original))
    def check(data: bytes) -> None:
        try:
            agent = BetaSkewTEgarch.from_state(data)
        except SwarmVarError:
            return
        assert agent.state() == original

    check()


def test_from_state_of_malformed_headers_and_arrays() -> None:
    original = _fitted_state()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["format", "model", "params", "scalars", "header", "param",
                            "scalar", "array"]), FZ.json_value, st.data())
    def check(part: str, value: Any, data: st.DataObject) -> None:
        arrays_edit = None

        def edit(h: dict[str, Any]) -> Any:
            if part == "header":
                return value
            if part in ("param", "scalar"):
                inner = h["params" if part == "param" else "scalars"]
                inner[data.draw(st.sampled_from(sorted(inner) or ["x"]))] = value
                return h
            if part != "array":
                h[part] = value
            return h

        if part == "array":
            def arrays_edit(a: dict[str, Any]) -> dict[str, Any]:
                key = data.draw(st.sampled_from(sorted(a)))
                with np.errstate(all="ignore"):
                    options = [a[key][:-1], np.full(a[key].shape, np.nan),
                               a[key].astype(np.int8), np.zeros((2, 2, 2)), np.array(["x"]),
                               -np.abs(a[key])]
                a[key] = data.draw(st.sampled_from(options))
                return a

        try:
            agent = BetaSkewTEgarch.from_state(FZ._rebuilt(original, edit, arrays_edit))
        except SwarmVarError:
            return
        fc = agent.forecast((0.99,))
        assert all(math.isfinite(m.var) and m.es >= m.var - 1e-12 for m in fc.levels)

    check()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_state_with_unusable_weights_or_particles_is_refused(bad: float) -> None:
    for key in ("logw", "u", "lam"):
        def arrays(a: dict[str, Any], key: str = key) -> dict[str, Any]:
            return {**a, key: np.full(a[key].shape, bad)}

        with pytest.raises(InvalidState):
            BetaSkewTEgarch.from_state(FZ._rebuilt(_fitted_state(), lambda h: h, arrays))


def test_state_header_names_the_model() -> None:
    with np.load(io.BytesIO(_fitted_state()), allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes().decode())
    assert header["model"] == "BetaSkewTEgarch" and header["params"]["particles"] == 100
