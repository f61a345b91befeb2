"""Data loading, files, portfolios and validation."""

import numpy as np
import pandas as pd
import pytest

from swarmvar import data
from swarmvar.errors import InvalidReturns, UnknownDataset


def test_bundled_sp500_is_real_log_returns():
    r = data.load("sp500")
    assert isinstance(r.index, pd.DatetimeIndex)
    assert r.index[0] == pd.Timestamp("1999-01-05") and r.index[-1] == pd.Timestamp("2018-12-31")
    from arch.data import sp500

    prices = sp500.load()["Adj Close"]
    assert r.iloc[0] == pytest.approx(np.log(prices.iloc[1] / prices.iloc[0]), rel=1e-12)
    assert 0.008 < r.std() < 0.02 and np.isfinite(r).all()
    assert len(data.load("nasdaq")) > 4000


def test_unknown_dataset():
    with pytest.raises(UnknownDataset, match="sp500"):
        data.load("ftse")


def _prices(n=10):
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame({"Date": idx, "A": np.linspace(100, 110, n), "B": np.linspace(50, 40, n)})


def test_read_csv_and_parquet_prices(tmp_path):
    frame = _prices()
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    for name in ("p.csv", "p.parquet"):
        r = data.read(tmp_path / name, column="A")
        assert len(r) == 9
        assert r.iloc[0] == pytest.approx(np.log(frame.A[1] / frame.A[0]))
    with pytest.raises(InvalidReturns, match="2 numeric columns"):
        data.read(tmp_path / "p.csv")
    with pytest.raises(InvalidReturns, match="no column 'C'"):
        data.read(tmp_path / "p.csv", column="C")


def test_read_names_the_first_bad_row(tmp_path):
    frame = _prices()
    frame.loc[4, "A"] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(InvalidReturns, match="2020-01-07.*dropna"):
        data.read(tmp_path / "nan.csv", column="A")
    assert len(data.read(tmp_path / "nan.csv", column="A", dropna=True)) == 8
    frame = _prices()
    frame.loc[3, "A"] = -1.0
    frame.to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(InvalidReturns, match="positive"):
        data.read(tmp_path / "neg.csv", column="A")
    frame = _prices()
    frame.loc[5, "Date"] = frame.loc[4, "Date"]
    frame.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(InvalidReturns, match="twice"):
        data.read(tmp_path / "dup.csv", column="A")
    frame = _prices().iloc[[0, 2, 1, 3]]
    frame.to_csv(tmp_path / "order.csv", index=False)
    with pytest.raises(InvalidReturns, match="not increasing"):
        data.read(tmp_path / "order.csv", column="A")


def test_returns_kind_checks_units_and_length(tmp_path):
    idx = pd.bdate_range("2021-01-01", periods=5)
    pd.DataFrame({"d": idx, "r": [0.01, -0.02, 2.5, 0.0, 0.01]}).to_csv(tmp_path / "r.csv",
                                                                        index=False)
    with pytest.raises(InvalidReturns, match="percent"):
        data.read(tmp_path / "r.csv", kind="return")
    pd.DataFrame({"d": idx, "r": [0.01, -0.02, np.inf, 0.0, 0.01]}).to_csv(tmp_path / "i.csv",
                                                                           index=False)
    with pytest.raises(InvalidReturns, match="2021-01-05"):
        data.read(tmp_path / "i.csv", kind="return")
    with pytest.raises(InvalidReturns, match="at least 100"):
        data.validate(pd.Series([0.01] * 5, index=idx), min_obs=100)


def test_portfolio_weights_and_positions():
    idx = pd.bdate_range("2020-01-01", periods=4)
    rets = pd.DataFrame({"A": [0.01, -0.02, 0.03, 0.0], "B": [0.0, 0.01, -0.01, 0.02]}, index=idx)
    p = data.portfolio(rets, weights={"A": 0.6, "B": 0.4})
    expect = np.log1p(0.6 * np.expm1(rets.A) + 0.4 * np.expm1(rets.B))
    np.testing.assert_allclose(p.to_numpy(), expect.to_numpy(), rtol=1e-14)
    q = data.portfolio(rets, positions={"A": 600_000, "B": 400_000})
    np.testing.assert_allclose(q.to_numpy(), p.to_numpy(), rtol=1e-14)
    assert q.attrs["notional"] == 1_000_000
    with pytest.raises(InvalidReturns, match="no asset column"):
        data.portfolio(rets, weights={"C": 1.0})
    with pytest.raises(InvalidReturns, match="exactly one"):
        data.portfolio(rets)
    with pytest.raises(InvalidReturns, match="sum to zero"):
        data.portfolio(rets, positions={"A": 1.0, "B": -1.0})
