"""The default consensus on real series (slow): coverage, the MCS, against the previous default.

S&P 500 and NASDAQ are the series the default was chosen on; JPM (skfolio's
bundled prices, log returns of the JPM column) was not used to choose. The
figures are in docs/consensus.md. With the five default agents the issue's
"FZ0 lower than every agent at both levels" is not met (there, with why) and
is not asserted; with BetaSkewTEgarch as a sixth agent the default (f = 2
from six agents) meets it on the S&P 500 and NASDAQ, asserted below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import data
from swarmvar.consensus import DEFAULT_POLICY, Loss, Policy, Weighting
from swarmvar.emergence import summarize
from swarmvar.models import DEFAULT_AGENTS, agent_class
from swarmvar.validation import Test, backtest

PREVIOUS = Policy(f=1, weighting=Weighting.TRACK_RECORD, loss=Loss.FZ0, window=500)


def jpm_returns() -> pd.Series:
    """Daily log returns of JPM from skfolio's bundled S&P 500 constituents (1990-2022)."""
    import skfolio.datasets

    path = Path(skfolio.datasets.__file__).parent / "data" / "sp500_dataset.csv.gz"
    prices = pd.read_csv(path, index_col=0, parse_dates=True)["JPM"]
    assert prices.index.is_monotonic_increasing and not prices.index.duplicated().any()
    assert (prices > 0).all() and prices.notna().all()
    r = np.log(prices).diff().dropna()
    r.name = "jpm"
    return r


def run(name: str):
    series = jpm_returns() if name == "jpm" else data.load(name)
    roster = [agent_class(n)() for n in DEFAULT_AGENTS]
    return backtest(series.iloc[-3500:], roster, window=1000, refit_every=20,
                    alphas=(0.99, 0.975), baseline=["arch", "arch-gjr"], progress=False,
                    consensus={"consensus": DEFAULT_POLICY, "previous": PREVIOUS}, workers=2,
                    n_sim=200)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sp500", "nasdaq", "jpm"])
def test_default_consensus_on_real_series(name: str) -> None:
    result = run(name)
    summary = summarize(result, agents=list(DEFAULT_AGENTS), mcs_reps=500)
    losses = result.losses
    for alpha in result.alphas:
        if name != "jpm":  # chosen on these: every coverage test passes at both levels
            for test in (Test.KUPIEC, Test.CHRISTOFFERSEN, Test.CONDITIONAL_COVERAGE):
                assert result.passed("consensus", alpha, test), (name, alpha, test)
        assert summary.mcs_pvalues[alpha]["consensus"] >= summary.mcs_size  # in the 10% MCS

        def fz0(row: str, a: float = alpha) -> float:
            from swarmvar.validation import fz0_loss

            s = result.series[row][a]
            return float(fz0_loss(losses, s.var, s.es, a).mean())

        assert fz0("consensus") < fz0("previous")
    assert np.median(summary.effective_agents) > 1.2  # not winner-take-all


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_with_a_sixth_agent_the_default_beats_every_row(name: str) -> None:
    """The third study (docs/consensus.md): with BetaSkewTEgarch as a sixth agent the default
    drops two per side (f_steps) and its FZ0 is lower than every agent's and both arch rows'
    at both levels, with every coverage test passed, on both series it was chosen on."""
    from swarmvar.models.score_driven import BetaSkewTEgarch

    series = data.load(name)
    five = ("NormalInverseGamma", "BayesianBootstrap", "StudentT", "GarchT", "GarchEVT")
    roster = [agent_class(n)() for n in five] + [BetaSkewTEgarch()]  # the studied roster
    result = backtest(series.iloc[-3500:], roster, window=1000, refit_every=20,
                      alphas=(0.99, 0.975), baseline=["arch", "arch-gjr"], progress=False,
                      consensus={"consensus": DEFAULT_POLICY}, workers=2, n_sim=200)
    assert DEFAULT_POLICY.f_for(len(roster)) == 2
    from swarmvar.validation import fz0_loss

    for alpha in result.alphas:
        for test in (Test.KUPIEC, Test.CHRISTOFFERSEN, Test.CONDITIONAL_COVERAGE):
            assert result.passed("consensus", alpha, test), (name, alpha, test)
        score = {row: float(fz0_loss(result.losses, s[alpha].var, s[alpha].es, alpha).mean())
                 for row, s in result.series.items()}
        others = [v for row, v in score.items() if row != "consensus"]
        assert len(others) == 8 and score["consensus"] < min(others), (name, alpha, score)
