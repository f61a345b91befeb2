"""A pegged price or rate given as returns is refused; a streak of limit moves is not.

The narrowed price rule (a level that wanders) let a pegged rate through as returns:
USD per SAR 0.26662 +- 0.00002 gave a StudentT VaR99 of -0.221 (a negative VaR).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from swarmvar import data
from swarmvar.data._returns import LIMIT_MOVES, PRICE_PEG_CV, moves_like_prices
from swarmvar.errors import InvalidReturns

DAYS = pd.bdate_range("2023-01-02", periods=250)


def _band() -> np.ndarray:
    rng = np.random.default_rng(0)
    z, e = np.zeros(250), rng.standard_normal(250)
    for i in range(1, 250):
        z[i] = 0.3 * z[i - 1] + e[i]
    return 0.1283 + 0.0002 * z  # USD per HKD in its band, AR(0.3) noise


@pytest.mark.parametrize("values", [
    0.26662 + 0.00002 * np.random.default_rng(1).standard_normal(250),  # USD per SAR
    0.9990 + 0.0002 * np.random.default_rng(2).standard_normal(250),  # a stablecoin
    _band(),
    -(0.5 + 0.001 * np.random.default_rng(3).standard_normal(250)),  # a negative level
])
def test_a_pegged_rate_given_as_returns_is_refused(values: np.ndarray) -> None:
    assert np.all(np.abs(values) <= 1)
    with pytest.raises(InvalidReturns, match="column 'R' looks like prices") as err:
        data.validate(pd.Series(values, DAYS, name="R"))
    assert "sit at one level" in str(err.value) and data.TO_RETURNS_HINT in str(err.value)
    assert moves_like_prices(values[:20]) is not None  # a short window too
    # read from prices (a peg's prices, not its level) nothing is judged
    assert data.validate(pd.Series(values, DAYS), from_prices=True).size == 250


@pytest.mark.parametrize("limit", [0.05, 0.1, 0.2, 0.3, -0.05, -0.1, -0.2])
@pytest.mark.parametrize("start", [3.0, 10.0])
def test_a_rounded_streak_of_limit_moves_passes(limit: float, start: float) -> None:
    prices = [start]
    for _ in range(25):
        prices.append(round(prices[-1] * (1 + limit), 2))
    streak = np.diff(np.log(prices))
    assert moves_like_prices(streak) is None
    data.as_array(streak)
    if start == 10.0 and limit in (0.1, 0.2):  # sits still: passes by the limit-move rule
        assert float(np.std(streak)) < PRICE_PEG_CV * abs(float(np.mean(streak)))


def test_a_level_near_a_limit_move_but_not_at_one_is_refused() -> None:
    """USD per SAR (0.26662) is 1.6% from log(1.3) = 0.2624: not taken for a limit streak."""
    assert min(abs(0.26662 - lim) / abs(lim) for lim in LIMIT_MOVES) > 0.01
    assert math.isclose(max(LIMIT_MOVES), math.log1p(0.3))
    sar = 0.26662 + 0.00002 * np.random.default_rng(4).standard_normal(60)
    assert moves_like_prices(sar) is not None


def test_one_signed_returns_that_move_pass() -> None:
    rng = np.random.default_rng(5)
    assert moves_like_prices(0.08 + 0.004 * rng.standard_normal(100)) is None  # sd 5% of it
    assert moves_like_prices(0.02 + 1e-5 * rng.standard_normal(100)) is None  # below the floor
