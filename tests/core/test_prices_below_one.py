"""Prices and rates below 1 given as returns are refused; no real return series is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import books, data
from swarmvar.data._returns import PRICE_MIN_OBS, PRICE_STEP, moves_like_prices
from swarmvar.errors import InvalidReturns

DAYS = pd.bdate_range("2015-01-01", periods=500)


def _walk(start: float, sd: float, n: int = 500, seed: int = 0) -> np.ndarray:
    return start * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, sd, n)))


@pytest.mark.parametrize(("name", "start", "sd"), [
    ("EURGBP", 0.85, 0.004),  # an FX rate
    ("USDCAD", 0.73, 0.005),
    ("PENNY", 0.45, 0.04),   # a penny stock moving 4% a day
    ("TOKEN", 0.005, 0.05),  # a price just above the floor
])
def test_a_price_below_one_is_refused_naming_the_column(name: str, start: float,
                                                         sd: float) -> None:
    x = _walk(start, sd)
    assert np.all(np.abs(x) <= 1)  # what used to pass as returns
    with pytest.raises(InvalidReturns, match=f"column '{name}' look like prices") as err:
        data.validate(pd.Series(x, DAYS, name=name))
    text = str(err.value)
    assert "moves like a price" in text and data.TO_RETURNS_HINT in text, text
    with pytest.raises(InvalidReturns, match="look like prices"):
        data.as_array(x)


def test_a_file_of_rates_read_as_returns_is_told_to_read_them_as_prices(tmp_path: Path) -> None:
    path = tmp_path / "fx.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "EURGBP": _walk(0.85, 0.004)}).to_csv(
        path, index=False)
    with pytest.raises(InvalidReturns) as err:
        data.read(path, kind="return")
    text = str(err.value)
    assert "fx.csv" in text and "'EURGBP'" in text and "--kind price" in text, text
    assert "kind='price'" in text, text
    returns = data.read(path, kind="price")  # read as prices, it is a return series
    assert len(returns) == len(DAYS) - 1


def test_a_book_column_of_rates_given_as_returns_is_refused_naming_it() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"SPX": rng.normal(0, 0.01, 500), "EURGBP": _walk(0.85, 0.004)},
                         index=DAYS)
    with pytest.raises(InvalidReturns, match="returns of EURGBP look like prices") as err:
        books.asset_returns(frame, kind="return")
    assert "kind='price'" in str(err.value)
    books.asset_returns(frame[["SPX"]], kind="return")


def test_the_autocorrelation_rule_catches_a_price_of_large_daily_moves() -> None:
    t = np.arange(600)
    level = 0.3 + 0.28 * np.sin(2 * np.pi * t / 200)
    x = level * (1 + 0.08 * (-1.0) ** t)  # moves of ~16% a day around a slow level
    step = float(np.median(np.abs(np.diff(x)) / x[:-1]))
    assert step >= PRICE_STEP  # the step rule does not see it
    why = moves_like_prices(x)
    assert why is not None and "autocorrelation" in why, why


def _max_run(x: np.ndarray) -> int:
    """The longest stretch of consecutive values of one sign (zeros break it)."""
    s = np.sign(x)
    best = run = 1
    for a, b in zip(s[:-1], s[1:], strict=True):
        run = run + 1 if a == b and a != 0 else 1
        best = max(best, run)
    return best


def _bundled() -> dict[str, np.ndarray]:
    out = {name: data.load(name).to_numpy() for name in data.DATASETS}
    stocks = books.load_stocks()
    out.update({str(c): stocks[c].dropna().to_numpy() for c in stocks.columns})
    return out


def test_no_bundled_return_series_nor_any_window_of_one_is_refused() -> None:
    """No bundled series has PRICE_MIN_OBS days of one sign in a row, so no window a model
    fits (any stretch of 20 or more days) can meet the rule's first condition."""
    series = _bundled()
    assert len(series) == 2 + 20
    for name, x in series.items():
        assert moves_like_prices(x) is None, name
        assert _max_run(x) < PRICE_MIN_OBS, name
        data.as_array(x)


def test_calm_simulated_returns_pass() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        t4 = rng.standard_t(4, 5000) * 0.002 / np.sqrt(2.0)  # t(4) at 0.2% daily sd
        drift = 0.0005 + 0.002 * rng.standard_normal(2000)  # P(r > 0) = 0.6 every day
        e = rng.standard_normal(5000)  # a long, calm GARCH(1, 1) at ~0.3% daily sd
        h, garch = 9e-6, np.empty(5000)
        for i in range(5000):
            garch[i] = np.sqrt(h) * e[i]
            h = 1e-7 + 0.05 * garch[i] ** 2 + 0.94 * h
        for x in (t4, drift, garch):
            assert moves_like_prices(x) is None, seed
            data.as_array(x)
        windows = np.lib.stride_tricks.sliding_window_view(drift, PRICE_MIN_OBS)
        assert all(moves_like_prices(w) is None for w in windows), seed


def test_an_accrual_and_a_constant_are_left_to_the_models() -> None:
    accrual = 0.0002 + 1e-6 * np.random.default_rng(1).standard_normal(500)  # 5% a year
    assert moves_like_prices(accrual) is None
    assert moves_like_prices(np.full(300, 0.01)) is None
    assert moves_like_prices(_walk(0.85, 0.004, n=PRICE_MIN_OBS - 1)) is None  # too short
