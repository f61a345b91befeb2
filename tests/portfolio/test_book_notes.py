"""book_var's notes say what api.var's say: the rule in words when there is no consensus,
and the forecasts the weights used (the policy's window, not the whole record)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import swarmvar
from swarmvar import book_api
from swarmvar.books import load_stocks
from swarmvar.consensus import TrackRecord
from swarmvar.consensus.prior_weights import agent_weights
from swarmvar.models import DEFAULT_BOOK_AGENTS
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.types import Book

TWO = ["NormalInverseWishart", "FilteredHistorical"]


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    return load_stocks().iloc[-400:, :3]


@pytest.fixture(scope="module")
def book() -> Book:
    return Book.from_positions({"AAPL": 6e5, "AMD": -2e5, "BAC": 3e5})


def _fake_track(lengths: list[int]) -> Any:
    """A stand-in for the book's backtest (minutes for 1,500 days): ``days`` out-of-sample
    forecasts whose quality differs by agent and, for the last, by day."""

    def track(frame: pd.DataFrame, pos: np.ndarray, names: list[str],
              levels: tuple[float, ...], days: int, window: int, seed: int) -> dict[float, Any]:
        lengths.append(days)
        rng = np.random.default_rng(7)
        gross = float(np.abs(pos).sum())
        r = rng.standard_t(4, days) * 0.01 * gross
        # the last agent's VaR far too small at first, better day by day: a shorter record
        # weighs it more
        scale = np.ones((days, len(names)))
        scale[:, :-1] += 0.3 * np.arange(len(names) - 1)
        scale[:, -1] = np.linspace(0.1, 1.0, days)
        return {a: TrackRecord(agent_ids=tuple(names), returns=r, alpha=a,
                               var=0.03 * gross * scale, es=0.04 * gross * scale)
                for a in levels}

    return track


def test_no_consensus_says_the_rule_in_words(stocks: pd.DataFrame, book: Book) -> None:
    """Was: "no consensus: trimmed_mean(f=1 ...) needs 3 agents, 2 ran"."""
    res = swarmvar.book_var(stocks, book, kind="return", window=250, agents=TWO,
                            baseline=False)
    assert not res.agreed and res.record is None
    assert res.note == ("no consensus: 2 agents produced a forecast, and a trimmed mean "
                        "dropping the highest and the lowest needs at least 3 agents")
    assert "trimmed_mean(" not in res.note and "f=" not in res.note
    assert res.note in res.summary()


def test_equal_weights_say_why(stocks: pd.DataFrame, book: Book) -> None:
    res = swarmvar.book_var(stocks, book, kind="return", window=250, baseline=False)
    assert res.agreed and res.record is None
    assert res.note.startswith("consensus: equal weights (no track record: track_days=0; ")
    assert all(c.method.endswith(", equal)") for c in res.agreed)


@pytest.mark.parametrize("horizon", [1, 2])
def test_the_weights_note_names_the_window_not_the_whole_record(
        monkeypatch: pytest.MonkeyPatch, stocks: pd.DataFrame, book: Book,
        horizon: int) -> None:
    """``track_days=1500`` with the policy's 1,000-forecast window: the weights use the last
    1,000 (the record cut to them gives the same weights), and the note says 1,000.
    Was: "over its last 1500 out-of-sample forecasts"."""
    lengths: list[int] = []
    monkeypatch.setattr(book_api, "_track_records", _fake_track(lengths))
    window = SWARM_POLICY.window
    assert window is not None and window < 1500
    res = swarmvar.book_var(stocks, book, kind="return", window=250, baseline=False,
                            track_days=1500, horizon=horizon, seed=3)
    assert lengths == [1500] and res.record == window
    of = "this book" if horizon == 1 else "this book's 1-day returns"
    assert res.note == (f"consensus: tempered weights from each agent's FZ0 loss over its "
                        f"last {window} forecasts of {of}, out of sample"), res.note
    assert "1500" not in res.note
    assert all(c.method.startswith(SWARM_POLICY.method) for c in res.agreed)  # tempered

    # the note's count is what the weights use: the record cut to the window's length gives
    # the same weights, cut shorter it does not
    names = list(DEFAULT_BOOK_AGENTS)  # the agents book_var ran
    track = _fake_track([])(stocks, np.array(book.positions), names, res.alphas, 1500, 250, 3)

    def last(n: int) -> list[TrackRecord]:
        return [TrackRecord(t.agent_ids, t.returns[-n:], a, t.var[-n:], t.es[-n:])
                for a, t in track.items()]

    full = agent_weights(names, SWARM_POLICY, list(track.values()))
    np.testing.assert_allclose(full, agent_weights(names, SWARM_POLICY, last(window)),
                               rtol=1e-12)
    assert not np.allclose(full, agent_weights(names, SWARM_POLICY, last(window // 2)))
