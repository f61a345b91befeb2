"""A net-short book given by positions: its returns are of the absolute net value, so a loss
is a fall of the return (as for a long book), in data.portfolio and in the runtime's ticks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.data import portfolio
from swarmvar.swarm.ticks import PortfolioSpec


def _frame(a: float, b: float) -> pd.DataFrame:
    """Day 1 the given returns; day 2 none (a one-day series is not a history)."""
    return pd.DataFrame({"A": [a, 0.0], "B": [b, 0.0]},
                        index=pd.to_datetime(["2024-01-02", "2024-01-03"]))


def test_a_net_short_book_loses_when_its_short_rises() -> None:
    positions = {"A": -600_000.0, "B": 100_000.0}  # net -500k
    r = portfolio(_frame(0.02, 0.0), positions=positions)
    pnl = -600_000.0 * math.expm1(0.02)  # the short rises: a loss of ~12.1k
    assert r.iloc[0] < 0
    assert r.iloc[0] == pytest.approx(math.log1p(pnl / 500_000.0), rel=1e-12)
    assert r.attrs["notional"] == 500_000.0
    spec = PortfolioSpec("short", positions=positions)
    assert spec.value_of({"A": 0.02, "B": 0.0}) == pytest.approx(r.iloc[0], rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6).filter(lambda v: abs(v) > 1.0), min_size=2, max_size=2),
       st.floats(-0.02, 0.02), st.floats(-0.02, 0.02))
def test_the_sign_of_a_return_is_the_sign_of_the_pnl(pos: list[float], a: float,
                                                      b: float) -> None:
    if abs(pos[0]) + abs(pos[1]) > 5 * abs(pos[0] + pos[1]):
        return  # levered beyond 5x the net value: its returns can pass the data checks' bounds
    positions = {"A": pos[0], "B": pos[1]}
    pnl = pos[0] * math.expm1(a) + pos[1] * math.expm1(b)
    r = float(portfolio(_frame(a, b), positions=positions).iloc[0])
    tick = PortfolioSpec("p", positions=positions).value_of({"A": a, "B": b})
    assert np.sign(r) == np.sign(pnl) or abs(pnl) < 1e-9
    assert tick == pytest.approx(r, rel=1e-12, abs=1e-15)
