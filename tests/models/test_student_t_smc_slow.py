"""StudentT(sampler="smc") at full size: calibration and agreement with NUTS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.models.student_t import StudentT

pytestmark = pytest.mark.slow


def test_simulation_based_calibration_of_the_smc_fit_and_updates() -> None:
    # Talts et al. (2018), as for NUTS in test_student_t_slow.py: SMC on 300 returns
    # followed by 100 SIR updates; ranks of the true parameters must be uniform.
    ranks: dict[str, list[float]] = {"mu": [], "sigma": [], "nu": []}
    rng = np.random.default_rng(2025)
    done = 0
    while done < 150:
        model = StudentT(sampler="smc")
        theta = {k: float(v[0]) for k, v in model.sample_prior(1, seed=rng).items()}
        y = model.simulate(theta, 400, seed=rng)
        if np.abs(y).max() > 1.0:  # a prior draw with |r| > 1: outside the data contract
            continue
        agent = model.fit(y[:300], seed=rng)
        assert agent.diagnostics.method.startswith("smc")
        for x in y[300:]:
            agent.update(float(x))
        draws = agent.posterior_draws()
        for k in ranks:
            thinned = draws[k][::10]
            ranks[k].append((np.sum(thinned < theta[k]) + 0.5) / (thinned.size + 1))
        done += 1
    for k, r in ranks.items():
        assert stats.kstest(r, "uniform").pvalue > 0.001, k


def test_smc_fit_agrees_with_nuts_on_sp500_windows() -> None:
    r = load("sp500").to_numpy()
    for lo, n in ((0, 1000), (3000, 1000), (0, 3000)):
        y = r[lo:lo + n]
        smc = StudentT(sampler="smc").fit(y, seed=1).posterior_draws()
        nuts = StudentT().fit(y, seed=2).posterior_draws()
        for k in ("mu", "sigma", "nu"):
            sd = np.std(nuts[k])
            # two Monte Carlo pictures of one posterior (ESS in the hundreds at least)
            assert abs(np.mean(smc[k]) - np.mean(nuts[k])) < 0.25 * sd, (lo, n, k)
            assert np.std(smc[k]) == pytest.approx(sd, rel=0.15), (lo, n, k)
