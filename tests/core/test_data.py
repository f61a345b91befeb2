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


# --- bad files: a clear InvalidReturns naming the file and the problem -----------------


def _good_frame(n=40):
    idx = pd.bdate_range("2020-01-01", periods=n)
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n)))
    return pd.DataFrame({"Date": idx.strftime("%Y-%m-%d"), "P": prices})


@pytest.mark.parametrize(("name", "content", "match"), [
    ("empty.csv", b"", "empty"),
    ("header.csv", b"Date,P\n", "no data rows"),
    ("ragged.csv", b"Date,P\n2020-01-01,1\n2020-01-02,2,3,4\n", "well-formed.*line 3"),
    ("binary.csv", bytes(range(256)) * 8, "binary"),
    ("utf16.csv", "Date,P\n2020-01-01,1\n".encode("utf-16-le"), "UTF-16"),
    ("notgzip.gz", b"Date,P\n2020-01-01,1\n", "gzip"),
    ("garbage.parquet", b"not parquet at all" * 20, "corrupt or truncated"),
    ("one.csv", b"Date\n2020-01-01\n", "date column and a value column"),
    ("latin.csv", b"Date,P\n2020-01-01,1\xe9\n", "UTF-8"),
])
def test_unreadable_files_are_named_with_their_problem(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidReturns, match=match) as info:
        data.read(tmp_path / name)
    assert name in str(info.value)


def test_a_directory_a_truncated_parquet_and_a_missing_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InvalidReturns, match="directory"):
        data.read(tmp_path / "d.csv")
    _good_frame().to_parquet(tmp_path / "g.parquet")
    whole = (tmp_path / "g.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidReturns, match="t.parquet.*truncated"):
        data.read(tmp_path / "t.parquet")
    with pytest.raises(InvalidReturns, match="no such file"):
        data.read(tmp_path / "nope.csv")


def test_utf16_with_a_byte_order_mark_and_gzip_read_as_the_plain_file(tmp_path):
    import gzip

    frame = _good_frame()
    frame.to_csv(tmp_path / "plain.csv", index=False)
    frame.to_csv(tmp_path / "u16.csv", index=False, encoding="utf-16")
    with gzip.open(tmp_path / "z.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    plain = data.read(tmp_path / "plain.csv")
    pd.testing.assert_series_equal(data.read(tmp_path / "u16.csv"), plain)
    pd.testing.assert_series_equal(data.read(tmp_path / "z.csv.gz"), plain)


def test_integer_dates_are_never_nanoseconds_since_1970(tmp_path):
    r = np.random.default_rng(1).normal(0, 0.01, 30)
    pd.DataFrame({"i": range(30), "r": r}).to_csv(tmp_path / "i.csv", index=False)
    with pytest.raises(InvalidReturns, match="i.csv.*numbers such as 0, not dates"):
        data.read(tmp_path / "i.csv", kind="return")
    days = pd.bdate_range("2021-03-01", periods=30)
    pd.DataFrame({"d": [int(d.strftime("%Y%m%d")) for d in days], "r": r}).to_csv(
        tmp_path / "ymd.csv", index=False)
    got = data.read(tmp_path / "ymd.csv", kind="return")
    assert list(got.index) == list(days)  # YYYYMMDD whole numbers are dates
    with pytest.raises(InvalidReturns, match="not dates"):
        data.validate(pd.Series(r))  # a RangeIndex is not a date index either


def test_percent_scaled_small_values_are_caught_by_their_spread(tmp_path):
    idx = pd.bdate_range("2020-01-01", periods=250)
    pct = np.random.default_rng(2).normal(0.0, 0.71, 250)
    pct = np.clip(pct, -0.99, 0.99)  # every |value| < 1: the |r| > 1 check cannot see it
    with pytest.raises(InvalidReturns, match="standard deviation.*divide them by 100"):
        data.validate(pd.Series(pct, index=idx))
    data.validate(pd.Series(pct / 100, index=idx))  # the same series as fractions passes
    # an equity-like series of 5% a day (a volatile asset) is not refused
    data.validate(pd.Series(np.random.default_rng(3).normal(0, 0.05, 250), index=idx))


def test_messages_say_what_to_do_on_the_command_line_and_in_python(tmp_path):
    frame = _good_frame()
    frame.loc[4, "P"] = np.nan
    frame.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(InvalidReturns, match=r"--dropna on the command line, dropna=True in "
                                             r"Python"):
        data.read(tmp_path / "nan.csv")
    frame = _good_frame()
    frame["Q"] = frame["P"]
    frame.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(InvalidReturns, match="--column on the command line"):
        data.read(tmp_path / "two.csv")
    frame = _good_frame()
    frame.loc[3, "P"] = -1.0
    frame.to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(InvalidReturns, match="--kind return on the command line"):
        data.read(tmp_path / "neg.csv")
    frame = _good_frame().astype({"P": object})
    frame.loc[5, "P"] = "abc"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(InvalidReturns, match="'abc' at 2020-01-08.*not a number"):
        data.read(tmp_path / "text.csv")


def test_wrong_argument_types_are_swarmvar_errors(tmp_path):
    from swarmvar.errors import InvalidParameter, SwarmVarError

    _good_frame().to_csv(tmp_path / "g.csv", index=False)
    with pytest.raises(InvalidParameter):
        data.read(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        data.read(tmp_path / "g.csv", column=["P"])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="min_obs"):
        data.read(tmp_path / "g.csv", min_obs="2")  # type: ignore[arg-type]
    with pytest.raises(UnknownDataset):
        data.load(None)  # type: ignore[arg-type]
    idx = pd.bdate_range("2020-01-01", periods=4)
    rets = pd.DataFrame({"A": [0.01, -0.02, 0.03, 0.0]}, index=idx)
    for bad in ({"A": "x"}, {"A": None}, ["A"], {1: 1.0}):
        with pytest.raises(SwarmVarError):
            data.portfolio(rets, weights=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        data.portfolio(rets.to_numpy(), weights={"A": 1.0})  # type: ignore[arg-type]
