"""book_returns names a bad row from the frame's first row (was: from the first fully listed
row), and values print as plain numbers (was: ``np.float64(-1.0)``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from swarmvar import books
from swarmvar.errors import InvalidReturns
from swarmvar.types import Book

DAYS = pd.bdate_range("2020-01-01", periods=6)


def test_a_bad_price_after_a_late_listing_is_named_by_its_row_in_the_frame() -> None:
    frame = pd.DataFrame({"A": [np.nan, np.nan, 1.0, 1.1, -1.0, 1.2], "B": [1.0] * 6},
                         index=DAYS)
    with pytest.raises(InvalidReturns) as err:
        books.book_returns(frame, Book.from_positions({"A": 1.0, "B": 1.0}))
    text = str(err.value)
    assert f"on {DAYS[4].date()} (row 5) is -1.0;" in text, text
    assert "np.float64" not in text, text


def test_a_bad_return_after_a_late_listing_is_named_by_its_row_in_the_frame() -> None:
    frame = pd.DataFrame({"A": [np.nan, np.nan, 0.01, 0.02, 1.5, 0.0], "B": [0.0] * 6},
                         index=DAYS)
    with pytest.raises(InvalidReturns) as err:
        books.book_returns(frame, Book.from_positions({"A": 1.0, "B": 1.0}), kind="return")
    text = str(err.value)
    assert "(row 5) is 1.5, beyond |r| <= 1" in text and "np.float64" not in text, text


def test_an_infinite_value_prints_as_a_plain_number() -> None:
    frame = pd.DataFrame({"A": [0.01, -np.inf, 0.0]}, index=DAYS[:3])
    with pytest.raises(InvalidReturns) as err:
        books.check_returns(frame)
    assert "(row 2) is -inf; values must be finite" in str(err.value), str(err.value)
