"""MarkovSwitching's longer statistics: posterior recovery, and tracking the regime-switch truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from swarmvar.emergence.simulate import Design, simulate
from swarmvar.errors import ConvergenceWarning
from swarmvar.models import _markov_switching_lik as lik
from swarmvar.models import agent_class
from swarmvar.models.markov_switching import MarkovSwitching
from swarmvar.validation import backtest

pytestmark = pytest.mark.slow

TRUE = {"mu": 0.0002, "sigma1": 0.007, "sigma2": 0.02, "p11": 0.99, "p22": 0.97, "nu": 8.0}


def test_posterior_recovers_the_simulated_parameters():
    r = lik.simulate(TRUE, 3000, np.random.default_rng(11))[0]
    agent = MarkovSwitching().fit(r, seed=2)
    draws = agent.posterior_draws()
    for name, value in TRUE.items():
        lo, hi = np.quantile(draws[name], [0.0025, 0.9975])
        assert lo <= value <= hi, (name, value, lo, hi)
    assert abs(np.mean(draws["sigma2"]) / TRUE["sigma2"] - 1) < 0.15
    assert abs(np.mean(draws["sigma1"]) / TRUE["sigma1"] - 1) < 0.1
    assert agent.diagnostics.max_rhat < 1.05


def test_var_tracks_the_regime_switch_truth_better_than_garch_t():
    """The agent's VaR error on the emergence regime-switch design is well below GarchT's."""
    err: dict[str, list[float]] = {"MarkovSwitching": [], "GarchT": []}
    cover = []
    for rep in range(3):
        s = simulate(Design.REGIME_SWITCH, 1000, seed=1000 + rep)
        res = backtest(s.returns, [MarkovSwitching(), agent_class("GarchT")()], window=500,
                       refit_every=20, alphas=(0.99,), baseline=None, progress=False, n_sim=50,
                       seed=rep)
        truth = s.var[0.99][500:]
        for name in err:
            err[name].append(float(np.mean(np.abs(res.series[name][0.99].var - truth))))
        ms = res.series["MarkovSwitching"][0.99]
        cover.append(float(np.mean((ms.var_lo <= truth) & (truth <= ms.var_hi))))
    assert np.mean(err["MarkovSwitching"]) < 0.85 * np.mean(err["GarchT"])
    assert 0.8 <= np.mean(cover) <= 0.99


def test_ms_garch_posterior_recovers_the_simulated_parameters():
    from swarmvar.models import _markov_switching_garch_lik as glik
    from swarmvar.models.markov_switching import MarkovSwitchingGarch

    true = {"mu": 0.0003, "omega1": 1e-6, "alpha1": 0.03, "beta1": 0.9, "gamma1": 0.05,
            "omega2": 1e-5, "alpha2": 0.05, "beta2": 0.85, "gamma2": 0.1, "p11": 0.99,
            "p22": 0.97, "nu": 8.0}
    r = glik.simulate(glik.ASYMMETRIC.theta(**true), 3000, np.random.default_rng(21))[0]
    with warnings.catch_warnings():  # 12 weakly identified parameters: R-hat is asserted below
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent = MarkovSwitchingGarch().fit(r, seed=3)
    draws = agent.posterior_draws()
    for name, value in true.items():
        lo, hi = np.quantile(draws[name], [0.0025, 0.9975])
        assert lo <= value <= hi, (name, value, lo, hi)
    assert agent.diagnostics.max_rhat < 1.05
