"""The book backtest's GJR-GARCH-t row keeps the previous window's parameters when a refit
does not converge, counts it and notes it, as the single-series GARCH baseline does."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from swarmvar.book_api import book_backtest
from swarmvar.books import load_stocks
from swarmvar.errors import ConvergenceWarning, InvalidParameter
from swarmvar.models.book_baselines import ArchGjrT
from swarmvar.types import Book


def _returns(n: int = 800, seed: int = 12) -> np.ndarray:
    return 0.01 * np.random.default_rng(seed).standard_t(6, n) * math.sqrt(4 / 6)


def test_a_refit_that_does_not_converge_keeps_the_previous_parameters() -> None:
    r = _returns()
    row = ArchGjrT().fit(r[:500])
    kept = row._fitted()
    assert row.failed_fits == 0 and row.notes == []
    row.options = {"maxiter": 1}  # arch stops after one step: flag != 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a kept fit only notes it
        row.refit(r[100:600])
    assert row._fitted() == kept
    assert row.failed_fits == 1 and len(row.notes) == 1
    assert "fit 2 did not converge" in row.notes[0] and "kept the previous fit" in row.notes[0]
    want = ArchGjrT._filter(100 * r[100:600], kept)  # the kept parameters filter the window
    assert row._s2 == pytest.approx(want, rel=1e-12)
    fc = row.forecast((0.99,))
    assert math.isfinite(fc.levels[0].var) and fc.levels[0].var > 0
    row.options = None
    row.refit(r[200:700])  # converges again: new parameters, the count stays
    assert row._fitted() != kept and row.failed_fits == 1


def test_a_first_fit_that_does_not_converge_is_used_with_a_warning() -> None:
    row = ArchGjrT(options={"maxiter": 1})
    with pytest.warns(ConvergenceWarning, match="did not converge on its first window"):
        row.fit(_returns()[:500])
    assert row.failed_fits == 1 and row.notes[0].startswith("first fit did not converge")
    assert all(math.isfinite(v) for v in row._fitted())


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(InvalidParameter, match="options must be a mapping"):
        ArchGjrT(options=[("maxiter", 1)])  # type: ignore[arg-type]


def test_the_book_backtest_shows_the_rows_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    init = ArchGjrT.__init__

    def one_step(self: ArchGjrT, options: Any = None) -> None:
        init(self, {"maxiter": 1})

    monkeypatch.setattr(ArchGjrT, "__init__", one_step)
    stocks = load_stocks().iloc[-140:, :2]
    book = Book.from_positions({c: 1e5 for c in stocks.columns})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = book_backtest(stocks, book, kind="return", agents=["niw"], last=20, window=120,
                            refit_every=10, alphas=(0.99,), seed=0, consensus=False, workers=1)
    notes = res.notes[ArchGjrT.name]
    assert notes[0].startswith("first fit did not converge"), notes
    assert any("kept the previous fit" in n for n in notes[1:]), notes
