"""Weights typed in percent (60 and 40) are refused, not read as a book levered 100 times.

Weights are fractions of value: the one rule (``data.position_fractions``) holds a weights
book's gross size ``sum |w|`` to ``MAX_WEIGHT_GROSS`` (10) for ``data.portfolio``, the
runtime's ``PortfolioSpec`` and so a ``Swarm``'s start; legit long/short and levered
weights pass, and positions are not bound.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from swarmvar import data
from swarmvar.data import MAX_WEIGHT_GROSS, WEIGHTS_HINT, position_fractions
from swarmvar.errors import InvalidParameter, InvalidReturns, SwarmVarError
from swarmvar.swarm.ticks import PortfolioSpec


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2020-01-01", periods=120)
    return pd.DataFrame(rng.normal(0.0, 0.01, (120, 2)), index=days, columns=["KO", "PG"])


@pytest.mark.parametrize("weights", [{"KO": 60, "PG": 40}, {"KO": 130, "PG": -30},
                                     {"KO": 6.0, "PG": 4.5}])
def test_percent_weights_are_refused_by_portfolio_and_spec(weights: dict[str, float]) -> None:
    with pytest.raises(InvalidReturns) as from_data:
        data.portfolio(_frame(), weights=weights)
    text = str(from_data.value)
    assert WEIGHTS_HINT in text and "divide by 100" in text and "give positions" in text
    with pytest.raises(InvalidParameter) as from_spec:
        PortfolioSpec("p", weights=weights)
    assert str(from_spec.value) == f"portfolio 'p': {text}"


@pytest.mark.parametrize("weights", [{"KO": 0.6, "PG": 0.4}, {"KO": 1.3, "PG": -0.3},
                                     {"KO": 1.2, "PG": 0.8}, {"KO": 3.0},
                                     {"KO": 5.5, "PG": -4.5}])
def test_fraction_weights_long_short_and_levered_pass(weights: dict[str, float]) -> None:
    frame = _frame()
    out = data.portfolio(frame, weights=weights)
    w = np.array([weights.get(c, 0.0) for c in frame.columns])
    np.testing.assert_allclose(out.to_numpy(), np.log1p(np.expm1(frame.to_numpy()) @ w))
    assert PortfolioSpec("p", weights=weights).assets == tuple(weights)


def test_the_bound_is_on_the_gross_size_and_positions_are_not_bound() -> None:
    edge = MAX_WEIGHT_GROSS / 2
    assert position_fractions([edge, edge], positions=False)[1] == MAX_WEIGHT_GROSS
    with pytest.raises(InvalidReturns, match="gross size"):
        position_fractions([edge + 0.5, -edge + 0.49], positions=False)  # sum 0.99, gross 10.01
    w, net = position_fractions([60.0, 40.0])  # currency positions: fractions of 100
    assert net == 100.0 and w.tolist() == [0.6, 0.4]


def test_non_finite_amount_is_named_without_the_zero_sum_clause() -> None:
    with pytest.raises(InvalidReturns) as err:
        position_fractions([0.5, float("inf")], positions=False, what="weights")
    assert "weights must be finite numbers" in str(err.value)
    assert "sum to zero" not in str(err.value)


def test_a_swarm_with_percent_weights_does_not_start(tmp_path: object) -> None:
    from swarmvar.swarm import RoleConfig, Swarm

    with pytest.raises(SwarmVarError, match="divide by 100"):
        Swarm({"p": {"weights": {"KO": 60, "PG": 40}}}, home=tmp_path, agents=["StudentT"],
              window=100, fsync=False, roles=RoleConfig.quiet())


def test_a_book_from_weights_in_percent_is_refused() -> None:
    import pytest

    from swarmvar.errors import InvalidBook
    from swarmvar.types import Book

    with pytest.raises(InvalidBook, match="if these are percent, divide by 100"):
        Book.from_weights({"KO": 60, "PG": 40}, 1e6)
    book = Book.from_weights({"KO": 1.3, "PG": -0.3}, 1e6)  # a 130/30 book: gross 1.6
    assert book.as_dict() == {"KO": 1.3e6, "PG": -0.3e6}


def test_weights_whose_sum_overflows_are_refused_not_a_crash() -> None:
    import pytest

    from swarmvar.data import position_fractions
    from swarmvar.errors import InvalidBook, InvalidReturns
    from swarmvar.types import Book

    with pytest.raises(InvalidBook, match="past the largest float"):
        Book.from_weights({"A": 1e308, "B": 1e308}, 1.0)
    for positions in (False, True):  # positions too: not fractions of an infinite net
        with pytest.raises(InvalidReturns, match="sum past the largest float"):
            position_fractions([1e308, 1e308], positions=positions)
    with pytest.raises(InvalidBook, match=r"gross size of 10\.0000001 "):
        Book.from_weights({"A": 5.0000001, "B": 5.0}, 1.0)
