"""StudentT's fast paths against brute force: mixture VaR/ES, IBIS refits, MH kernels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from swarmvar.models import _sir
from swarmvar.models._sir_tmixture import mixture_level, risk_measure
from swarmvar.models.risk import StudentTFamily, risk_measures
from swarmvar.models.student_t import StudentT, t_loglik

pytestmark = pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")


def _brute(loc, scale, df, w, alpha):  # type: ignore[no-untyped-def]
    """Mixture VaR by Brent on scipy's t survival function, ES by quadrature of the tail."""
    target = 1.0 - alpha

    def tail(v: float) -> float:  # P(L > v) = P(r < -v)
        return float(w @ stats.t.cdf(-v, df, loc, scale)) - target

    var = optimize.brentq(tail, -1.0, 1.0, xtol=1e-16, rtol=1e-15)
    excess, _ = integrate.quad(lambda v: tail(v) + target, var, np.inf, epsabs=1e-15,
                               epsrel=1e-12, limit=200)
    return var, var + excess / target


@pytest.mark.parametrize("alpha", [0.99, 0.975, 0.9])
def test_mixture_var_es_match_brute_force_root_and_quadrature(alpha: float) -> None:
    rng = np.random.default_rng(int(alpha * 1000))
    s = 60
    loc, scale = rng.normal(3e-4, 3e-4, s), rng.normal(0.009, 4e-4, s)
    df = rng.normal(4.5, 0.5, s)
    level = mixture_level(loc, scale, df, alpha)
    for k in range(4):  # weights drifting away from those the nodes were placed for
        w = np.exp(rng.normal(0.0, 0.3 * (k + 1), s))
        w /= w.sum()
        fast = risk_measure(level, w)
        var, es = _brute(loc, scale, df, w, alpha)
        assert fast.var == pytest.approx(var, rel=1e-8)
        assert fast.es == pytest.approx(es, rel=1e-8)


def test_nodes_follow_the_root_when_the_weights_move_far() -> None:
    # two clusters; the weight moves from one to the other, so the VaR leaves the nodes
    loc = np.r_[np.zeros(50), np.full(50, -0.004)]
    scale, df = np.r_[np.full(50, 0.008), np.full(50, 0.012)], np.full(100, 5.0)
    level = mixture_level(loc, scale, df, 0.99)
    first = level.nodes
    w = np.r_[np.full(50, 1e-4), np.ones(50)]
    w /= w.sum()
    fast = risk_measure(level, w)
    assert level.nodes is not first
    (ref,) = risk_measures(StudentTFamily(loc, scale, df, w), (0.99,))
    assert fast.var == pytest.approx(ref.var, rel=1e-8)
    assert fast.es == pytest.approx(ref.es, rel=1e-8)


def test_loglik_blocks_long_and_empty_data() -> None:
    rng = np.random.default_rng(3)
    y = rng.standard_t(4, 70_000) * 0.01  # longer than a block: one particle per block
    mu, sigma, nu = rng.normal(0, 1e-3, 3), rng.uniform(0.005, 0.02, 3), rng.uniform(2.2, 30, 3)
    expect = [stats.t.logpdf(y, n, m, s).sum() for m, s, n in zip(mu, sigma, nu, strict=True)]
    np.testing.assert_allclose(t_loglik(mu, sigma, nu, y), expect, rtol=1e-11)
    assert np.all(t_loglik(mu, sigma, nu, y[:0]) == 0.0)


def test_loglik_grouped_products_and_direct_route_match_scipy() -> None:
    # prior-like particles: scales from far below the returns' size (the direct
    # route, where expanding (y - mu)^2 would cancel) to far above; lengths that
    # are and are not multiples of the group of factors logged together
    rng = np.random.default_rng(4)
    mu, nu = rng.normal(0, 0.01, 9), 2.0 + rng.gamma(2.0, 10.0, 9)
    sigma = np.array([1e-12, 1e-8, 1e-6, 1e-4, 1e-3, 0.007, 0.02, 0.05, 0.3])
    for n in (1, 16, 20, 1001):
        y = rng.standard_t(4, n) * 0.01
        expect = [stats.t.logpdf(y, v, m, s).sum() for m, s, v in zip(mu, sigma, nu, strict=True)]
        np.testing.assert_allclose(t_loglik(mu, sigma, nu, y), expect, rtol=1e-12)


def test_independent_moves_leave_the_target_invariant() -> None:
    # target N(0, I) in 3-d; a deliberately offset, too-narrow proposal: the kernel must
    # still keep exact draws exact (a biased kernel would drag them to the proposal)
    rng = np.random.default_rng(11)
    theta = rng.standard_normal((20_000, 3))

    def log_target(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -0.5 * (th * th).sum(axis=1), np.zeros((1, th.shape[0]))

    current = log_target(theta)
    moved, _, _, rate, frac = _sir.independent_moves(theta, log_target, current, rng, 3,
                                                     np.full(3, 0.3), 0.6 * np.eye(3))
    assert 0.2 < rate < 0.95 and frac > 0.5
    assert np.abs(moved.mean(axis=0)).max() < 0.03
    np.testing.assert_allclose(np.cov(moved.T), np.eye(3), atol=0.05)


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return StudentT().simulate({"mu": 3e-4, "sigma": 0.009, "nu": 4.5}, 500, seed=21)


def test_backtest_rhythm_refits_track_a_cold_nuts_fit(stream: np.ndarray) -> None:
    small = {"num_chains": 2, "num_warmup": 150, "num_samples": 200, "sampler": "nuts"}
    agent = StudentT(particles=400, runs=2).fit(stream[:300], seed=1)
    end = 300
    for cycle in range(5):  # 5 x (20 updates, refit on the trailing 300 days)
        for x in stream[end:end + 20]:
            agent.update(float(x))
        end += 20
        agent.refit(stream[end - 300:end], seed=10 + cycle)
        info = agent._fit_info
        assert info["method"] == "ibis" and info["ess_reweighted"] > 0
        assert agent.history.size == 300
    fresh = StudentT(**small).fit(stream[end - 300:end], seed=2).posterior_draws()
    warm = agent.posterior_draws()
    for k in ("mu", "sigma", "nu"):
        # both are Monte Carlo pictures of one posterior with ESS ~200-400: their means
        # differ by ~0.1 sd; 0.35 sd is 3.5 of those
        sd = np.std(fresh[k])
        assert abs(np.mean(warm[k]) - np.mean(fresh[k])) < 0.35 * sd, k
        assert np.std(warm[k]) == pytest.approx(sd, rel=0.3), k


def test_reweight_only_refit_keeps_the_forecast_cache(stream: np.ndarray) -> None:
    agent = StudentT(particles=400, runs=2).fit(stream[:300], seed=3)
    agent.update(float(stream[300]))
    agent.forecast((0.99,))
    levels = agent._levels
    agent.refit(stream[1:301], seed=4)  # one day dropped: the weights stay healthy
    assert agent._fit_info["tempering_steps"] == 0 and agent._levels is levels
    w = _sir.normalized_weights(agent._logw)
    (ref,) = risk_measures(StudentTFamily(agent._mu, agent._sigma, agent._nu, w), (0.99,))
    fast = agent.forecast((0.99,)).at(0.99)
    assert fast.var == pytest.approx(ref.var, rel=1e-8)
    assert fast.es == pytest.approx(ref.es, rel=1e-8)
    assert fast.var_interval == pytest.approx(ref.var_interval, rel=1e-12)


def test_smc_fit_agrees_with_nuts_and_needs_no_compilation(stream: np.ndarray) -> None:
    y = stream[:400]
    smc = StudentT().fit(y, seed=5)
    d = smc.diagnostics
    assert d.method == "smc+sir" and smc._fit_info["tempering_steps"] >= 1
    assert d.draws == 8000 and d.max_rhat is not None and d.max_rhat <= 1.01
    assert d.min_ess is not None and d.min_ess >= 400
    nuts = StudentT(num_chains=2, num_warmup=150, num_samples=200, sampler="nuts").fit(y, seed=6)
    a, b = smc.posterior_draws(), nuts.posterior_draws()
    for k in ("mu", "sigma", "nu"):
        sd = np.std(b[k])
        assert abs(np.mean(a[k]) - np.mean(b[k])) < 0.35 * sd, k
        assert np.std(a[k]) == pytest.approx(sd, rel=0.3), k
    restored = StudentT.from_state(smc.state())
    assert restored.params()["sampler"] == "smc"
    assert restored.forecast((0.99,)) == smc.forecast((0.99,))


def test_unknown_sampler_is_refused() -> None:
    from swarmvar.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="sampler"):
        StudentT(sampler="hmc")


def test_degenerate_moves_fall_back_to_nuts(stream: np.ndarray,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.models import student_t

    small = {"num_chains": 2, "num_warmup": 150, "num_samples": 200}
    agent = StudentT(particles=400, runs=2, **small).fit(stream[:300], seed=7)
    window = StudentT().simulate({"mu": -1e-3, "sigma": 0.018, "nu": 12.0}, 300, seed=8)
    monkeypatch.setattr(student_t, "_LEAST_MOVED", 1.01)  # no move can ever be enough
    agent.refit(window, seed=9)  # the bridge stalls, the SMC fit too: NUTS
    assert agent.diagnostics.method == "nuts+sir"
    assert np.array_equal(agent.history, window)
    assert StudentT(particles=400, runs=2, **small).fit(window, seed=10).diagnostics.method \
        == "nuts+sir"


def test_runs_share_the_moves_but_not_their_proposals() -> None:
    # two runs in one batch: a proposal fitted to one run's cloud must not serve the other.
    # Run 0 sits near -3, run 1 near +3 (target N(+-3, I) per run); each must stay put.
    rng = np.random.default_rng(13)
    theta = np.vstack([rng.standard_normal((5000, 3)) - 3.0, rng.standard_normal((5000, 3)) + 3.0])
    centre = np.repeat([-3.0, 3.0], 5000)[:, None]

    def log_target(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -0.5 * ((th - centre) ** 2).sum(axis=1), np.zeros((1, th.shape[0]))

    mean = np.array([np.full(3, -3.0), np.full(3, 3.0)])
    cov = np.stack([np.eye(3), np.eye(3)])
    moved, _, _, rate, frac = _sir.independent_moves(theta, log_target, log_target(theta), rng,
                                                     3, mean, cov, runs=2)
    assert rate > 0.5 and frac > 0.9
    np.testing.assert_allclose(moved[:5000].mean(axis=0), -3.0, atol=0.05)
    np.testing.assert_allclose(moved[5000:].mean(axis=0), 3.0, atol=0.05)
    walked, _, _, rw_rate = _sir.random_walk_moves(theta, log_target, log_target(theta), rng, 3,
                                                   0.5 * cov, runs=2)
    assert 0.2 < rw_rate < 0.9
    np.testing.assert_allclose(walked[:5000].mean(axis=0), -3.0, atol=0.06)
    np.testing.assert_allclose(np.cov(walked[5000:].T), np.eye(3), atol=0.08)


def test_forecast_does_not_depend_on_where_the_nodes_were_placed() -> None:
    rng = np.random.default_rng(12)
    s = 500
    loc, scale, df = rng.normal(3e-4, 3e-4, s), rng.normal(0.009, 4e-4, s), rng.normal(4.5, .5, s)
    w = np.exp(rng.normal(0.0, 0.5, s))
    w /= w.sum()
    near = mixture_level(loc, scale, df, 0.99, w)
    far = mixture_level(loc, scale, df, 0.99, start=float(near.cond_var.max()))
    drifted = mixture_level(loc, scale, df, 0.99)
    risk_measure(drifted, np.exp(rng.normal(0.0, 2.0, s)))  # moves its nodes elsewhere
    assert risk_measure(near, w) == risk_measure(far, w) == risk_measure(drifted, w)
