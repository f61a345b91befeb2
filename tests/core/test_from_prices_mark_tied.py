"""The from-prices mark holds for the values it was given to, and files do not carry it.

The mark was ``attrs["from_prices"] = True``: pandas carries attrs through operations that
turn returns back into levels (cumsum, exp) and through Parquet files, so a rate below 1
(EUR/GBP ~0.85) rebuilt from marked returns passed as returns (VaR99 148%). The mark is now
a digest of the values; files are read without attrs (only ``kind`` says what they hold);
a labelled series given to an agent's ``fit`` or to ``run_agents`` is judged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import data
from swarmvar.data import FROM_PRICES, is_from_prices, mark_from_prices
from swarmvar.errors import InvalidReturns
from swarmvar.models.registry import agent_class
from swarmvar.swarm import run_agents

DAYS = pd.bdate_range("2018-01-01", periods=300)


def _eurgbp() -> pd.Series:
    rng = np.random.default_rng(7)
    return pd.Series(0.85 * np.exp(np.cumsum(rng.normal(0.0, 0.004, len(DAYS)))), DAYS,
                     name="EURGBP")


def test_levels_rebuilt_from_marked_returns_are_judged() -> None:
    returns = data.prices_to_returns(_eurgbp())
    assert is_from_prices(returns)
    data.validate(returns)  # still accepted: computed from prices
    levels = 0.85 * np.exp(returns.cumsum())  # attrs carried by pandas, values changed
    assert levels.attrs and not is_from_prices(levels)
    with pytest.raises(InvalidReturns, match="look"):
        data.validate(levels)
    with pytest.raises(InvalidReturns, match="look"):
        data.as_array(levels)
    forged = pd.Series(_eurgbp().to_numpy(), DAYS, name="EURGBP")
    forged.attrs[FROM_PRICES] = True  # the old mark is not honoured
    with pytest.raises(InvalidReturns, match="look"):
        data.validate(forged)
    assert is_from_prices(mark_from_prices(forged))  # an explicit mark, for these values


def test_a_parquet_round_trip_does_not_carry_the_mark(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    levels = 0.85 * np.exp(data.prices_to_returns(_eurgbp()).cumsum())
    mark_from_prices(levels)  # even a mark matching the values is left behind in the file
    frame = levels.rename("EURGBP").to_frame()
    frame.attrs = dict(levels.attrs)
    frame.index.name = "date"
    path = tmp_path / "lv.parquet"
    frame.to_parquet(path)
    assert pd.read_parquet(path).attrs  # pandas keeps the attrs in the file
    with pytest.raises(InvalidReturns, match="look"):
        data.read(path, "EURGBP", kind="return")
    assert not data.read_table(path).attrs
    assert is_from_prices(data.read(path, "EURGBP", kind="price"))


def test_an_agent_s_fit_and_run_agents_judge_a_labelled_series() -> None:
    eurgbp = _eurgbp()
    with pytest.raises(InvalidReturns, match="look like prices"):
        agent_class("StudentT")().fit(eurgbp, seed=0)
    runs = run_agents(eurgbp, ["NormalInverseGamma", "BayesianBootstrap"])
    assert not any(r.ok for r in runs)
    assert all("look like prices" in (r.error or "") for r in runs)
    returns = data.prices_to_returns(eurgbp)  # marked: not judged
    runs = run_agents(returns, ["NormalInverseGamma", "BayesianBootstrap"])
    assert all(r.ok for r in runs), [r.error for r in runs]
