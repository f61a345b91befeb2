"""``book_var`` on asset returns judges each asset's column once, where the frame enters.

``books.check_returns`` marks the memory of the frame it judged and
``book_var`` marks the window it hands its joint agents
(``data.mark_judged``), so the agents' ``fit`` does not judge the columns
again, whatever pandas' ``to_numpy`` shares; prices typed as returns are
still refused, once, naming the column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from swarmvar import book_var, books, data
from swarmvar.data import _returns as returns_module
from swarmvar.errors import InvalidReturns
from swarmvar.types import Book

ASSETS = ("A", "B", "C")


def _returns(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(0.0, 0.01, (n, len(ASSETS))), columns=list(ASSETS),
                        index=pd.bdate_range("2020-01-01", periods=n))


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the columns judged (calls of the rule) from here on."""
    calls: list[int] = []
    rule = returns_module.moves_like_prices

    def counted(x: np.ndarray) -> str | None:
        calls.append(x.size)
        return rule(x)

    monkeypatch.setattr(returns_module, "moves_like_prices", counted)
    return calls


def test_book_var_on_returns_judges_each_column_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch)
    res = book_var(_returns(), Book(ASSETS, (1e5, -5e4, 2e4)), kind="return",
                   agents=["NormalInverseWishart"], window=200, consensus=False,
                   baseline=False)
    assert "NormalInverseWishart" in res.forecasts
    assert calls == [300] * len(ASSETS)  # the frame's columns, at its entry; not the window


def test_book_var_on_a_two_block_frame_judges_each_column_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A column added to a frame is a second block: its ``to_numpy()`` is a fresh copy each
    call, so only ``book_var``'s own mark of the window it hands on spares the agents."""
    r = _returns()[["A", "B"]]
    r["C"] = np.random.default_rng(2).normal(0.0, 0.01, len(r))
    assert not np.shares_memory(r.to_numpy(), r.to_numpy())  # two blocks: a copy each call
    calls = _counted(monkeypatch)
    res = book_var(r, Book(ASSETS, (1e5, -5e4, 2e4)), kind="return",
                   agents=["NormalInverseWishart"], window=200, consensus=False,
                   baseline=False)
    assert "NormalInverseWishart" in res.forecasts
    assert calls == [300] * len(ASSETS)  # not the window's 200 days again


def test_the_checked_frame_is_marked_and_a_copy_is_not() -> None:
    frame = books.check_returns(_returns())
    assert data.is_judged(frame.to_numpy()[-200:]) and data.is_judged(frame.iloc[-200:])
    assert not data.is_judged(frame.to_numpy().copy())


def test_prices_typed_as_returns_are_refused_once(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _returns()
    r["B"] = 0.85 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.0, 0.004, len(r))))
    calls = _counted(monkeypatch)
    with pytest.raises(InvalidReturns, match="the returns of B look like prices or rates"):
        book_var(r, Book(ASSETS, (1e5, -5e4, 2e4)), kind="return",
                 agents=["NormalInverseWishart"], window=200, consensus=False, baseline=False)
    assert len(calls) == 2  # A, then B refused
