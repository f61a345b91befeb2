"""Text dates are read in one day/month order per column, by every reader.

``a/b/yyyy`` text: one value with ``a > 12`` makes the whole column day-first, one
with ``b > 12`` month-first; both in one column, or neither (with ``a != b``), is
refused. Checked on ``data.read``, ``data.read_table``, ``books.read_assets`` and
``data.check_dates`` (the Python index path), with hypothesis over random dates.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar import books, data
from swarmvar.errors import InvalidReturns

PROPS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))

DAYS = st.lists(st.dates(min_value=datetime.date(1950, 1, 1),
                         max_value=datetime.date(2049, 12, 31)),
                min_size=2, max_size=30, unique=True)
RETURNS = st.floats(-0.05, 0.05, allow_nan=False, allow_subnormal=True)


def _csv(folder: str, dates: list[str], values: list[float]) -> Path:
    path = Path(folder) / "dates.csv"
    rows = [f"{d},{v!r}" for d, v in zip(dates, values, strict=True)]
    path.write_text("date,x\n" + "\n".join(rows) + "\n")
    return path


def _stamps(days: list[datetime.date]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(d) for d in days])


def _bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("dates, read_as", [
    (["12/01/2020", "13/01/2020"], ["2020-01-12", "2020-01-13"]),  # refused before: the fix
    (["01/12/2020", "01/13/2020"], ["2020-01-12", "2020-01-13"]),  # month-first
    (["30/01/2020", "31/01/2020", "03/02/2020", "13/02/2020"],
     ["2020-01-30", "2020-01-31", "2020-02-03", "2020-02-13"]),
    (["13.01.2020", "14.01.2020"], ["2020-01-13", "2020-01-14"]),  # dots, a 2-digit year
    (["13-01-20", "01-02-20"], ["2020-01-13", "2020-02-01"]),
    (["2020-01-13", "14/01/2020"], ["2020-01-13", "2020-01-14"]),  # ISO rows as before
    (["13/01/2020 09:30", "01/02/2020 16:00"], ["2020-01-13 09:30", "2020-02-01 16:00"]),
    (["01/01/2020", "02/02/2020"], ["2020-01-01", "2020-02-02"]),  # one reading each
    (["20200113", "20200114"], ["2020-01-13", "2020-01-14"]),
])
def test_the_column_is_read_in_one_order(tmp_path: Path, dates: list[str],
                                         read_as: list[str]) -> None:
    want = pd.DatetimeIndex(pd.to_datetime(read_as))
    path = _csv(str(tmp_path), dates, [0.01] * len(dates))
    assert data.read_table(path).index.equals(want)
    assert data.check_dates(pd.Index(dates), "return").equals(want)


def test_a_day_first_pair_out_of_order_is_refused_as_not_increasing(tmp_path: Path) -> None:
    # read value by value this was 13 January then 1 December: "increasing", silently wrong
    path = _csv(str(tmp_path), ["13/01/2020", "12/01/2020", "14/01/2020"], [0.01, 0.0, -0.01])
    # the file's line (the header is line 1), the dates as dates
    with pytest.raises(InvalidReturns, match=r"dates.csv.*not increasing at line 3 "
                       r"\(2020-01-13 then 2020-01-12\)"):
        data.read(path, kind="return")
    with pytest.raises(InvalidReturns, match="not increasing"):
        books.read_assets(path, kind="return")
    table = data.read_table(path)  # rows are the run's to refuse; the dates are read right
    assert list(table.index.strftime("%m-%d")) == ["01-13", "01-12", "01-14"]


@pytest.mark.parametrize(("reader", "rows"), [
    (data.read_table, ("line 3", "line 4")),
    (lambda p: data.read(p, kind="return"), ("line 3", "line 4")),
    (lambda p: books.read_assets(p, kind="return"), ("line 3", "line 4")),
    (lambda p: data.check_dates(pd.Index(pd.read_csv(p)["date"]), "return"),
     ("row 2", "row 3")),  # an index in memory: rows counted from 1
])
def test_both_orders_in_one_column_are_refused_naming_one_of_each(
        tmp_path: Path, reader: Callable[[Path], object], rows: tuple[str, str]) -> None:
    path = _csv(str(tmp_path), ["10/01/2020", "13/01/2020", "01/14/2020"], [0.01, 0.0, 0.01])
    with pytest.raises(InvalidReturns) as err:
        reader(path)
    text = str(err.value)
    assert "mix two orders" in text and f"'13/01/2020' ({rows[0]})" in text, text
    assert f"'01/14/2020' ({rows[1]})" in text and "ISO dates" in text, text


@PROPS
@given(days=DAYS, data_=st.data())
def test_day_first_dates_read_back_exactly(days: list[datetime.date],
                                           data_: st.DataObject) -> None:
    days = sorted(days)
    if all(d.day <= 12 for d in days):  # one day above 12 settles the order
        days = sorted({*days, datetime.date(days[0].year, days[0].month, 13)})
    values = data_.draw(st.lists(RETURNS, min_size=len(days), max_size=len(days)))
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, [d.strftime("%d/%m/%Y") for d in days], values)
        table = data.read_table(path)
        assert table.index.equals(_stamps(days))
        assert np.array_equal(_bits(table["x"].to_numpy()), _bits(np.array(values)))
        series = data.read(path, kind="return", min_obs=1)
        assert series.index.equals(_stamps(days))
        assert np.array_equal(_bits(series.to_numpy()), _bits(np.array(values)))


@PROPS
@given(days=DAYS, data_=st.data())
def test_month_first_dates_read_back_exactly(days: list[datetime.date],
                                             data_: st.DataObject) -> None:
    days = sorted(days)
    if all(d.day <= 12 for d in days):
        days = sorted({*days, datetime.date(days[-1].year, days[-1].month, 28)})
    values = data_.draw(st.lists(RETURNS, min_size=len(days), max_size=len(days)))
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, [d.strftime("%m/%d/%Y") for d in days], values)
        table = books.read_assets(path, kind="return")
        assert table.index.equals(_stamps(days))
        assert np.array_equal(_bits(table["x"].to_numpy()), _bits(np.array(values)))


@PROPS
@given(days=DAYS, day_first=st.booleans(), data_=st.data())
def test_shuffled_dates_are_refused_as_not_increasing(days: list[datetime.date],
                                                      day_first: bool,
                                                      data_: st.DataObject) -> None:
    days = sorted(days)
    days = sorted({*days, datetime.date(days[0].year, days[0].month, 13)})
    order = data_.draw(st.permutations(days))
    if list(order) == days:
        order = days[::-1]
    fmt = "%d/%m/%Y" if day_first else "%m/%d/%Y"
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, [d.strftime(fmt) for d in order], [0.001] * len(order))
        with pytest.raises(InvalidReturns, match="not increasing.*sort the series by date"):
            data.read(path, kind="return", min_obs=1)
        assert data.read_table(path).index.equals(_stamps(list(order)))  # in file order


@PROPS
@given(days=DAYS, data_=st.data())
def test_mixtures_of_day_first_and_month_first_are_refused(days: list[datetime.date],
                                                           data_: st.DataObject) -> None:
    days = sorted({*days, datetime.date(2000, 1, 13), datetime.date(2000, 2, 14)})
    big = [k for k, d in enumerate(days) if d.day > 12]  # rows whose text fixes the order
    mdy = data_.draw(st.sets(st.sampled_from(range(len(days)))))  # rows written mm/dd
    k_mdy = data_.draw(st.sampled_from(big))
    k_dmy = data_.draw(st.sampled_from([k for k in big if k != k_mdy]))
    mdy = (mdy | {k_mdy}) - {k_dmy}
    text = [d.strftime("%m/%d/%Y" if k in mdy else "%d/%m/%Y") for k, d in enumerate(days)]
    first_dmy = min(k for k in big if k not in mdy)
    first_mdy = min(k for k in big if k in mdy)
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, text, [0.001] * len(days))
        for read in (data.read_table, lambda p: data.read(p, kind="return", min_obs=1)):
            with pytest.raises(InvalidReturns, match="mix two orders") as err:
                read(path)
            msg = str(err.value)
            assert f"{text[first_dmy]!r} (line {first_dmy + 2}) can only be day-first" in msg, msg
            assert f"{text[first_mdy]!r} (line {first_mdy + 2}) only month-first" in msg, msg
