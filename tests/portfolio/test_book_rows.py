"""A book's asset frame of numeric strings or true/false is refused (the shared number check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmvar
from swarmvar import books
from swarmvar.errors import InvalidReturns
from swarmvar.types import Book


def _frame(t: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(0, 0.01, (t, 2)), columns=["a", "b"],
                        index=pd.bdate_range("2020-01-01", periods=t))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.one_of(st.floats(-0.05, 0.05).map(repr), st.booleans(), st.text(max_size=4)),
       row=st.integers(0, 59), col=st.sampled_from(["a", "b"]))
def test_a_cell_that_is_not_a_number_is_refused_not_converted(cell: object, row: int,
                                                              col: str) -> None:
    frame = _frame().astype(object)
    frame.loc[frame.index[row], col] = cell
    with pytest.raises(InvalidReturns, match="must be numbers"):
        books.check_returns(frame)


def test_book_var_refuses_a_frame_of_numeric_strings_or_flags(tmp_path: Path) -> None:
    book = Book(("a", "b"), (1000.0, -400.0))
    for frame in (_frame().astype(str), _frame() > 0):
        with pytest.raises(InvalidReturns, match="must be numbers"):
            swarmvar.book_var(frame, book, kind="return", agents=["niw"], window=40,
                              baseline=False, consensus=False)


def test_gaps_are_still_missing_values_not_refused_as_types() -> None:
    frame = _frame().astype(object)
    frame.iloc[3, 0] = None
    with pytest.raises(InvalidReturns, match="missing"):
        books.check_returns(frame)
    assert books.check_returns(frame, dropna=True).shape == (59, 2)
    floats = _frame()
    np.testing.assert_array_equal(books.check_returns(floats).to_numpy(), floats.to_numpy())
