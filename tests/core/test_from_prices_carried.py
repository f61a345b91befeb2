"""Returns computed from prices carry that fact (``data.mark_from_prices``) to every check.

The data layer skipped its price-likeness rule for them, but every agent's fit judged the
array again (``as_array``): a steep series given as prices was refused by all agents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import api, data
from swarmvar.data import is_from_prices
from swarmvar.errors import InvalidReturns
from swarmvar.models.registry import agent_class

DAYS = pd.bdate_range("2018-01-01", periods=300)


def _steep_prices() -> pd.Series:
    rng = np.random.default_rng(1)
    wander = 0.06 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(DAYS))))
    return pd.Series(np.exp(np.cumsum(wander)), DAYS, name="X")


def test_prices_to_returns_and_validate_carry_the_mark(tmp_path: Path) -> None:
    returns = data.prices_to_returns(_steep_prices())
    # the mark holds for these values: a window of them is judged again (X20)
    assert is_from_prices(returns) and not is_from_prices(returns.iloc[-100:])
    checked = data.validate(returns)  # the mark is honoured and carried on
    assert is_from_prices(checked)
    data.as_array(returns)  # not judged
    typed = pd.Series(returns.to_numpy(), returns.index, name="X")
    assert not is_from_prices(typed)
    with pytest.raises(InvalidReturns, match="looks like prices"):
        data.validate(typed)
    with pytest.raises(InvalidReturns, match="look like prices"):
        data.as_array(typed)
    assert is_from_prices(data.validate(typed, from_prices=True))
    path = tmp_path / "x.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "X": _steep_prices().to_numpy()}
                 ).to_csv(path, index=False)
    assert is_from_prices(data.read(path, "X", kind="price"))


def test_the_swarm_forecasts_a_steep_series_given_as_prices() -> None:
    returns = data.prices_to_returns(_steep_prices())
    result = api.var(returns, ["NormalInverseGamma", "BayesianBootstrap"], consensus=False)
    assert [r.name for r in result.runs if r.ok] == ["NormalInverseGamma", "BayesianBootstrap"]
    # an agent takes the window it is handed (the data's door judged it)
    agent = agent_class("StudentT")().fit(returns.to_numpy()[-200:], seed=0)
    assert np.isfinite(agent.forecast((0.99,), seed=0).at(0.99).var)



def test_the_track_record_of_a_steep_series_given_as_prices_is_kept() -> None:
    """var's track record hands its judged array to the backtest, which does not judge it
    again (was: "no track record: the returns look like prices"). Driven through
    ``_instance_track``, the step var takes with consensus on: a steep series' VaR is a
    gain (every return is ~+6%), which the consensus cannot sign, so var's note would name
    that instead."""
    x = data.as_array(data.prices_to_returns(_steep_prices()))
    with pytest.raises(InvalidReturns, match="look like prices"):
        data.as_array(x)  # the array alone looks like prices
    track, cached = api._instance_track(
        x, {"NormalInverseGamma": None, "BayesianBootstrap": None}, (0.99,), days=20,
        window=200, horizon=1, seed=0, workers=1, on_day=None)
    assert not cached
    assert track[0.99].var.shape == (20, 2)
