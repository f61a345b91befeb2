"""A joint agent seen as a forecaster of one series: the book's P&L per unit of gross exposure.

The backtest driver (:func:`swarmvar.validation.backtest`) runs forecasters
of one series. A book's series is its daily currency P&L divided by its
gross exposure ``G = sum |p_i|`` (fractions; a long-only book's simple
return), ``y_t = sum_i p_i (exp(r_ti) - 1) / G``, and its loss ``-y_t`` is
what the driver scores. :class:`BookRow` wraps a joint agent fitted on the
asset matrix with positions ``p / G``, so its forecasts are of that same
loss. The driver hands a row windows of ``y``; the row keeps a cursor on
the asset matrix and checks that every window and return it is given is
the book's own at that cursor (a misuse raises, it cannot silently shift).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter
from ..types import Forecast
from .base import Seed
from .joint_base import FloatArray, JointAgent


def book_series(assets: FloatArray, positions: FloatArray) -> tuple[FloatArray, float]:
    """``(y, G)``: the book's daily P&L per unit gross ``(T,)`` and its gross exposure."""
    gross = float(np.abs(positions).sum())
    if not gross > 0:
        raise InvalidParameter("the book has no exposure (every position is zero)")
    y: FloatArray = np.expm1(assets) @ (positions / gross)
    return y, gross


class BookRow:
    """A :class:`~swarmvar.models.joint_base.JointAgent` as a forecaster of ``y`` (see above).

    ``update`` returns NaN: the agent's log score is of the asset vector, not
    of ``y``, and is not comparable with a univariate row's.
    """

    def __init__(self, agent: JointAgent, assets: FloatArray, positions: FloatArray) -> None:
        self.assets = np.asarray(assets, dtype=float)
        self.series, gross = book_series(self.assets, np.asarray(positions, float))
        params = agent.params()
        params["positions"] = tuple((np.asarray(positions, float) / gross).tolist())
        self.agent = type(agent)(**params)
        self.name = agent.name
        self._t = -1

    def _check_window(self, returns: ArrayLike, end: int) -> None:
        x = np.asarray(returns, dtype=float)
        start = end - x.size
        if start < 0 or not np.array_equal(x, self.series[start:end]):
            raise InvalidParameter(f"{self.name}: the window given is not the book's series "
                                   f"ending at day {end}; a BookRow follows its book's days")

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> BookRow:
        n = int(np.size(returns))
        self._check_window(returns, n)
        self.agent.fit(self.assets[:n], seed=seed)
        self._t = n
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> BookRow:
        self._check_window(returns, self._t)
        n = int(np.size(returns))
        self.agent.refit(self.assets[self._t - n:self._t], seed=seed)
        return self

    def update(self, r: float) -> float:
        t = self._t
        if not 0 <= t < self.series.size or not math.isclose(float(r), float(self.series[t]),
                                                              rel_tol=0, abs_tol=0):
            raise InvalidParameter(f"{self.name}: update got {r!r}, not the book's day {t}")
        self.agent.update(self.assets[t])
        self._t = t + 1
        return float("nan")

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        return self.agent.forecast(alphas, horizon, seed=seed)

    def __deepcopy__(self, memo: dict[int, object]) -> BookRow:
        out = copy.copy(self)
        out.agent = copy.deepcopy(self.agent, memo)
        return out  # the (read-only) data arrays are shared
