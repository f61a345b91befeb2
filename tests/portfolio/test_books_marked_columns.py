"""Returns worked out from prices keep their mark through a book's choice of columns, and a
window of them (the mark no longer matches) is refused naming the way out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from swarmvar import books, data
from swarmvar.data._returns import STALE_MARK_HINT
from swarmvar.errors import InvalidReturns
from swarmvar.models.registry import agent_class
from swarmvar.types import Book


def _steep_prices(n: int = 300) -> pd.DataFrame:
    """A price whose log returns are all positive and smooth (they move like prices)."""
    rng = np.random.default_rng(0)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = 0.9 * e[i - 1] + rng.normal(0, 0.004)
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame({"HYP": np.exp(np.cumsum(0.07 + e)),
                         "SPY": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))}, index=idx)


@pytest.mark.parametrize("assets", [("SPY", "HYP"), ("HYP",)])
def test_book_matrix_keeps_the_mark_through_reordered_or_subset_columns(
        assets: tuple[str, ...]) -> None:
    r = books.prices_to_returns(_steep_prices())
    assert data.is_from_prices(r)
    book = Book(assets, tuple(1000.0 for _ in assets))
    frame, pos = books.book_matrix(r, book)
    assert list(frame.columns) == list(assets) and pos.tolist() == [1000.0] * len(assets)
    # the same values without the mark are judged (and refused): the mark is what passed them
    with pytest.raises(InvalidReturns, match="HYP look like prices"):
        books.book_matrix(pd.DataFrame(r.to_numpy(), index=r.index, columns=r.columns), book)


def test_a_window_of_marked_returns_is_refused_naming_the_way_out() -> None:
    r = data.prices_to_returns(_steep_prices(400)["HYP"])
    window = r.iloc[-300:]
    assert not data.is_from_prices(window)
    # an agent's fit reads the window's memory, which the mark judged: it fits
    agent_class("bootstrap")().fit(window, seed=0)
    with pytest.raises(InvalidReturns) as exc:
        data.validate(window)
    assert STALE_MARK_HINT in str(exc.value)
    frame = books.prices_to_returns(_steep_prices(400)).iloc[-300:]
    with pytest.raises(InvalidReturns) as exc:
        books.book_matrix(frame, Book(("HYP",), (1.0,)))
    assert STALE_MARK_HINT in str(exc.value)
    # marked again, the window passes; unmarked data are refused without the hint
    agent_class("bootstrap")().fit(data.mark_from_prices(window.copy()), seed=0)
    with pytest.raises(InvalidReturns) as exc:
        data.validate(pd.Series(window.to_numpy(), index=window.index))
    assert STALE_MARK_HINT not in str(exc.value)
