"""A portfolio's refused weight or position is named by its asset and value (was: the list
of all values, ``[nan, 1.0] holds a non-finite number``), and an integer past the largest
float is an InvalidParameter (was: a bare OverflowError from ``float(v)``)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter
from swarmvar.swarm.ticks import PortfolioSpec

#: anything a mapping's values may be: finite and non-finite floats, integers past a float,
#: numpy scalars, complex numbers, bools, text, None
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10), st.integers(min_value=-10**400, max_value=10**400),
    st.sampled_from([np.float32(np.inf), np.float64(np.nan), np.int64(3), np.float32(0.5),
                     np.complex128(1 + 1j), 1 + 0j, np.bool_(True)]),
    st.builds(lambda n: np.timedelta64(n, "D"), st.integers(0, 5)),
    st.booleans(), st.text(max_size=3), st.none())


def _bad(value: Any) -> bool:
    """Whether one value alone is refused (not a finite real number)."""
    if isinstance(value, (bool, np.bool_, complex, np.complexfloating, np.timedelta64)) or \
            not isinstance(value, (int, float, np.number)):
        return True
    try:
        return not math.isfinite(float(value))
    except OverflowError:
        return True


@pytest.mark.parametrize("key", ["weights", "positions"])
@pytest.mark.parametrize(("value", "shown"), [
    (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), (np.float32(np.inf), "inf"),
    (10**400, "100000000000... (401 characters)"),
    (-(10**400), "-10000000000... (402 characters)")])
def test_a_non_finite_amount_names_its_asset_and_value(key: str, value: Any,
                                                       shown: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        PortfolioSpec("p", **{key: {"A": 1.0, "B": value}})
    message = str(info.value)
    assert message.startswith(f"portfolio 'p': {key}['B'] is ") and shown in message, message
    assert "[1.0," not in message and "must be finite" in message


def test_a_sum_past_the_largest_float_is_refused() -> None:
    """Each finite, their sum infinite: refused before numpy's overflow warning."""
    with pytest.raises(InvalidParameter, match=r"portfolio 'p': its positions sum past"):
        PortfolioSpec("p", positions={"A": 1e308, "B": 1e308})
    assert PortfolioSpec("p", positions={"A": 1e308, "B": -5e307}).assets == ("A", "B")


@pytest.mark.parametrize("key", ["weights", "positions"])
@given(values=st.dictionaries(st.text(max_size=3), VALUE, min_size=1, max_size=4))
@settings(max_examples=150, deadline=None)
def test_every_refusal_names_the_portfolio(key: str, values: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or cast warning on the way either
        try:
            spec = PortfolioSpec("p", **{key: values})
        except InvalidParameter as exc:
            message = str(exc)
            assert message.startswith("portfolio 'p'"), message
            first = next((a for a, v in values.items() if _bad(v)), None)
            if first is not None:  # the first refused value, by its asset
                assert f"{key}[{first!r}] is " in message, message
            return
    assert not any(_bad(v) for v in values.values())
    fractions = spec._vector()
    assert fractions.shape == (len(values),) and np.all(np.isfinite(fractions))


def test_a_numpy_scalar_is_named_as_the_number_it_is() -> None:
    import numpy as np
    import pytest

    from swarmvar.errors import InvalidParameter
    from swarmvar.swarm import PortfolioSpec

    with pytest.raises(InvalidParameter) as info:
        PortfolioSpec("p", weights={"A": np.float32("inf"), "B": 1.0})
    message = str(info.value)
    assert "weights['A'] is inf; weights must be finite" in message, message
    assert "np.float32" not in message and "sum to zero" not in message
