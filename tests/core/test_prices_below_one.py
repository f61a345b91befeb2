"""Prices and rates below 1 given as returns are refused; no real return series is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import books, data
from swarmvar.data._returns import PRICE_FLOOR, PRICE_MIN_OBS, PRICE_STEP, moves_like_prices
from swarmvar.errors import InvalidReturns

DAYS = pd.bdate_range("2015-01-01", periods=500)


def _walk(start: float, sd: float, n: int = 500, seed: int = 0) -> np.ndarray:
    return start * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, sd, n)))


@pytest.mark.parametrize(("name", "start", "sd"), [
    ("EURGBP", 0.85, 0.004),  # an FX rate
    ("USDCAD", 0.73, 0.005),
    ("PENNY", 0.45, 0.04),   # a penny stock moving 4% a day
    ("SEKUSD", 0.095, 0.006),  # USD per SEK, twice the floor
])
def test_a_price_below_one_is_refused_naming_the_column(name: str, start: float,
                                                         sd: float) -> None:
    x = _walk(start, sd)
    assert np.all(np.abs(x) <= 1)  # what used to pass as returns
    with pytest.raises(InvalidReturns, match=f"column '{name}' looks like prices") as err:
        data.validate(pd.Series(x, DAYS, name=name))
    text = str(err.value)
    assert "moves like a price" in text and data.TO_RETURNS_HINT in text, text
    with pytest.raises(InvalidReturns, match="the returns look like prices"):
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


def test_a_wandering_peg_is_refused_but_a_rounded_limit_up_streak_passes() -> None:
    """Both move by ~0.1% of a level near 0.1: the peg's level wanders (autocorrelated),
    the streak's rounding noise does not - the step rule alone would refuse both."""
    rng = np.random.default_rng(3)
    peg = 0.1282 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, 250)))  # USD per HKD-like
    why = moves_like_prices(peg)
    assert why is not None and "autocorrelation" in why, why
    prices = [10.0]
    for _ in range(PRICE_MIN_OBS + 5):  # China's +10% limit, the price rounded to 0.01
        prices.append(round(prices[-1] * 1.1, 2))
    streak = np.diff(np.log(prices))
    assert float(np.median(np.abs(np.diff(streak)) / streak[:-1])) < PRICE_STEP
    assert moves_like_prices(streak) is None
    data.as_array(streak)


def _limit(x: np.ndarray) -> None:
    assert moves_like_prices(x) is None
    data.as_array(x)


def test_real_one_signed_smooth_return_series_pass() -> None:
    """The series the old rule (floor 0.1%, either the step or the autocorrelation rule)
    refused: each is a plausible real return series."""
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2024-01-01", periods=250)
    gaps = np.r_[3.0, (days[1:] - days[:-1]).days]  # 2024-01-01 is a Monday
    assert set(gaps) == {1.0, 3.0}
    for rate in (0.44, 0.6):  # a money-market fund; Mondays carry three days
        _limit(gaps * np.log1p(rate) / 365)
    _limit(np.log1p(0.30) / 252 + 1e-6 * rng.standard_normal(260))  # a smooth accrual
    _limit(np.log1p(0.05) / 12 + 0.0003 * rng.standard_normal(60))  # monthly T-bills
    e, smooth = rng.normal(0.006, 0.004, 120), np.empty(120)  # appraisal-smoothed RE
    smooth[0] = 0.006
    for i in range(1, 120):
        smooth[i] = 0.85 * smooth[i - 1] + 0.15 * e[i]
    assert np.all(smooth > 0)
    _limit(smooth)
    _limit(np.log1p(0.05) / 21 + 2e-4 * rng.standard_normal(100))  # a crawling peg, 5%/month
    _limit(-np.linspace(0.005, 0.04, 22) * (1 + 0.3 * rng.random(22)))  # growing losses
    _limit(np.r_[np.full(30, 0.06), 0.0600001])  # nearly constant, above the floor


def test_the_limits_a_price_below_the_floor_reads_as_returns() -> None:
    """Documented in docs/data.md: a price below PRICE_FLOOR is not told from returns."""
    token = _walk(0.005, 0.05)
    assert float(np.median(token)) < PRICE_FLOOR
    assert moves_like_prices(token) is None
    assert moves_like_prices(_walk(0.5, 0.004)) is not None  # the same walk above it


def test_returns_computed_from_prices_are_not_judged(tmp_path: Path) -> None:
    """A crawling peg (USD/ARS, ~0.25% a day) given as prices: its returns are one-signed
    and smooth, above the old floor; read as prices they pass (were refused)."""
    rng = np.random.default_rng(1)
    crawl = 0.0025 + 0.0001 * rng.standard_normal(len(DAYS))
    assert np.all(crawl > 0)
    path = tmp_path / "usdars.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"),
                  "USDARS": 178 * np.exp(np.cumsum(crawl))}).to_csv(path, index=False)
    assert len(data.read(path, kind="price")) == len(DAYS) - 1
    assert books.read_assets(path, kind="price").shape == (len(DAYS) - 1, 1)
    # returns of ~6% a day that wander smoothly (a hyperinflation's): as returns they would
    # be taken for a price, but given as prices they are not judged
    wander = 0.06 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 60)))
    steep = pd.DataFrame({"X": np.exp(np.cumsum(wander))}, index=DAYS[:60])
    assert moves_like_prices(np.diff(np.log(steep["X"].to_numpy()))) is not None
    assert books.asset_returns(steep, kind="price").shape == (59, 1)
    assert len(data.validate(steep["X"].pipe(np.log).diff().dropna(), from_prices=True)) == 59
    with pytest.raises(InvalidReturns, match="looks like prices"):
        data.validate(steep["X"].pipe(np.log).diff().dropna())


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
