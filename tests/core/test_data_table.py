"""`data.read_table` (the date-indexed table of asset returns) and day/month-ambiguous dates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar import data
from swarmvar.errors import InvalidParameter, InvalidReturns


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_table_keeps_what_the_rows_get_refused_for_later(tmp_path: Path) -> None:
    # blank, NaN, inf, |r| > 1, a date not after the last, a duplicate: the caller's to refuse
    path = _write(tmp_path / "t.csv", "date,a,b\n2020-01-02,0.01,\n2020-01-03,nan,inf\n"
                  "2020-01-03,2.5,-0.01\n2020-01-01,0.0,0.02\n")
    frame = data.read_table(path)
    assert list(frame.columns) == ["a", "b"] and frame.shape == (4, 2)
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.dtypes.tolist() == [np.float64] * 2
    assert list(frame.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-03",
                                                      "2020-01-01"]
    assert np.isnan(frame.iloc[0, 1]) and np.isnan(frame.iloc[1, 0])
    assert np.isinf(frame.iloc[1, 1]) and frame.iloc[2, 0] == 2.5


def test_read_table_reads_yyyymmdd_parquet_and_numeric_column_names(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", "date,1,2\n20200102,0.01,0.02\n20200103,-0.01,0.0\n")
    frame = data.read_table(path)
    assert list(frame.columns) == ["1", "2"] and frame.index[0] == pd.Timestamp("2020-01-02")
    sp = data.load("sp500").iloc[:50]
    pd.DataFrame({"date": sp.index, "sp": sp.to_numpy()}).to_parquet(tmp_path / "s.parquet")
    back = data.read_table(tmp_path / "s.parquet")
    np.testing.assert_array_equal(back["sp"].to_numpy(), sp.to_numpy())
    assert (back.index == sp.index).all()
    sp.to_frame("sp").to_parquet(tmp_path / "i.parquet")  # the dates as the index
    assert (data.read_table(tmp_path / "i.parquet").index == sp.index).all()


@pytest.mark.parametrize(("text", "words"), [
    ("date,x\n2020-01-01,0.01\n2020-01-02, oops \n", "' oops ' at 2020-01-02"),
    ("date,x\n2020-01-01,True\n2020-01-02,False\n", "true/false values"),
    ("date,x\n2020-01-01,0.01\n,0.02\n", "no date at line 3"),
    ("date,x\n2020-01-01,0.01\n\n,0.02\n", "no date at line 4"),  # a blank line is a line
    ("date,x\n5,0.01\n6,0.02\n", "holds numbers such as 5, not dates"),
    ("date\n2020-01-01\n", "1 column(s)"),
    ("date,x\n2020-01-01,0.01,3\n", "more fields in every row than names in its header"),
    ("date,x\n2020-01-01,0.01\n2020-01-02,0.01,3\n", "not a well-formed CSV"),
])
def test_read_table_refuses_a_bad_file_naming_it(tmp_path: Path, text: str, words: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InvalidReturns) as err:
        data.read_table(path)
    assert "bad.csv" in str(err.value) and words in str(err.value), str(err.value)


def test_read_table_refuses_what_is_not_a_path() -> None:
    with pytest.raises(InvalidParameter, match="must be a file path"):
        data.read_table(3)  # type: ignore[arg-type]


MONTHLY_DAY_FIRST = [f"01/{m:02d}/2020" for m in range(1, 13)]  # 1 Jan, 1 Feb, ... 1 Dec


def test_a_day_first_file_of_days_up_to_12_is_refused_as_ambiguous(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": MONTHLY_DAY_FIRST, "close": np.linspace(100, 111, 12)})
    frame.to_csv(tmp_path / "m.csv", index=False)
    for read in (data.read_table, lambda p: data.read(p)):
        with pytest.raises(InvalidReturns) as err:
            read(tmp_path / "m.csv")
        text = str(err.value)
        assert "m.csv" in text and "ambiguous" in text and "'01/02/2020' (line 3)" in text, text
        assert "2020-01-02 month-first" in text and "2020-02-01 day-first" in text
        assert "ISO dates" in text
    series = pd.Series(np.full(12, 0.001), index=pd.Index(MONTHLY_DAY_FIRST))
    with pytest.raises(InvalidReturns, match="ambiguous"):  # a text index from Python too
        data.validate(series)


@pytest.mark.parametrize("dates", [
    [f"2020-{m:02d}-01" for m in range(1, 13)],            # ISO
    [f"2020{m:02d}01" for m in range(1, 13)],              # YYYYMMDD as text
    [f"{m:02d}/{m:02d}/2020" for m in range(1, 13)],       # both readings the same
    [f"{d:02d}/01/2020" for d in range(13, 25)],           # days above 12: day-first
    [f"01/{d:02d}/2020" for d in range(2, 14)],            # a day above 12: month-first
])
def test_dates_with_one_reading_still_read(tmp_path: Path, dates: list[str]) -> None:
    pd.DataFrame({"date": dates, "x": np.full(12, 0.001)}).to_csv(tmp_path / "f.csv",
                                                                   index=False)
    frame = data.read_table(tmp_path / "f.csv")
    assert frame.shape == (12, 1)


def test_a_day_first_daily_file_reads_as_its_dates(tmp_path: Path) -> None:
    # one day above 12 settles the column day-first: "01/02/2013" is 1 February, not 2
    # January (before, each value was read on its own and the file refused as misread)
    sp = data.load("sp500").iloc[:60]
    pd.DataFrame({"date": sp.index.strftime("%d/%m/%Y"), "x": sp.to_numpy()}).to_csv(
        tmp_path / "d.csv", index=False)
    assert data.read_table(tmp_path / "d.csv").index.equals(sp.index)
    assert data.read(tmp_path / "d.csv", kind="return").index.equals(sp.index)
    dates = [f"{d:02d}/01/2020" for d in range(2, 14)]  # 2 .. 13 January
    pd.DataFrame({"date": dates, "x": np.full(12, 0.001)}).to_csv(tmp_path / "j.csv",
                                                                   index=False)
    assert data.read_table(tmp_path / "j.csv").index.equals(
        pd.date_range("2020-01-02", "2020-01-13"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=200),
    st.lists(st.lists(st.one_of(
        st.sampled_from(["2020-01-01", "01/02/2020", "20200131", "", "nan", "inf", "x",
                         "True", "0.01", "-1e300", "13/01/2020", "\x00"]),
        st.floats(allow_nan=True).map(repr)), min_size=1, max_size=4),
        min_size=1, max_size=6).map(
            lambda rows: ("date,a,b\n" + "\n".join(",".join(r) for r in rows)).encode())))
def test_read_table_gives_a_float_table_or_a_named_refusal(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(raw)
    try:
        frame: Any = data.read_table(path)
    except InvalidReturns as exc:
        assert "fuzz.csv" in str(exc), str(exc)
        return
    assert isinstance(frame, pd.DataFrame) and isinstance(frame.index, pd.DatetimeIndex)
    assert not frame.index.isna().any() and frame.shape[1] >= 1
    assert all(dtype == np.float64 for dtype in frame.dtypes)
