"""Property-based fuzzing of the agents' public ``fit`` as it judges its data.

``fit`` of a plain array now judges it for looking like prices or rates
(:func:`swarmvar.data.moves_like_prices`, the drivers' rule): random finite
arrays - noise of any size, subnormal values, one-signed walks, pegs, walks
with a tiny or huge first value - never raise anything but a
:class:`~swarmvar.errors.SwarmVarError`, and a univariate agent refuses an
array for looking like prices exactly when :func:`swarmvar.data.as_array`
(the door of ``var`` and ``backtest``) does. A view of an array is judged
(:func:`swarmvar.data.is_judged`) exactly when every one of its elements lies in a
view marked (:func:`swarmvar.data.mark_judged`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from swarmvar.data import as_array, is_judged, mark_judged, moves_like_prices
from swarmvar.errors import ConvergenceWarning, InvalidReturns, SwarmVarError
from swarmvar.models import agent_class, book_agent_class

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
small = st.floats(-1.0, 1.0, allow_subnormal=True)


@st.composite
def walks(draw: st.DrawFn) -> np.ndarray:
    """A level that wanders or sits (a price or rate), of any size below 1, or its negative."""
    n = draw(st.integers(1, 300))
    level = draw(st.floats(1e-300, 1.0))
    sd = draw(st.sampled_from([0.0, 1e-9, 1e-5, 0.003, 0.03, 0.3]))
    seed = draw(st.integers(0, 2**32 - 1))
    x = level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, sd, n)))
    x = np.minimum(x, 1.0)
    if draw(st.booleans()):
        x = -x
    if draw(st.booleans()):  # one odd value: subnormal, zero or the far end
        x[draw(st.integers(0, n - 1))] = draw(st.sampled_from([5e-324, 0.0, 1.0, -1.0]))
    return x


arrays = st.one_of(
    hnp.arrays(np.float64, st.integers(0, 300), elements=finite),
    hnp.arrays(np.float64, st.integers(0, 300), elements=small),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=40), elements=small),
    walks(),
)


def _price_refusal(exc: BaseException) -> bool:
    return "look like prices or rates" in str(exc) or "looks like prices or rates" in str(exc)


def _with_subnormal(level: float, n: int = 100) -> np.ndarray:
    """A price-like walk with one subnormal value (its step overflowed a division once)."""
    x = level * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 0.003, n)))
    x[5] = 5e-324
    return x


@FUZZ
@given(st.sampled_from(["NormalInverseGamma", "BayesianBootstrap"]), arrays)
@example("NormalInverseGamma", _with_subnormal(0.8))
@example("NormalInverseGamma", np.append(_with_subnormal(0.8), 5.0))
def test_fit_of_random_arrays_refuses_as_the_door_does(name: str, x: np.ndarray) -> None:
    agent = agent_class(name)()
    try:
        door: BaseException | None = None
        as_array(x, min_obs=agent.min_observations)
    except InvalidReturns as exc:
        door = exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent.fit(x, seed=0)
    except SwarmVarError as exc:
        assert str(exc) and not agent.is_fitted
        # refused for looking like prices exactly when the door refuses it so
        assert _price_refusal(exc) == (door is not None and _price_refusal(door))
        if door is not None:
            assert str(exc) == str(door) or not _price_refusal(exc)
        return
    assert door is None
    assert x.ndim == 1 and moves_like_prices(x) is None


@FUZZ
@given(st.sampled_from(["NormalInverseWishart", "RiskMetrics"]),
       st.one_of(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=60),
                            elements=small),
                 st.tuples(walks(), st.integers(1, 3)).map(
                     lambda w: np.column_stack([w[0]] * w[1]))))
def test_joint_fit_of_random_matrices_raises_only_swarmvar_errors(name: str,
                                                                  x: np.ndarray) -> None:
    agent = book_agent_class(name)()
    try:
        agent.fit(x, seed=0)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert x.ndim == 2 and all(moves_like_prices(x[:, j]) is None for j in range(x.shape[1]))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(finite, st.integers(-10**6, 10**6)), max_size=80))
def test_fit_of_random_lists_raises_only_swarmvar_errors(values: list[Any]) -> None:
    agent = agent_class("NormalInverseGamma")()
    try:
        agent.fit(values, seed=0)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert moves_like_prices(np.asarray(values, dtype=float)) is None


@st.composite
def cuts(draw: st.DrawFn, n: int) -> slice:
    """A slice of ``n`` items: any start, stop and step (negative too)."""
    start = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
    stop = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
    return slice(start, stop, draw(st.sampled_from([None, 1, 2, 3, -1, -2])))


@st.composite
def marked_views(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[slice, ...]], tuple[slice, ...]]:
    """An array (C or F order, 1-D or 2-D), the views of it marked, and a view to ask about."""
    shape = draw(st.one_of(st.tuples(st.integers(1, 60)),
                           st.tuples(st.integers(1, 40), st.integers(1, 40))))
    base = np.zeros(shape, order=draw(st.sampled_from(["C", "F"])))

    def view() -> tuple[slice, ...]:
        return tuple(draw(cuts(n)) for n in shape)

    return base, [view() for _ in range(draw(st.integers(1, 3)))], view()


@FUZZ
@given(marked_views(), st.booleans())
def test_a_view_is_judged_exactly_when_its_bytes_were_marked(
        case: tuple[np.ndarray, list[tuple[slice, ...]], tuple[slice, ...]], back: bool) -> None:
    """Byte ranges (data.mark_judged): a view is judged when every element it shows lies in a
    marked view, and only then - other columns, earlier rows, the gaps of a strided mark."""
    base, marks, asked = case
    # each element's number, laid out as base's memory is (base.ravel(order="K") order)
    cell = np.empty(base.shape, dtype=np.int64)
    cell.ravel(order="K")[:] = np.arange(base.size)
    for m in marks:
        mark_judged(base[m])
    marked = set().union(*(cell[m].ravel().tolist() for m in marks))
    view = base[asked][::-1] if back and base[asked].ndim == 1 else base[asked]
    assert is_judged(view) == (set(cell[asked].ravel().tolist()) <= marked)
