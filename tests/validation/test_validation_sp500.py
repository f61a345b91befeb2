"""The issue's quality bar on the real S&P 500 backtest (slow: every agent, 2,500 days)."""

from __future__ import annotations

import pytest

from swarmvar.data import load
from swarmvar.models import DEFAULT_AGENTS, agent_class
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import Test, backtest


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_an_agent_passes_kupiec_and_christoffersen_at_both_levels() -> None:
    agents = []
    for name in DEFAULT_AGENTS:
        try:
            agents.append(agent_class(name)())
        except ImportError:
            continue  # agents still being written land later
    r = load("sp500").iloc[-3500:]
    res = backtest(r, agents, window=1000, refit_every=20, alphas=(0.99, 0.975), progress=False,
                   consensus={"consensus": SWARM_POLICY}, workers=2)
    assert res.baseline is not None and res.baseline in res.rows
    print("\n" + res.summary().to_string())
    passing = [
        row for row in res.rows if row != res.baseline
        and all(res.passed(row, a, t) for a in (0.99, 0.975)
                for t in (Test.KUPIEC, Test.CHRISTOFFERSEN))
    ]
    assert passing, "no swarmvar agent passes Kupiec and Christoffersen at 99% and 97.5%"
    # GarchEVT with its default GJR-GARCH filter is the one (docs/models-garch.md has the
    # table; with the symmetric filter its 99% breaches cluster: Christoffersen p = 0.017)
    assert "GarchEVT" in passing
    # and the swarm's consensus (500-day FZ0 track record; docs/consensus.md)
    assert "consensus" in passing
    # the baseline fails, as the issue reports
    assert not res.passed(res.baseline, 0.99, Test.KUPIEC)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")
def test_the_consensus_passes_on_nasdaq_too() -> None:
    """The second bundled series, where the policy was also checked (docs/consensus.md)."""
    agents = [agent_class(name)() for name in DEFAULT_AGENTS]
    r = load("nasdaq").iloc[-3500:]
    res = backtest(r, agents, window=1000, refit_every=20, alphas=(0.99, 0.975), progress=False,
                   baseline=None, consensus={"consensus": SWARM_POLICY}, workers=2)
    for alpha in (0.99, 0.975):
        for test in (Test.KUPIEC, Test.CHRISTOFFERSEN):
            assert res.passed("consensus", alpha, test), (alpha, test)
