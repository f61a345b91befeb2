"""Joint agents refuse rows that are not numbers at the one shared check, state unchanged.

``np.array(x, dtype=float)`` reads ``"0.01"`` as 0.01 and ``True`` as 1.0: before
:func:`~swarmvar.data.refuse_non_numbers` (called by ``joint_base.check_matrix``), a
row of strings or flags was absorbed as returns. Fuzzed (hypothesis) over ``fit``,
``update`` and ``forecast_block`` of every joint agent; float input gives bit-for-bit
the numbers it gave before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models.book_baselines import RiskMetrics
from swarmvar.models.joint_base import JointAgent, check_matrix, refuse_non_numbers
from swarmvar.models.joint_copula import CopulaGarchEVT
from swarmvar.models.joint_fhs import FilteredHistorical
from swarmvar.models.joint_niw import NormalInverseWishart

N = 3


def _data(t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_t(5, size=(t, N)) * 0.01


_FITTED: dict[str, JointAgent] = {}


def _fitted(name: str) -> JointAgent:
    """One small fitted agent per class (fitting once keeps the fuzz fast)."""
    if name not in _FITTED:
        agent: JointAgent = {
            "niw": lambda: NormalInverseWishart(lam=0.98, draws=20, paths=50),
            "fhs": lambda: FilteredHistorical(window=250, draws=4, paths=20),
            "copula": lambda: CopulaGarchEVT(window=250, draws=4, paths=20),
            "riskmetrics": lambda: RiskMetrics(paths=50),
        }[name]()
        _FITTED[name] = agent.fit(_data(260), seed=1)
    return _FITTED[name]


AGENTS = ["niw", "fhs", "copula", "riskmetrics"]

_number = st.floats(-0.05, 0.05, allow_nan=False)
_not_number = st.one_of(
    _number.map(repr),                                   # "0.01"
    st.booleans(), st.none(),
    st.just(np.bool_(True)), st.text(max_size=5),
    st.lists(_number, min_size=1, max_size=2),           # a list where a number belongs
    st.complex_numbers(max_magnitude=1, allow_nan=False, allow_infinity=False),
)


@st.composite
def _bad_row(draw: Any) -> Any:
    """Rows ``(D, N)`` as a list, at least one cell not a number, or a wrong width."""
    shape = draw(st.sampled_from(["row", "matrix", "width", "numpy-text", "numpy-bool"]))
    if shape == "width":
        return [[draw(_number) for _ in range(draw(st.sampled_from([1, 2, 4, 7])))]]
    if shape == "numpy-text":
        return [np.array([repr(draw(_number)) for _ in range(N)])]
    if shape == "numpy-bool":
        return [np.array([draw(st.booleans()) for _ in range(N)])]
    cells = [draw(_number) for _ in range(N)]
    cells[draw(st.integers(0, N - 1))] = draw(_not_number)
    return [cells] if shape == "row" else [cells, [draw(_number) for _ in range(N)]]


@pytest.mark.parametrize("name", AGENTS)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(bad=_bad_row())
def test_a_row_that_is_not_numbers_is_refused_and_the_state_is_unchanged(name: str,
                                                                          bad: Any) -> None:
    agent = _fitted(name)
    before = agent.state()
    with pytest.raises(InvalidReturns):
        agent.update(bad[0] if len(bad) == 1 else bad)
    with pytest.raises(InvalidReturns):
        agent.forecast_block(bad, seeds=[0] * len(bad))
    assert agent.state() == before


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize("history", [
    lambda x: x.astype(str),                  # numpy text
    lambda x: [[repr(v) for v in row] for row in x.tolist()],
    lambda x: (x > 0),                        # numpy flags
    lambda x: [[bool(v > 0) for v in row] for row in x.tolist()],
    lambda x: [*x.tolist()[:-1], [0.01, None, 0.0]],
])
def test_a_history_that_is_not_numbers_is_refused_by_fit(name: str, history: Any) -> None:
    agent = _fitted(name)
    before = agent.state()
    with pytest.raises(InvalidReturns, match="must be numbers"):
        agent.fit(history(_data(260, seed=2)))
    assert agent.state() == before


def test_the_message_names_the_type_and_the_cell() -> None:
    with pytest.raises(InvalidReturns, match=r"not str: '0\.01' at \(0, 1\)"):
        check_matrix([[0.0, "0.01", 0.02]], who="NIW")
    with pytest.raises(InvalidReturns, match=r"not true/false: True at \(1,\)"):
        check_matrix([0.0, True, 0.02], row=True)
    with pytest.raises(InvalidReturns, match=r"not NoneType"):
        refuse_non_numbers([[0.0, None]])


def test_float_input_is_unchanged_bit_for_bit() -> None:
    x = _data(300, seed=3)
    for given_as in (x, x.tolist(), list(map(tuple, x.tolist())), x.astype(np.float32)):
        assert np.array_equal(check_matrix(given_as), np.array(given_as, dtype=float))
    ints = np.zeros((40, N), dtype=np.int64)
    assert check_matrix(ints).dtype == np.float64
    a = NormalInverseWishart(lam=0.98, draws=20, paths=50).fit(x[:260], seed=1)
    b = NormalInverseWishart(lam=0.98, draws=20, paths=50).fit(x[:260].tolist(), seed=1)
    assert a.update(x[260]) == b.update(list(x[260])) and a.state() == b.state()


def test_positions_that_are_not_numbers_are_refused() -> None:
    for positions in (("1", "2", "3"), (True, 1.0, 1.0), (None, 1.0, 1.0)):
        with pytest.raises(InvalidParameter, match="positions must be"):
            NormalInverseWishart(positions=positions)  # type: ignore[arg-type]
    assert NormalInverseWishart(positions=(1, 2.5, np.float64(3))).positions == (1.0, 2.5, 3.0)
