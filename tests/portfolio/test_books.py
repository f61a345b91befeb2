"""Books and asset data in: validation (first bad row named), exact currency P&L."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from swarmvar import books
from swarmvar.errors import InvalidBook, InvalidReturns, SwarmVarError
from swarmvar.types import Book


def _prices(n: int = 60, cols: tuple[str, ...] = ("A", "B", "C"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, (n, len(cols)))
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(100 * np.exp(np.cumsum(r, axis=0)), index=idx, columns=list(cols))


def test_book_kinds_are_valid_long_short_hedged_dollar_neutral() -> None:
    assert Book.from_positions({"A": 6e5, "B": -4e5}).net == pytest.approx(2e5)
    neutral = Book.from_positions({"A": 5e5, "B": -5e5})
    assert neutral.net == 0 and neutral.gross == 1e6
    w = Book.from_weights({"A": 0.6, "B": 0.4}, 1e6)
    assert w.positions == (6e5, 4e5)
    assert Book.from_positions({"A": np.float64(1.0), "B": np.int64(2)}).positions == (1.0, 2.0)


@pytest.mark.parametrize("positions, words", [
    ({"A": float("nan")}, "finite"), ({"A": float("inf")}, "finite"), ({}, "no positions"),
    ({"A": 0.0, "B": 0.0}, "zero"), ({"A": "1e6"}, "finite"), ({"": 1.0}, "non-empty"),
])
def test_bad_books_are_refused(positions: dict, words: str) -> None:
    with pytest.raises(InvalidBook, match=words):
        Book.from_positions(positions)


def test_bad_weights_and_notional() -> None:
    with pytest.raises(InvalidBook, match="notional"):
        Book.from_weights({"A": 1.0}, -5)
    with pytest.raises(InvalidBook, match="weight"):
        Book.from_weights({"A": float("nan")}, 1e6)
    with pytest.raises(InvalidBook, match="more than once"):
        Book(("A", "A"), (1.0, 2.0))


def test_parse_positions() -> None:
    b = books.parse_positions("A=600000, B=-400_000")
    assert b.as_dict() == {"A": 6e5, "B": -4e5}
    for bad in ("", "A", "A=x", "=5", "A=1,A=2"):
        with pytest.raises(InvalidBook):
            books.parse_positions(bad)


def test_read_book_positions_and_weights(tmp_path) -> None:
    p = tmp_path / "book.csv"
    p.write_text("asset,position\nA,600000\nB,-400000\n")
    assert books.read_book(p).as_dict() == {"A": 6e5, "B": -4e5}
    p.write_text("asset,weight\nA,0.5\nB,0.5\nnotional,2000000\n")
    assert books.read_book(p).as_dict() == {"A": 1e6, "B": 1e6}
    p.write_text("asset,position\nA,nan\n")
    with pytest.raises(InvalidBook, match="finite"):
        books.read_book(p)
    p.write_text("name,amount\nA,1\n")
    with pytest.raises(InvalidBook, match="columns"):
        books.read_book(p)


def test_price_frame_to_returns_and_first_bad_row_named() -> None:
    prices = _prices()
    r = books.asset_returns(prices)
    np.testing.assert_allclose(r.to_numpy(), np.diff(np.log(prices.to_numpy()), axis=0))
    bad = prices.copy()
    bad.iloc[7, 1] = -3.0
    with pytest.raises(InvalidReturns, match=r"price of B on 2020-01-10 \(row 8\)"):
        books.asset_returns(bad)
    gap = prices.copy()
    gap.iloc[9, 2] = np.nan
    with pytest.raises(InvalidReturns, match=r"C on 2020-01-14 \(row 10\) is missing"):
        books.asset_returns(gap)
    assert len(books.asset_returns(gap, dropna=True)) == len(prices) - 2


def test_prices_given_as_returns_get_a_hint_not_divide_by_100() -> None:
    with pytest.raises(InvalidReturns, match="kind='price'"):
        books.asset_returns(_prices(), kind="return")


def test_book_matrix_unknown_asset_and_no_history() -> None:
    r = books.asset_returns(_prices())
    with pytest.raises(InvalidBook, match=r"\['Z'\] are not in the data"):
        books.book_matrix(r, Book.from_positions({"A": 1.0, "Z": 2.0}))
    empty = r.copy()
    empty["D"] = np.nan
    with pytest.raises(InvalidBook, match=r"\['D'\] have no history"):
        books.book_matrix(empty, Book.from_positions({"A": 1.0, "D": 2.0}))
    late = r.copy()
    late.loc[late.index[:20], "B"] = np.nan  # B starts trading later: its history is shorter
    frame, pos = books.book_matrix(late, Book.from_positions({"A": 1.0, "B": -1.0}),
                                   extra=("C",))
    assert len(frame) == len(r) - 20 and list(frame.columns) == ["A", "B", "C"]
    np.testing.assert_array_equal(pos, [1.0, -1.0, 0.0])
    with pytest.raises(SwarmVarError):
        books.book_matrix(r, {"A": 1.0})  # type: ignore[arg-type]


def test_currency_pnl_is_exact() -> None:
    r = np.array([[0.05, -0.2], [-0.3, 0.1]])
    p = np.array([1e6, -5e5])
    expected = np.array([1e6 * (math.exp(0.05) - 1) - 5e5 * (math.exp(-0.2) - 1),
                         1e6 * (math.exp(-0.3) - 1) - 5e5 * (math.exp(0.1) - 1)])
    np.testing.assert_allclose(books.book_pnl(p, r), expected, rtol=1e-15)
    np.testing.assert_allclose(books.position_pnl(p, r).sum(axis=1), expected, rtol=1e-15)


def test_single_asset_currency_var_is_exact_not_notional_times_log_var() -> None:
    # the case: a 10-day 99% log-return VaR whose naive figure is 1,670,243
    notional = 10_000_000.0
    v = 0.1670243
    assert notional * v == pytest.approx(1_670_243)
    exact = books.currency_loss(notional, v)
    assert exact == pytest.approx(1_538_210, abs=5)
    # the quantile of the currency loss is the map of the log-return quantile
    rng = np.random.default_rng(3)
    r = rng.standard_t(4, 400_000) * 0.01  # a daily scale
    q = np.quantile(-r, 0.99)
    direct = np.quantile(-notional * np.expm1(r), 0.99)
    assert books.currency_loss(notional, float(q)) == pytest.approx(direct, rel=1e-6)
    # ES: the same map bounds the exact tail mean from above, within a small gap
    tail = -r >= q
    es_exact = float(np.mean(-notional * np.expm1(r[tail])))
    bound = books.currency_loss(notional, float(np.mean(-r[tail])))
    assert es_exact <= bound <= es_exact * 1.01  # 0.4% here
    with pytest.raises(InvalidBook, match="short"):
        books.currency_loss(-notional, v)


def test_bundled_stocks_load_offline() -> None:
    r = books.load_stocks()
    assert r.shape[1] == 20 and r.index[0].year == 2000 and r.index[-1].year == 2022
    assert np.isfinite(r.to_numpy()).all() and np.abs(r.to_numpy()).max() < 1
