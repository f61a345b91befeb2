"""Backtests on books: the BookRow adapter (fast), and the 20-stock and long/short books (slow).

The slow backtests (1000 out-of-sample days, seed 0) print every row's hits
and Kupiec and Christoffersen p-values at 99% and 97.5%, and assert the
acceptance: the consensus passes both tests (p > 0.05) at both levels on the
equal-weight book, the long/short book, and a long/short book held out from
the copula fix that made the long/short book pass (alternating longs and
shorts). RiskMetrics is reported, pass or fail. On the two long/short books
the NIW's 99% breaches must not cluster (Christoffersen p > 0.05).
"""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.book_api import book_backtest
from swarmvar.books import load_stocks
from swarmvar.errors import InvalidParameter
from swarmvar.models.book_series import BookRow, book_series
from swarmvar.models.joint_niw import NormalInverseWishart
from swarmvar.types import Book


def test_book_series_is_the_exact_pnl_per_unit_gross() -> None:
    r = np.array([[0.01, -0.02], [0.0, 0.05]])
    y, g = book_series(r, np.array([6e5, -4e5]))
    assert g == 1e6
    np.testing.assert_allclose(y, (6e5 * np.expm1(r[:, 0]) - 4e5 * np.expm1(r[:, 1])) / 1e6)


def test_book_row_follows_its_book_and_refuses_other_windows() -> None:
    x = load_stocks().to_numpy()[-300:, :3]
    p = np.array([5e5, -3e5, 2e5])
    row = BookRow(NormalInverseWishart(draws=5, paths=100), x, p)
    y = row.series
    row.fit(y[:200], seed=0)
    fc = row.forecast((0.99,), seed=1)
    direct = NormalInverseWishart(draws=5, paths=100, positions=tuple(p / np.abs(p).sum()))
    direct.fit(x[:200], seed=0)
    assert direct.forecast((0.99,), seed=1) == fc
    row.update(float(y[200]))
    with pytest.raises(InvalidParameter):
        row.update(float(y[200]))  # day 201 is next, not 200 again
    with pytest.raises(InvalidParameter):
        row.refit(y[:200])  # the window must end at the cursor (day 201)
    row.refit(y[1:201])


def test_a_short_book_backtest_runs_every_row() -> None:
    stocks = load_stocks().iloc[-270:, :3]
    book = Book.from_positions({c: 1e5 for c in stocks.columns})
    res = book_backtest(stocks, book, kind="return", agents=["niw", "fhs", "copula"], last=20,
                        window=250, refit_every=10, alphas=(0.99,), seed=0)
    assert set(res.series) >= {"NormalInverseWishart", "FilteredHistorical", "CopulaGarchEVT",
                               "consensus", "RiskMetrics", "arch GJR-GARCH-t",
                               "arch GARCH(1,1)-t"}
    for levels in res.series.values():
        s = levels[0.99]
        assert np.isfinite(s.var).all() and (s.var > 0).all()
    y, _ = book_series(stocks.to_numpy(), np.full(3, 1e5))
    np.testing.assert_allclose(res.returns, y[-20:])


def _report(name: str, res) -> dict[str, dict[float, tuple[int, float, float]]]:
    out = {}
    print(f"\n{name}: {len(res.dates)} days {res.dates[0].date()} .. {res.dates[-1].date()}")
    for row, evs in res.evaluation.items():
        out[row] = {}
        for alpha, ev in evs.items():
            hits = int(res.series[row][alpha].hits.sum())
            kup = {t.value: r.pvalue for t, r in ev.tests.items()}
            out[row][alpha] = (hits, kup.get("kupiec", np.nan), kup.get("christoffersen",
                                                                       np.nan))
            print(f"  {row:<22} {alpha:g}: hits {hits}, Kupiec p {out[row][alpha][1]:.3f}, "
                  f"Christoffersen p {out[row][alpha][2]:.3f}")
    return out


BOOKS = {
    # the book the agents were checked on during development (timings, worked example)
    "equal-weight": lambda cols: Book.from_weights({c: 1 / 20 for c in cols}, 1e6),
    # the long/short book whose failure (Kupiec at 99%, too few breaches) led to the copula's
    # (DCC, df) posterior from its own likelihood
    "long-short": lambda cols: Book.from_positions(
        {c: 1e5 if i < 10 else -1e5 for i, c in enumerate(cols)}),
    # held out from that fix: alternating longs and shorts
    "alternating": lambda cols: Book.from_positions(
        {c: 1e5 if i % 2 == 0 else -1e5 for i, c in enumerate(cols)}),
}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~2 min CPU; ten times that on a loaded shared machine
@pytest.mark.parametrize("kind", list(BOOKS))
def test_book_backtests_on_the_20_stocks(kind: str) -> None:
    stocks = load_stocks()
    book = BOOKS[kind](list(stocks.columns))
    res = book_backtest(stocks, book, kind="return", last=1000, window=1000, refit_every=20,
                        alphas=(0.99, 0.975), seed=0, workers=1)
    table = _report(kind, res)
    assert len(res.dates) == 1000
    for alpha, (hits, kupiec, christoffersen) in table["consensus"].items():
        assert kupiec > 0.05 and christoffersen > 0.05, (alpha, hits, kupiec, christoffersen)
    if kind != "equal-weight":
        # the NIW's posterior over its forgetting factor (evidence on the book's P&L) unclusters
        # its 99% breaches on the hedged books: Christoffersen p was 0.000 on the long/short
        # book with the fixed lam = 0.99 (measured 0.130 and 0.470 with the grid)
        hits, _, christoffersen = table["NormalInverseWishart"][0.99]
        assert christoffersen > 0.05, (hits, christoffersen)
    # RiskMetrics is reported, pass or fail (on 2019-2022 it breaches ~3x too often at 99%
    # on the equal-weight book)
    assert set(table["RiskMetrics"]) == {0.99, 0.975}
