"""GarchT's posterior: parameter recovery, agreement with arch's MLE, IBIS vs refits."""

import math

import numpy as np
import pytest
from scipy import special, stats

from swarmvar.data import load
from swarmvar.models.garch_t import GarchT

TRUE = {"mu": 5e-4, "omega": 2e-6, "alpha": 0.08, "beta": 0.9, "nu": 6.0}
PARAMS = ("mu", "omega", "alpha", "beta", "nu")


def _summary(agent):
    d = agent.posterior_draws()
    return {k: (float(v.mean()), float(v.std())) for k, v in d.items()}


def _assert_close(a, b, k=2.0):
    """Posterior means of ``a`` within ``k`` posterior sds (of ``b``) of ``b``'s."""
    for name in PARAMS:
        (ma, _), (mb, sb) = a[name], b[name]
        assert abs(ma - mb) <= k * sb, f"{name}: {ma:.4g} vs {mb:.4g} (sd {sb:.3g})"


@pytest.fixture(scope="module")
def sp500():
    return load("sp500").to_numpy()


@pytest.mark.parametrize("asymmetric", [True, False])
def test_sp500_posterior_agrees_with_arch_mle_and_converges(sp500, asymmetric):
    from arch import arch_model

    r = sp500[-2500:]
    o = int(asymmetric)
    res = arch_model(100 * r, vol="GARCH", p=1, o=o, q=1, dist="t").fit(disp="off")
    p = res.params
    mle = {"mu": p["mu"] / 100, "omega": p["omega"] / 1e4, "alpha": p["alpha[1]"],
           "beta": p["beta[1]"], "nu": p["nu"]}
    names = PARAMS
    if asymmetric:
        mle["gamma"] = p["gamma[1]"]
        names = (*PARAMS, "gamma")
    agent = GarchT(asymmetric=asymmetric).fit(r, seed=7)  # warnings are errors: no
    d = agent.diagnostics                                  # ConvergenceWarning allowed
    assert d.max_rhat <= 1.01
    assert min(d.ess_bulk.values()) >= 400 and min(d.ess_tail.values()) >= 400
    post = _summary(agent)
    assert set(post) == set(names)
    for name in names:
        mean, sd = post[name]
        why = f"{name}: posterior {mean:.4g}±{sd:.2g}, MLE {mle[name]:.4g}"
        # alpha sits at its boundary (0) under GJR, where the posterior mean is pushed in
        k = 3 if asymmetric and name == "alpha" else 2
        assert abs(mean - mle[name]) <= k * sd, why
    if asymmetric:  # the leverage effect: the posterior puts gamma well above 0
        assert np.quantile(agent.posterior_draws()["gamma"], 0.05) > 0.05


TRUE_GJR = {**TRUE, "alpha": 0.03, "beta": 0.88, "gamma": 0.12}


def test_recovers_known_gjr_parameters_on_simulated_data():
    """Simulate GJR-GARCH-t, fit: posterior means within 3 sds of the truth, gamma found.

    (Frequentist coverage of 90% intervals at a fixed truth near alpha's
    boundary runs a little below 90% - measured 86% over 12 seeds x 6
    parameters - so a 3-sd check is what a correct sampler passes reliably.)
    """
    names = (*PARAMS, "gamma")
    for seed in (1, 2, 3, 4):
        x = GarchT().simulate(TRUE_GJR, 2000, seed=seed)
        agent = GarchT(particles=600, runs=2, asymmetric=True).fit(x, seed=seed)
        draws = agent.posterior_draws()
        for k in names:
            z = (draws[k].mean() - TRUE_GJR[k]) / draws[k].std()
            assert abs(z) < 3, f"seed {seed}, {k}: {draws[k].mean():.4g} vs {TRUE_GJR[k]}"
        assert np.quantile(draws["gamma"], 0.05) > 0.03  # the asymmetry is detected


def test_gjr_fit_to_symmetric_data_puts_gamma_around_zero():
    x = GarchT().simulate(TRUE, 2000, seed=5)
    gamma = GarchT(particles=600, runs=2, asymmetric=True).fit(x, seed=5).posterior_draws()["gamma"]
    lo, hi = np.quantile(gamma, [0.05, 0.95])
    assert lo < 0 < hi and np.mean(gamma < 0) > 0.05  # the prior does not force leverage


@pytest.mark.parametrize("seeds", [(1, 2, 3, 4)])
def test_recovers_known_parameters_on_simulated_data(seeds):
    covered = {k: 0 for k in PARAMS}
    for seed in seeds:
        x = GarchT().simulate(TRUE, 2000, seed=seed)
        agent = GarchT(particles=600, runs=2, asymmetric=False).fit(x, seed=seed)
        draws = agent.posterior_draws()
        for k in PARAMS:
            lo, hi = np.quantile(draws[k], [0.05, 0.95])
            covered[k] += lo <= TRUE[k] <= hi
    # a 90% interval misses about one time in ten; ask for 3 of 4 seeds per parameter
    assert all(c >= len(seeds) - 1 for c in covered.values()), covered


def test_online_updates_agree_with_a_fresh_fit_on_the_extended_data(sp500):
    r = sp500[:2300]
    online = GarchT().fit(r[:2000], seed=3)
    for x in r[2000:]:
        online.update(x)
    fresh = GarchT().fit(r, seed=4)
    _assert_close(_summary(online), _summary(fresh))
    np.testing.assert_array_equal(online.history, r)


@pytest.mark.parametrize("shift", [20, 200])
def test_warm_refit_targets_the_window_posterior(sp500, shift):
    """As in the backtest: a trailing 1000-day window moved on by ``shift`` days."""
    agent = GarchT().fit(sp500[:1000], seed=5)
    for x in sp500[1000 : 1000 + shift]:
        agent.update(x)
    window = sp500[shift : 1000 + shift]
    agent.refit(window, seed=6)
    np.testing.assert_array_equal(agent.history, window)
    fresh = GarchT().fit(window, seed=8)
    _assert_close(_summary(agent), _summary(fresh))
    # the carried conditional variances are those at the end of the window
    loc, scale, df, w = agent.next_moments()
    loc_f, scale_f, df_f, w_f = fresh.next_moments()
    assert np.average(scale, weights=w) == pytest.approx(np.average(scale_f, weights=w_f), rel=0.05)


def test_refit_on_unrelated_data_falls_back_to_a_fit(sp500):
    agent = GarchT(particles=400).fit(sp500[:1000], seed=1)
    x = GarchT().simulate({**TRUE, "omega": 2e-5, "alpha": 0.3, "beta": 0.3}, 1000, seed=3)
    agent.refit(x, seed=2)
    fresh = GarchT(particles=400).fit(x, seed=4)
    _assert_close(_summary(agent), _summary(fresh))


def test_one_step_predictive_is_calibrated_online():
    """PIT values of the online one-step predictive are uniform on data from the model."""
    x = GarchT().simulate(TRUE, 2000, seed=21)
    agent = GarchT(particles=400, runs=2).fit(x[:1000], seed=2)
    pit = []
    for r in x[1000:]:
        loc, scale, df, w = agent.next_moments()
        pit.append(float(w @ special.stdtr(df, (r - loc) / scale)))
        agent.update(r)
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    # the 99% VaR exceedance rate is binomially consistent with 1%
    assert np.sum(np.array(pit) < 0.01) <= 25


@pytest.mark.slow
def test_recovery_over_many_seeds_at_full_size():
    covered, total = 0, 0
    for seed in range(10, 20):
        x = GarchT().simulate(TRUE, 2500, seed=seed)
        draws = GarchT().fit(x, seed=seed).posterior_draws()
        for k in PARAMS:
            lo, hi = np.quantile(draws[k], [0.05, 0.95])
            covered += lo <= TRUE[k] <= hi
            total += 1
    # 50 intervals at 90%: expect 45; below 38 has probability < 0.5% if calibrated
    assert covered >= 38, f"{covered}/{total}"


@pytest.mark.slow
def test_full_sp500_stream_stays_consistent_with_fresh_fit(sp500):
    online = GarchT().fit(sp500[:2500], seed=1)
    for x in sp500[2500:]:
        online.update(x)
    fresh = GarchT().fit(sp500, seed=2)
    _assert_close(_summary(online), _summary(fresh))
    assert math.isfinite(online.forecast((0.99,)).levels[0].var)


def test_a_crash_day_is_absorbed_like_a_refit(sp500):
    """A -20% day collapses the weights (ESS ~ 1% of particles); the move must recover."""
    online = GarchT().fit(sp500[:2000], seed=4)
    online.update(-0.20)
    fresh = GarchT().fit(np.append(sp500[:2000], -0.20), seed=5)
    _assert_close(_summary(online), _summary(fresh))
    # resampled and moved: every particle effective again (500, the default since the
    # particle count went from 1,000 to 500 - docs/models-score-driven.md, "Fewer particles")
    assert online.particles == 500
    assert online.diagnostics.ess == pytest.approx(float(online.particles))
