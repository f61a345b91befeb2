"""PortfolioSpec owns the rule for a portfolio's book (what `run --portfolios` checks too):
a mapping of assets to real numbers (not bools, text or lists), finite, not summing to zero.
Anything else is an InvalidParameter naming the portfolio, never a ValueError or
AttributeError from deeper down."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.data import MAX_WEIGHT_GROSS
from swarmvar.errors import InvalidParameter
from swarmvar.swarm.ticks import PortfolioSpec, specs_from

NOT_A_BOOK = st.one_of(st.text(max_size=5), st.lists(st.floats(), max_size=3),
                       st.integers(), st.floats(), st.booleans())
NOT_A_NUMBER = st.one_of(st.booleans(), st.text(max_size=5), st.none(),
                         st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(), st.integers(), max_size=1))
#: weights within +-1e3 (a sum's rounding, ~1e-13, stays far below the "sums to zero" bound,
#: 1e-12 of the largest weight or of 1), integers, and the non-finite values
AMOUNT = st.one_of(st.floats(-1e3, 1e3), st.integers(-10, 10),
                   st.sampled_from([math.nan, math.inf, -math.inf]))


@pytest.mark.parametrize("key", ["weights", "positions"])
@given(book=NOT_A_BOOK)
@settings(max_examples=40, deadline=None)
def test_a_book_that_is_not_a_mapping_is_refused(key: str, book: Any) -> None:
    with pytest.raises(InvalidParameter, match=f"portfolio 'p': {key} must map each asset"):
        PortfolioSpec("p", **{key: book})
    with pytest.raises(InvalidParameter, match="'p'"):  # the same rule through specs_from
        specs_from({"p": {key: book}})


@pytest.mark.parametrize("key", ["weights", "positions"])
@given(amount=NOT_A_NUMBER)
@settings(max_examples=40, deadline=None)
def test_an_amount_that_is_not_a_number_is_refused(key: str, amount: Any) -> None:
    with pytest.raises(InvalidParameter, match=rf"{key}\['b'\] is .*, not a number"):
        PortfolioSpec("p", **{key: {"a": 0.5, "b": amount}})


@given(values=st.lists(AMOUNT, min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_numbers_are_accepted_exactly_when_finite_and_not_summing_to_zero(
        values: list[float]) -> None:
    book = {f"a{i}": v for i, v in enumerate(values)}
    finite = all(math.isfinite(float(v)) for v in values)
    largest = max(1.0, *(abs(float(v)) for v in values)) if finite else math.inf
    gross = math.fsum(abs(float(v)) for v in values) if finite else math.inf
    if (finite and abs(math.fsum(float(v) for v in values)) >= 1e-12 * largest
            and gross <= MAX_WEIGHT_GROSS):
        assert PortfolioSpec("p", weights=book).assets == tuple(book)
    else:  # weights are fractions of value: a gross past MAX_WEIGHT_GROSS is percent
        with pytest.raises(InvalidParameter, match="finite|sum to zero|gross size"):
            PortfolioSpec("p", weights=book)


def test_true_is_not_a_weight_of_one() -> None:
    """Was: accepted as 1.0 (float(True))."""
    with pytest.raises(InvalidParameter, match=r"weights\['a'\] is True, not a number"):
        PortfolioSpec("p", weights={"a": True})
    assert PortfolioSpec("p", weights={"a": 1}).assets == ("a",)  # an int is a number
