"""``books.read_assets`` reads through ``data.read_table``: the file's checks apply to books too.

The old reader parsed dates with a bare ``pd.to_datetime`` (numbers became
1970 nanosecond dates) and coerced text cells to NaN without a word.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import books
from swarmvar.errors import InvalidReturns


def _prices(tmp_path: Path, dates: list[object], name: str = "book.csv") -> Path:
    rng = np.random.default_rng(3)
    n = len(dates)
    frame = pd.DataFrame({"date": dates,
                          "A": 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n))),
                          "B": 50 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))})
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_well_formed_file_reads_as_before(tmp_path: Path) -> None:
    dates = pd.bdate_range("2020-01-01", periods=60)
    path = _prices(tmp_path, [d.strftime("%Y-%m-%d") for d in dates])
    got = books.read_assets(path)
    raw = pd.read_csv(path, index_col=0, parse_dates=True)
    want = np.log(raw).diff().iloc[1:]
    assert list(got.columns) == ["A", "B"] and got.shape == (59, 2)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-15)


def test_numbers_that_are_not_dates_are_refused(tmp_path: Path) -> None:
    path = _prices(tmp_path, list(range(60)))
    with pytest.raises(InvalidReturns, match="book.csv.*not dates"):
        books.read_assets(path)


def test_a_text_cell_is_named_not_turned_into_nan(tmp_path: Path) -> None:
    dates = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2020-01-01", periods=60)]
    path = _prices(tmp_path, dates)
    frame = pd.read_csv(path)
    frame["B"] = frame["B"].astype(object)
    frame.loc[10, "B"] = "n/a?"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidReturns, match="n/a"):
        books.read_assets(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidReturns, match="no such file"):
        books.read_assets(tmp_path / "nope.csv")


def test_an_in_memory_frame_gets_the_same_date_rules() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(0, 0.01, (40, 2))
    with pytest.raises(InvalidReturns, match="not dates"):  # was read as 1970 nanoseconds
        books.asset_returns(pd.DataFrame(values, columns=["A", "B"]), kind="return")
    months = [f"01/{m:02d}/2020" for m in range(1, 13)]
    with pytest.raises(InvalidReturns, match="ISO"):  # was read month-first without a word
        books.asset_returns(pd.DataFrame(values[:12], columns=["A", "B"], index=months),
                            kind="return")


def test_a_repeated_column_name_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"  # read_csv alone renames the second "A" to "A.1"
    path.write_text("date,A,A\n2020-01-02,100,50\n2020-01-03,101,51\n")
    with pytest.raises(InvalidReturns, match=r"dup.csv.*\['A'\] appear more than once"):
        books.read_assets(path)


def test_a_day_first_frame_reads_day_first_and_out_of_order_is_refused() -> None:
    dates = ["30/01/2020", "31/01/2020", "03/02/2020", "13/02/2020"]  # one order per column
    frame = pd.DataFrame({"A": [0.01, 0.0, -0.01, 0.02]}, index=dates)
    out = books.asset_returns(frame, kind="return")
    assert list(out.index.strftime("%Y-%m-%d")) == ["2020-01-30", "2020-01-31", "2020-02-03",
                                                    "2020-02-13"]
    frame.index = pd.Index(["30/01/2020", "03/02/2020", "31/01/2020", "13/02/2020"])
    with pytest.raises(InvalidReturns, match=r"not increasing at row 3 \(2020-02-03"):
        books.asset_returns(frame, kind="return")
