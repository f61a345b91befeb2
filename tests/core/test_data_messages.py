"""The data layer's messages give the right cause: prices read as returns are called prices,
percent is called percent, and a row is named by its date (no ``00:00:00``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar import data
from swarmvar.data._returns import looks_like_prices, when
from swarmvar.errors import InvalidReturns


def _prices(start: float, n: int = 60, sd: float = 0.01, seed: int = 0) -> np.ndarray:
    steps = np.random.default_rng(seed).normal(0.0, sd, n)
    return start * np.exp(np.cumsum(steps))


def _file(path: Path, values: np.ndarray, first: str = "2016-08-12") -> Path:
    days = pd.bdate_range(first, periods=len(values))
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": values}).to_csv(path, index=False)
    return path


def test_a_file_of_prices_read_as_returns_is_told_to_read_them_as_prices(tmp_path: Path) -> None:
    path = _file(tmp_path / "my_prices.csv", _prices(2184.05))
    with pytest.raises(InvalidReturns) as err:
        data.read(path, "close", kind="return")
    text = str(err.value)
    assert text.startswith("my_prices.csv: return at 2016-08-12 is "), text
    assert "looks like a price" in text and "kind='price'" in text, text
    assert "percent" not in text and "00:00:00" not in text and "row 0" not in text, text
    assert data.read(path, "close", kind="price").size == 59  # the hint's fix reads it


def test_small_slowly_moving_prices_are_prices_too(tmp_path: Path) -> None:
    """An FX rate or a penny stock (1.1, 5.3): above 1, all positive, moving a little a day."""
    path = _file(tmp_path / "fx.csv", _prices(1.1, sd=0.005))
    with pytest.raises(InvalidReturns, match="looks like a price.*--kind price"):
        data.read(path, "close", kind="return")


def test_percent_returns_are_still_told_to_divide_by_100(tmp_path: Path) -> None:
    returns = np.random.default_rng(1).normal(0.0, 1.2, 60)  # percent: sd ~1, both signs
    returns[3] = 2.5
    path = _file(tmp_path / "pct.csv", returns)
    with pytest.raises(InvalidReturns) as err:
        data.read(path, "close", kind="return")
    text = str(err.value)
    assert "divide them by 100" in text and "price" not in text, text


def test_validate_without_a_kind_says_convert_not_a_flag() -> None:
    """Python's validate (and `run`, which reads returns only) has no kind to switch."""
    series = pd.Series(_prices(101.3), index=pd.bdate_range("2020-01-01", periods=60))
    with pytest.raises(InvalidReturns) as err:
        data.validate(series)
    text = str(err.value)
    assert "return at 2020-01-01 is" in text and "looks like a price" in text, text
    assert "log(P_t / P_t-1)" in text and "--kind" not in text and "kind=" not in text, text


def test_an_unlabelled_array_names_its_index() -> None:
    with pytest.raises(InvalidReturns, match=r"return at index 2 is 3\.0, .*divide them by 100"):
        data.as_array(np.array([0.01, -0.02, 3.0]))


def test_dates_print_without_midnight_and_other_labels_as_they_are() -> None:
    assert when(pd.Timestamp("2016-08-12")) == "2016-08-12"
    assert when(pd.Timestamp("2016-08-12 15:30")) == "2016-08-12 15:30:00"
    assert when(pd.Timestamp("2016-08-12", tz="UTC")) == "2016-08-12 (UTC)"
    assert when(7) == "7" and when("a") == "a"


def test_a_missing_price_and_a_text_cell_name_the_date_only(tmp_path: Path) -> None:
    (tmp_path / "gap.csv").write_text("date,close\n2020-01-01,10\n2020-01-02,\n2020-01-03,11\n")
    with pytest.raises(InvalidReturns) as err:
        data.read(tmp_path / "gap.csv", "close")
    assert "price at 2020-01-02 is missing" in str(err.value), err.value
    (tmp_path / "t.csv").write_text("date,x\n2020-01-01,0.01\n2020-01-02,abc\n")
    with pytest.raises(InvalidReturns) as err:
        data.read_table(tmp_path / "t.csv")
    assert "'abc' at 2020-01-02 in column 'x'" in str(err.value), err.value


def test_a_zero_sum_portfolio_says_why_and_what_to_do() -> None:
    frame = pd.DataFrame({"A": [0.01, 0.02], "B": [0.0, -0.01]},
                         index=pd.bdate_range("2020-01-01", periods=2))
    with pytest.raises(InvalidReturns) as err:
        data.portfolio(frame, positions={"A": 5e5, "B": -5e5})
    text = str(err.value)
    assert "sum to zero" in text and "net value" in text and "currency" in text, text


@given(start=st.floats(1.5, 1e5), sd=st.floats(0.0, 0.05), n=st.integers(3, 300),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_any_daily_price_path_above_one_looks_like_prices(start: float, sd: float, n: int,
                                                          seed: int) -> None:
    """A positive geometric walk (daily sd up to 5%) is prices, whatever its level; the
    refusal then says price and never percent."""
    x = _prices(start, n, sd, seed)
    assert looks_like_prices(x, float(x.max()))
    if np.all(x > 1):
        with pytest.raises(InvalidReturns, match="looks like a price") as err:
            data.as_array(x)
        assert "percent" not in str(err.value)


@given(sd=st.floats(0.5, 20.0), n=st.integers(3, 300), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_percent_returns_of_both_signs_are_percent(sd: float, n: int, seed: int) -> None:
    """Returns in percent (below 100 in size, of both signs) are told to divide by 100."""
    x = np.clip(np.random.default_rng(seed).normal(0.0, sd, n), -99.0, 99.0)
    x[0], x[1] = -abs(x[0]) - 1.5, abs(x[1]) + 1.5  # both signs, beyond |r| <= 1
    assert not looks_like_prices(x, float(x[0]))
    with pytest.raises(InvalidReturns, match="divide them by 100") as err:
        data.as_array(x)
    assert "price" not in str(err.value)


def test_a_repeated_date_prints_as_a_date() -> None:
    index = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-02"])
    with pytest.raises(InvalidReturns,
                       match=r"^date 2020-01-02 appears twice \(row 2 and row 3\); remove"):
        data.check_dates(index, "return")
