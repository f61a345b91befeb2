"""StudentT: likelihood and prior against scipy, both samplers, SIR updates, forecasts, state.

Unit tests use small SMC fits (the default sampler: 2 runs x 400 particles)
and, for the NUTS option, short runs (2 chains x 200 draws) on at most 512
returns so that one compiled sampler serves them all; the statistical
agreement checks at full size are in test_student_t_slow.py and
test_student_t_smc_slow.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.errors import (
    ConvergenceWarning,
    InvalidParameter,
    InvalidReturns,
    InvalidState,
    NotFitted,
)
from swarmvar.models import _sir, student_t
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.models.risk import StudentTFamily, risk_measures
from swarmvar.models.student_t import StudentT, log_prior, t_loglik

pytestmark = pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")

TRUE = {"mu": 3e-4, "sigma": 0.009, "nu": 4.5}


def _small() -> StudentT:
    return StudentT(particles=400, runs=2)


def _small_nuts() -> StudentT:
    return StudentT(num_chains=2, num_warmup=150, num_samples=200, sampler="nuts")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return StudentT().simulate(TRUE, 500, seed=7)


@pytest.fixture(scope="module")
def fitted(data: np.ndarray) -> StudentT:
    return _small().fit(data[:350], seed=1)


def _copy(agent: StudentT) -> StudentT:
    return StudentT.from_state(agent.state())


def test_loglik_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_t(4, 2500) * 0.01
    mu, sigma, nu = rng.normal(0, 1e-3, 5), rng.uniform(0.005, 0.02, 5), rng.uniform(2.2, 30, 5)
    expect = [stats.t.logpdf(y, n, m, s).sum() for m, s, n in zip(mu, sigma, nu, strict=True)]
    np.testing.assert_allclose(t_loglik(mu, sigma, nu, y), expect, rtol=1e-11)


def test_log_prior_matches_scipy_with_jacobian() -> None:
    rng = np.random.default_rng(1)
    theta = np.column_stack([rng.normal(0, 0.01, 7), rng.normal(-4.5, 1, 7), rng.normal(2, 1, 7)])
    mu, sigma, nu = theta[:, 0], np.exp(theta[:, 1]), 2 + np.exp(theta[:, 2])
    expect = (stats.norm.logpdf(mu, 0, 0.01) + stats.halfnorm.logpdf(sigma, scale=0.05)
              + stats.gamma.logpdf(nu - 2, 2.0, scale=10.0) + np.log(sigma) + np.log(nu - 2))
    np.testing.assert_allclose(log_prior(theta), expect, rtol=1e-11)


def test_systematic_resample_matches_expected_counts() -> None:
    w = np.array([0.1, 0.5, 0.05, 0.35])
    idx = _sir.systematic_resample(w, 0.3, 1000)
    counts = np.bincount(idx, minlength=4)
    assert np.all(np.abs(counts - 1000 * w) < 1.0 + 1e-9)


def test_default_fit_is_smc_with_rhat_and_ess_across_runs(fitted: StudentT) -> None:
    assert StudentT().sampler == "smc" and StudentT().runs == 4
    d = fitted.diagnostics
    assert d.method == "smc+sir" and set(d.rhat) == set(d.ess_bulk) == {"mu", "sigma", "nu"}
    assert d.max_rhat < 1.05 and d.draws == 800 and d.ess == pytest.approx(400)
    assert fitted._theta.shape == (400, 3) and fitted._fit_info["tempering_steps"] >= 1
    draws = fitted.posterior_draws()
    assert np.all(draws["nu"] > 2) and np.all(draws["sigma"] > 0)
    assert 0.006 < np.median(draws["sigma"]) < 0.012


def test_smc_diagnostics_see_each_run_as_a_chain(data: np.ndarray,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen, summarize = [], student_t.summarize

    def spy(samples):  # type: ignore[no-untyped-def]
        seen.append({k: np.shape(v) for k, v in samples.items()})
        return summarize(samples)

    monkeypatch.setattr(student_t, "summarize", spy)
    StudentT(particles=300, runs=3).fit(data[:300], seed=2)
    assert seen == [dict.fromkeys(("mu", "sigma", "nu"), (3, 300))]


def test_fit_gives_nuts_diagnostics_and_sane_posterior() -> None:
    agent = _small_nuts().fit(StudentT().simulate(TRUE, 350, seed=7), seed=1)
    d = agent.diagnostics
    assert d.method == "nuts+sir" and set(d.rhat) == {"mu", "sigma", "nu"} and d.max_rhat < 1.05
    assert d.draws == 400 and d.ess == pytest.approx(400)
    assert 0.006 < np.median(agent.posterior_draws()["sigma"]) < 0.012


def test_short_chains_warn() -> None:
    y = StudentT().simulate(TRUE, 300, seed=3)
    with pytest.warns(ConvergenceWarning, match="ESS"):
        _small_nuts().fit(y, seed=0)


def test_few_smc_particles_warn() -> None:
    y = StudentT().simulate(TRUE, 300, seed=3)
    with pytest.warns(ConvergenceWarning, match="ESS"):
        StudentT(particles=100, runs=2).fit(y, seed=0)


def test_a_process_that_never_runs_nuts_never_imports_jax() -> None:
    code = ("import sys\n"
            "from swarmvar.models.student_t import StudentT\n"
            "a = StudentT(particles=200).fit(StudentT().simulate("
            "{'mu': 0.0, 'sigma': 0.01, 'nu': 5.0}, 300, seed=1), seed=2)\n"
            "a.update(0.05); a.forecast((0.99,)); a.refit(a.history[-250:], seed=3)\n"
            "print('jax' in sys.modules, 'numpyro' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_update_returns_log_mixture_density(fitted: StudentT, data: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in data[350:370]:
        w = _sir.normalized_weights(agent._logw)
        expect = np.log(w @ stats.t.pdf(r, agent._nu, agent._mu, agent._sigma))
        assert agent.update(float(r)) == pytest.approx(expect, rel=1e-10)
    assert agent.history.size == 370


def test_forecast_equals_shared_risk_function(fitted: StudentT, data: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in data[350:380]:  # unequal weights
        agent.update(float(r))
    w = _sir.normalized_weights(agent._logw)
    assert _sir.ess(agent._logw) < 399
    fast = agent.forecast((0.99, 0.975, 0.9))
    slow = risk_measures(StudentTFamily(agent._mu, agent._sigma, agent._nu, w), (0.99, 0.975, 0.9))
    for a, b in zip(fast.levels, slow, strict=True):
        assert a.var == pytest.approx(b.var, rel=1e-8)
        assert a.es == pytest.approx(b.es, rel=1e-8)
        assert a.var_interval == pytest.approx(b.var_interval, rel=1e-12)
        assert a.es_interval == pytest.approx(b.es_interval, rel=1e-12)


def test_rejuvenation_keeps_particles_on_the_posterior(fitted: StudentT) -> None:
    # A shock forces resampling and MH moves; the moved cloud must still match
    # an importance-sampling estimate of the same posterior from the old cloud.
    agent = _copy(fitted)
    shocks = [0.05, -0.06, 0.045, -0.05]
    logw = agent._logw.copy()
    for r in shocks:
        logw = logw + stats.t.logpdf(r, agent._nu, agent._mu, agent._sigma)
    w = _sir.normalized_weights(logw)
    is_mean_nu = w @ agent._nu
    for r in shocks:
        agent.update(r)
    assert agent.diagnostics.acceptance is not None
    assert 0.05 < agent.diagnostics.acceptance < 0.9
    nu = agent.posterior_draws()["nu"]
    assert len(np.unique(nu)) > 0.5 * nu.size  # moves undid the duplicates
    assert nu.mean() == pytest.approx(is_mean_nu, abs=2 * nu.std())


def test_horizon_forecast_against_brute_force_simulation(fitted: StudentT) -> None:
    a = fitted.forecast((0.99,), horizon=5, seed=3)
    assert a == fitted.forecast((0.99,), horizon=5, seed=3)
    assert fitted.forecast((0.99,), horizon=5) == fitted.forecast((0.99,), horizon=5)
    # brute force: the predictive of a 5-day sum from the equal-weight draws
    d = fitted.posterior_draws()
    rng = np.random.default_rng(99)
    k = rng.integers(0, d["nu"].size, 400_000)
    sims = 5 * d["mu"][k] + d["sigma"][k] * rng.standard_t(d["nu"][k][:, None],
                                                              (k.size, 5)).sum(axis=1)
    var = -np.quantile(sims, 0.01)
    assert a.at(0.99).var == pytest.approx(var, rel=0.04)
    es = -sims[sims <= -var].mean()  # the normal-mixture ES against the brute-force one
    assert a.at(0.99).es == pytest.approx(es, rel=0.06)
    lv = a.at(0.99)
    assert lv.var_interval[0] <= lv.var <= lv.var_interval[1] and lv.es > lv.var


def test_state_round_trips_exactly(fitted: StudentT, data: np.ndarray) -> None:
    a, b = _copy(fitted), _copy(fitted)
    assert a.state() == fitted.state()
    # forced rejuvenations use the RNG: it must have round-tripped too
    for r in [0.05, -0.06, 0.045, -0.05, *data[350:360]]:
        assert a.update(float(r)) == b.update(float(r))
    assert a.state() == b.state()
    c = _copy(a)
    assert c.forecast((0.99, 0.95)) == a.forecast((0.99, 0.95))
    assert c.forecast((0.99,), horizon=3) == a.forecast((0.99,), horizon=3)
    assert c.params() == a.params()


def test_refit_warm_start_matches_a_fresh_fit(fitted: StudentT, data: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in data[350:370]:
        agent.update(float(r))
    window = data[20:370]
    agent.refit(window, seed=5)
    assert agent.history.size == 350 and agent.diagnostics.method.startswith("ibis")
    fresh = _small().fit(window, seed=6).posterior_draws()
    warm = agent.posterior_draws()
    for k in ("mu", "sigma", "nu"):
        assert abs(np.mean(warm[k]) - np.mean(fresh[k])) < 2 * np.std(fresh[k])


def test_refit_tempers_to_a_very_different_window(fitted: StudentT) -> None:
    # Twice the volatility and lighter tails: reweighting alone would collapse the
    # particles, so the refit must bridge by tempering and MH moves.
    window = StudentT().simulate({"mu": -1e-3, "sigma": 0.018, "nu": 12.0}, 400, seed=11)
    agent = _copy(fitted)
    ll = t_loglik(agent._mu, agent._sigma, agent._nu, window) - agent._loglik
    assert _sir.ess(agent._logw + ll) < 0.05 * ll.size
    agent.refit(window, seed=8)
    assert agent.diagnostics.acceptance is not None
    fresh = _small().fit(window, seed=9).posterior_draws()
    warm = agent.posterior_draws()
    for k in ("mu", "sigma", "nu"):
        assert abs(np.mean(warm[k]) - np.mean(fresh[k])) < 2 * np.std(fresh[k]), k
        assert np.std(warm[k]) == pytest.approx(np.std(fresh[k]), rel=0.5), k


def test_update_matches_fresh_fit_on_extended_data(fitted: StudentT, data: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in data[350:]:
        agent.update(float(r))
    fresh = _small().fit(data, seed=2).posterior_draws()
    online = agent.posterior_draws()
    for k in ("mu", "sigma", "nu"):
        assert abs(np.mean(online[k]) - np.mean(fresh[k])) < 2 * np.std(fresh[k])


def test_sample_prior_and_simulate() -> None:
    draws = StudentT().sample_prior(200_000, seed=0)
    assert np.std(draws["mu"]) == pytest.approx(0.01, rel=0.01)
    assert np.mean(draws["sigma"]) == pytest.approx(0.05 * np.sqrt(2 / np.pi), rel=0.01)
    assert np.mean(draws["nu"] - 2) == pytest.approx(20, rel=0.01)
    x = StudentT().simulate(TRUE, 200_000, seed=1)
    assert stats.kstest((x - TRUE["mu"]) / TRUE["sigma"], "t", args=(TRUE["nu"],)).pvalue > 1e-3
    with pytest.raises(InvalidParameter):
        StudentT().simulate({"mu": 0, "sigma": 0.01, "nu": 1.5}, 10)
    with pytest.raises(InvalidParameter):
        StudentT().simulate({"mu": 0, "sigma": 0.01}, 10)


def test_invalid_inputs_raise_named_errors(fitted: StudentT) -> None:
    fresh = StudentT()
    for call in (lambda: fresh.update(0.01), lambda: fresh.forecast(),
                 lambda: fresh.posterior_draws(), lambda: fresh.state()):
        with pytest.raises(NotFitted):
            call()
    for bad in ({"num_chains": 0}, {"ess_threshold": 1.0}, {"moves": 2.5},
                {"num_samples": True}, {"runs": 1}, {"runs": 2.0}):
        with pytest.raises(InvalidParameter):
            StudentT(**bad)
    with pytest.raises(InvalidReturns):
        StudentT().fit(np.full(10, 0.01))
    with pytest.raises(InvalidReturns):
        StudentT().fit(np.r_[np.zeros(40), np.nan])
    agent = _copy(fitted)
    before = agent.state()
    for bad_r in (float("nan"), float("inf"), 3.0, "x", None):
        with pytest.raises(InvalidReturns):
            agent.update(bad_r)  # type: ignore[arg-type]
    assert agent.state() == before  # nothing half-updated
    with pytest.raises(InvalidParameter):
        agent.forecast((1.2,))
    with pytest.raises(InvalidParameter):
        agent.forecast((0.99,), horizon=0)
    with pytest.raises(InvalidState):
        StudentT.from_state(b"not a state")
    with pytest.raises(InvalidState):
        # another agent's state (its returns change sign: a ramp of one sign moves like a price)
        StudentT.from_state(NormalInverseGamma().fit(0.01 * np.sin(np.arange(50))).state())


def test_tampered_state_is_refused(fitted: StudentT) -> None:
    scalars, arrays = fitted._get_state()
    for key, value in (("theta", np.zeros((3, 2))), ("logw", np.zeros(5)),
                       ("history", np.full(350, np.nan))):
        broken = dict(arrays)
        broken[key] = value
        with pytest.raises(InvalidState):
            _small()._set_state(scalars, broken)
    with pytest.raises(InvalidState):
        _small()._set_state({**scalars, "rng": "nope"}, arrays)


@pytest.mark.parametrize("make", [_small, _small_nuts], ids=["smc", "nuts"])
def test_agrees_with_closed_form_in_the_normal_limit(make) -> None:  # type: ignore[no-untyped-def]
    # For huge nu the t likelihood is normal; with the data's scale the posterior
    # of mu is then close to the conjugate normal one (sd ~ sigma / sqrt(n)).
    y = np.random.default_rng(4).normal(0.001, 0.01, 500)
    draws = make().fit(y, seed=4).posterior_draws()
    assert np.mean(draws["mu"]) == pytest.approx(y.mean(), abs=2 * 0.01 / np.sqrt(500))
    assert np.std(draws["mu"]) == pytest.approx(0.01 / np.sqrt(500), rel=0.35)


@pytest.mark.parametrize("make", [_small, _small_nuts], ids=["smc", "nuts"])
def test_agrees_with_scipy_mle_on_sp500_sample(make) -> None:  # type: ignore[no-untyped-def]
    # the full-series check with default settings is in test_student_t_slow.py
    r = load("sp500").to_numpy()[:500]
    draws = make().fit(r, seed=12).posterior_draws()
    df, loc, scale = stats.t.fit(r)
    for k, mle in (("mu", loc), ("sigma", scale), ("nu", df)):
        assert abs(np.mean(draws[k]) - mle) < 2 * np.std(draws[k]), (k, mle)
