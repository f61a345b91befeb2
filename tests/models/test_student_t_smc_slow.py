"""StudentT's default fit (tempered SMC, 4 runs) at full size: SBC and agreement with NUTS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.models.student_t import StudentT

pytestmark = pytest.mark.slow


def _rank(draws: np.ndarray, truth: float) -> float:
    thinned = draws[::10]  # 200 of the 2000 particles: neighbours share ancestors
    return float((np.sum(thinned < truth) + 0.5) / (thinned.size + 1))


def test_simulation_based_calibration_of_the_default_fit_and_updates() -> None:
    # Talts et al. (2018): with theta from the prior and data from the model, the rank
    # of theta among posterior draws is uniform if the posterior is right. Checked twice
    # per simulated series: after the SMC fit on 300 returns, and after 100 SIR updates.
    fitted: dict[str, list[float]] = {"mu": [], "sigma": [], "nu": []}
    online: dict[str, list[float]] = {"mu": [], "sigma": [], "nu": []}
    rng = np.random.default_rng(2025)
    done = 0
    while done < 200:
        model = StudentT()
        theta = {k: float(v[0]) for k, v in model.sample_prior(1, seed=rng).items()}
        y = model.simulate(theta, 400, seed=rng)
        if np.abs(y).max() > 1.0:  # a prior draw with |r| > 1: outside the data contract
            continue
        agent = model.fit(y[:300], seed=rng)
        assert agent.diagnostics.method == "smc+sir"
        draws = agent.posterior_draws()
        for k in fitted:
            fitted[k].append(_rank(draws[k], theta[k]))
        for x in y[300:]:
            agent.update(float(x))
        draws = agent.posterior_draws()
        for k in online:
            online[k].append(_rank(draws[k], theta[k]))
        done += 1
    for label, ranks in (("fit", fitted), ("fit + updates", online)):
        for k, r in ranks.items():
            assert stats.kstest(r, "uniform").pvalue > 0.01, (label, k)


def test_default_fit_agrees_with_nuts_on_sp500_windows() -> None:
    # Two Monte Carlo pictures of one posterior: the means may differ by their Monte
    # Carlo error only (4 standard errors, from each sampler's ESS, the 2000 kept
    # particles at most), the standard deviations by ~4 standard errors of theirs.
    r = load("sp500").to_numpy()
    for lo, n in ((0, 1000), (3000, 1000), (r.size - 1000, 1000), (0, 3000)):
        y = r[lo:lo + n]
        smc = StudentT().fit(y, seed=1)
        nuts = StudentT(sampler="nuts").fit(y, seed=2)
        d = smc.diagnostics
        assert d.method == "smc+sir" and d.max_rhat is not None and d.max_rhat <= 1.01
        assert d.min_ess is not None and d.min_ess >= 400
        a, b = smc.posterior_draws(), nuts.posterior_draws()
        for k in ("mu", "sigma", "nu"):
            sd = np.std(b[k])
            ess = (min(2000.0, d.ess_bulk[k]), min(2000.0, nuts.diagnostics.ess_bulk[k]))
            se = sd * np.sqrt(1.0 / ess[0] + 1.0 / ess[1])
            assert abs(np.mean(a[k]) - np.mean(b[k])) < 4 * se, (lo, n, k)
            assert np.std(a[k]) == pytest.approx(sd, rel=0.12), (lo, n, k)
