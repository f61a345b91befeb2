"""Agent.forecast_block's input contract, for every agent: bad input leaves the agent as it was."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models import agent_class
from swarmvar.models.registry import AGENT_MODULES

AGENTS = list(AGENT_MODULES)  # every registered agent


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    r = load("sp500").to_numpy()[-600:]
    return {name: agent_class(name)().fit(r[:500], seed=1) for name in AGENTS}


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize(("seeds", "returns", "error"), [
    ([1, 2, 3, "x", 5], None, InvalidParameter),        # a bad seed on day 3
    ([1, 2, 3, 4, True], None, InvalidParameter),       # bools are not seeds
    ([1, 2, 3], None, InvalidParameter),                # one seed per return
    (None, [0.01, -0.02, np.nan, 0.0, 0.01], InvalidReturns),
    (None, [0.01, 2.5, 0.0, 0.0, 0.01], InvalidReturns),  # beyond the return bound
    (None, [np.inf, 0.0, 0.0, 0.0, 0.01], InvalidReturns),  # on the first day
    (None, [0.01, 0.0, 0.0, 0.0, -np.inf], InvalidReturns),  # on the last day
    (None, [0.01, 0.0, 0.0, -1.01, 0.0], InvalidReturns),
])
def test_bad_blocks_raise_before_any_day_is_absorbed(fitted, name, seeds, returns, error):
    agent = fitted[name]
    before = agent.state()
    xs = np.array([0.001, -0.002, 0.003, -0.004, 0.005]) if returns is None else np.array(returns)
    with pytest.raises(error):
        agent.forecast_block(xs, (0.99, 0.975), 1, seeds=seeds)
    assert agent.state() == before
