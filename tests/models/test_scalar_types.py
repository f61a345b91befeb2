"""The single-series agents refuse text and true/false as returns (``float`` would take them).

``float("0.01")`` is 0.01 and ``float(True)`` is 1.0: before this check an
agent's ``update("0.01")`` moved its state and ``fit([True, ...])`` fitted a
series of ones. Floats, ints and numpy floats pass, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.data import as_array
from swarmvar.errors import InvalidReturns
from swarmvar.models import NormalInverseGamma

RNG = np.random.default_rng(7)
SERIES = RNG.normal(0, 0.01, 200)


def _fitted() -> NormalInverseGamma:
    return NormalInverseGamma().fit(SERIES, seed=0)


@given(st.one_of(st.text(max_size=8), st.binary(max_size=8), st.booleans(),
                 st.sampled_from(["0.01", "-0.02", b"0.01", True, False, np.bool_(True)])))
@settings(max_examples=60, deadline=None)
def test_update_refuses_text_and_flags_and_keeps_its_state(value: object) -> None:
    agent = _fitted()
    before = agent.state()
    with pytest.raises(InvalidReturns, match="update needs one number"):
        agent.update(value)  # type: ignore[arg-type]
    assert agent.state() == before


@pytest.mark.parametrize("value", [0.01, -0.02, 0, np.float32(0.01), np.float64(-0.003),
                                   np.int64(0)])
def test_numbers_still_update(value: float) -> None:
    a, b = _fitted(), _fitted()
    a.update(value)
    b.update(float(value))
    assert a.state() == b.state()


@pytest.mark.parametrize("bad", [["0.01"] * 40, [True, False] * 20, np.array([True] * 40),
                                 np.array(["0.01"] * 40)])
def test_fit_and_forecast_block_refuse_text_and_flags(bad: object) -> None:
    with pytest.raises(InvalidReturns, match="must be numbers"):
        NormalInverseGamma().fit(bad, seed=0)  # type: ignore[arg-type]
    agent = _fitted()
    before = agent.state()
    with pytest.raises(InvalidReturns, match="must be numbers"):
        agent.forecast_block(bad, alphas=(0.99,))  # type: ignore[arg-type]
    assert agent.state() == before


def test_missing_values_keep_their_own_message() -> None:
    with pytest.raises(InvalidReturns, match="must be finite"):
        as_array([0.01, None, 0.02])
