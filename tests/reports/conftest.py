"""A small real backtest shared by the report tests: two fast agents, their consensus
(with a third), both arch baselines, on the bundled S&P 500."""

from __future__ import annotations

import pytest

from swarmvar import data
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import BacktestResult, backtest
from swarmvar.validation.backtest import Baseline


@pytest.fixture(scope="session")
def small_backtest() -> BacktestResult:
    r = data.load("sp500").iloc[-700:]
    agents = {"nig": NormalInverseGamma(), "bootstrap": BayesianBootstrap(window=250),
              "nig fast": NormalInverseGamma(forgetting=0.94)}
    return backtest(r, agents, window=300, refit_every=50, alphas=(0.99, 0.975),
                    progress=False, n_sim=50, consensus={"consensus": SWARM_POLICY},
                    baseline=[Baseline.ARCH, Baseline.ARCH_GJR], workers=1)
