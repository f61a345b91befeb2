"""A net-short book given by positions: its returns are of the absolute net value, so a loss
is a fall of the return (as for a long book), in data.portfolio and in the runtime's ticks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
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
    # levered beyond 5x the net value, its returns can pass the data checks' bounds
    assume(abs(pos[0]) + abs(pos[1]) <= 5 * abs(pos[0] + pos[1]))
    positions = {"A": pos[0], "B": pos[1]}
    pnl = pos[0] * math.expm1(a) + pos[1] * math.expm1(b)
    r = float(portfolio(_frame(a, b), positions=positions).iloc[0])
    tick = PortfolioSpec("p", positions=positions).value_of({"A": a, "B": b})
    assert np.sign(r) == np.sign(pnl) or abs(pnl) < 1e-9
    assert tick == pytest.approx(r, rel=1e-12, abs=1e-15)


def test_one_zero_net_rule_for_the_data_layer_and_the_runtime() -> None:
    """``data.position_fractions`` is the rule both ask: a sum within 1e-12 of the largest
    amount is zero (rounding noise), refused with one message; a net value is |sum|."""
    from swarmvar.data import position_fractions
    from swarmvar.errors import InvalidParameter, InvalidReturns

    w, net = position_fractions([-600_000.0, 100_000.0])
    assert net == 500_000.0 and w.tolist() == [-1.2, 0.2]
    assert PortfolioSpec("s", positions={"A": -600_000.0, "B": 100_000.0}).net_value == net
    assert PortfolioSpec("w", weights={"A": 0.5, "B": 0.5}).net_value is None
    noise = {"A": 1e6, "B": -1e6 + 1e-7}  # sums to 1e-7: noise beside 1e6, not a net value
    with pytest.raises(InvalidReturns, match="positions must be finite and must not sum to zero"
                       ) as from_data:
        portfolio(_frame(0.01, 0.0), positions=noise)
    with pytest.raises(InvalidParameter) as from_spec:
        PortfolioSpec("book", positions=noise)
    assert str(from_spec.value) == f"portfolio 'book': {from_data.value}"
    with pytest.raises(InvalidReturns, match="weights must be finite and must not sum to zero"):
        portfolio(_frame(0.01, 0.0), weights={"A": 0.5, "B": -0.5})
