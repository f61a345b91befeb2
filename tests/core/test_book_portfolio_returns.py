"""``data.portfolio`` of a leveraged book: the percent rules are the assets', not the book's.

Each asset column is held to the percent rules (``|r| <= 1``, sd <= 10% a day); the
book's computed return may pass them with leverage and is held to ``|r| <=
MAX_BOOK_RETURN`` only (a loss of all its value refused as before).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from swarmvar.data import portfolio
from swarmvar.data._returns import MAX_BOOK_RETURN
from swarmvar.errors import InvalidReturns


@pytest.fixture
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    days = pd.date_range("2021-01-01", periods=120, freq="D")
    return pd.DataFrame({"x": rng.normal(0, 0.02, days.size),
                         "y": rng.normal(0, 0.02, days.size)}, index=days)


def test_a_levered_books_crash_day_is_its_return(assets):
    assets.iloc[60, 0] = math.log(0.48)  # x loses 52%
    out = portfolio(assets, positions={"x": 100000, "y": -20000})
    simple = (100000 * np.expm1(assets["x"]) - 20000 * np.expm1(assets["y"])) / 80000
    assert out.to_numpy() == pytest.approx(np.log1p(simple.to_numpy()), rel=1e-12)
    assert out.iloc[60] < -1  # past |r| <= 1: a 65% loss of the net value, not percent
    assert out.attrs["notional"] == 80000


def test_a_levered_books_spread_past_ten_percent_is_its_own(assets):
    out = portfolio(assets, positions={"x": 100000, "y": -90000})  # 19 times its net
    assert out.std() > 0.1 and out.abs().max() <= 1  # the sd rule alone would refuse it


def test_the_assets_keep_the_percent_rules(assets):
    typed = assets.copy()
    typed.iloc[5, 1] = 1.5  # an asset's return in percent
    with pytest.raises(InvalidReturns, match="divide them by 100"):
        portfolio(typed, weights={"x": 0.5, "y": 0.5})
    with pytest.raises(InvalidReturns, match="standard deviation"):
        portfolio(assets * 10, weights={"x": 0.5, "y": 0.5})  # every asset in percent


def test_a_book_past_its_bound_or_wiped_out_is_refused(assets):
    up = assets.assign(y=assets["x"])  # a near-perfect hedge: 100 net of 100,000 long
    up.iloc[7] = [math.log(1.2), 0.0]
    with pytest.raises(InvalidReturns, match=r"gains 200 times its value at 2021-01-08 .* "
                                             rf"beyond \|r\| <= {MAX_BOOK_RETURN:g}"):
        portfolio(up, positions={"x": 100000, "y": -99900})
    down = up.copy()
    down.iloc[7] = [math.log(0.5), 0.0]
    with pytest.raises(InvalidReturns, match="loses all its value at 2021-01-08"):
        portfolio(down, positions={"x": 100000, "y": -99900})
