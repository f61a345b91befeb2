"""A book's returns computed from prices are not judged for looking like prices again.

``book_var`` on a file read as prices (95cf9c3: the path's returns were judged again and a
steep asset refused), on a frame of prices with a track record (``_track_records`` ran its
backtest with ``kind="return"``), and on a frame ``books.read_assets`` made from prices
(the CLI's path). Typed as returns, the same values are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarmvar import books, data
from swarmvar.book_api import book_var
from swarmvar.errors import InvalidReturns
from swarmvar.types import Book

BOOK = Book.from_positions({"X": 100.0, "SPX": 100.0})
FAST = {"agents": ["NormalInverseWishart"], "window": 300, "baseline": False}


def _prices() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 400
    days = pd.bdate_range("2018-01-01", periods=n)
    wander = 0.06 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))  # ~6% a day, smooth
    return pd.DataFrame({"X": np.exp(np.cumsum(wander)),
                         "SPX": 3000 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))},
                        index=days)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    table = frame.rename_axis("date").reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    table.to_csv(path, index=False)
    return path


def test_book_var_on_a_price_file_is_not_judged_again(tmp_path: Path) -> None:
    path = _csv(_prices(), tmp_path / "steep.csv")
    result = book_var(path, BOOK, kind="price", consensus=False, **FAST)  # type: ignore[arg-type]
    assert not result.errors and result.forecasts


def test_a_track_record_of_a_price_frame_is_not_judged_again() -> None:
    result = book_var(_prices(), BOOK, kind="price", consensus=True, track_days=50,
                      **FAST)  # type: ignore[arg-type]
    assert not result.errors and "no track record" not in result.note


def test_a_frame_read_as_prices_carries_it_and_returns_typed_are_judged(tmp_path: Path
                                                                        ) -> None:
    path = _csv(_prices(), tmp_path / "steep.csv")
    frame = books.read_assets(path, kind="price")
    assert data.is_from_prices(frame)  # the mark, for these values
    assert book_var(frame, BOOK, kind="return", consensus=False,
                    **FAST).forecasts  # type: ignore[arg-type]
    typed = pd.DataFrame(frame.to_numpy(), index=frame.index, columns=frame.columns)
    with pytest.raises(InvalidReturns, match="look like prices") as err:
        book_var(typed, BOOK, kind="return", consensus=False, **FAST)  # type: ignore[arg-type]
    assert str(err.value).count("look like prices") == 1
