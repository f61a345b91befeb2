"""What the joint (multi-asset) agents share: the :class:`Agent` life cycle on a matrix.

A joint agent models the log returns of ``N`` assets together: ``fit`` takes
a ``(T, N)`` history, ``update`` one ``(N,)`` row, and :meth:`JointAgent.scenarios`
draws the posterior predictive of the next ``horizon`` days' cumulative log
returns as :class:`Scenarios` — ``S`` posterior draws of the parameters, each
with ``M`` weighted scenarios. The book's P&L in each scenario is exact,
``sum_i p_i (exp(R_i) - 1)``; ``forecast`` turns it into VaR/ES with credible
intervals through the same shared function as every univariate agent
(:func:`~swarmvar.models.risk.risk_measures` of an
:class:`~swarmvar.models.risk.EmpiricalFamily`), so a joint agent's
:class:`~swarmvar.types.Forecast` goes through the same signed consensus.

``positions`` (a constructor argument, currency per asset) sets the book the
plain ``forecast`` reports; empty means equal weights summing to one (losses
as fractions of value). Attribution works on any positions from the same
scenarios (:mod:`swarmvar.models.attribution`).

Scenarios use common random numbers: the same base draws for every
posterior draw, so differences across draws (the credible intervals) are
the parameters', not Monte Carlo noise.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data import (
    MAX_ABS_RETURN,
    is_from_prices,
    is_judged,
    judge_asset_columns,
    mark_judged,
    refuse_non_numbers,
    stale_mark_hint,
)
from ..errors import InvalidParameter, InvalidReturns
from ..types import Forecast
from .base import Agent, Seed
from .risk import check_alphas, risk_measures

FloatArray = NDArray[np.float64]

#: Most scenario values (S x M x N) one call may hold in memory (~200 MB).
MAX_SCENARIO_VALUES = 25_000_000

#: Scenario values (S x M x N) a forecast aims at: large books get fewer paths
#: per draw (never below :data:`MIN_PATHS`), so cost grows about linearly in N.
SCENARIO_BUDGET = 2_000_000
MIN_PATHS = 200


@dataclass(frozen=True)
class Scenarios:
    """Posterior predictive scenarios of the assets' cumulative log returns.

    Attributes
    ----------
    returns : array ``(S, M, N)``
        Log return of each asset over the horizon, in scenario ``m`` of
        posterior draw ``s``.
    weights : array ``(S,)``
        Posterior weights of the draws (sum to one).
    sample_weights : array ``(S, M)`` or None
        Weights of the scenarios within each draw (rows sum to one); None
        means equal.
    horizon : int
        Days the returns cover.
    """

    returns: FloatArray
    weights: FloatArray
    sample_weights: FloatArray | None
    horizon: int

    @property
    def shape(self) -> tuple[int, int, int]:
        s, m, n = self.returns.shape
        return int(s), int(m), int(n)

    def pnl(self, positions: ArrayLike) -> FloatArray:
        """Exact currency P&L ``(S, M)`` of holding ``positions`` ``(N,)``."""
        p = np.asarray(positions, dtype=float)
        out: FloatArray = np.expm1(self.returns) @ p
        return out

    def with_positions_family(self, positions: ArrayLike) -> Any:
        """The book's P&L as a family for :func:`~swarmvar.models.risk.risk_measures`
        (a :class:`~swarmvar.models.attribution.ScenarioFamily`: exact VaR/ES of the pooled
        and of each draw's scenarios)."""
        from .attribution import ScenarioFamily

        return ScenarioFamily(self.pnl(positions), self.sample_weights, self.weights)


def check_matrix(returns: ArrayLike, *, n_assets: int | None = None, min_obs: int = 1,
                 who: str = "this model", row: bool = False) -> FloatArray:
    """A validated ``(T, N)`` float64 copy of asset log returns, naming the first bad cell.

    With ``row``, a 1-D ``(N,)`` row is taken as the ``(1, N)`` matrix (after the copy,
    so a ragged row is still refused as not numbers).
    """
    refuse_non_numbers(returns, who=who)
    try:
        x = np.array(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidReturns(f"asset returns are not numbers: {exc}") from exc
    if row and x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise InvalidReturns(f"{who} needs a (days, assets) matrix of log returns, not shape "
                             f"{x.shape}")
    if n_assets is not None and x.shape[1] != n_assets:
        raise InvalidReturns(f"{who} was fitted on {n_assets} assets, got {x.shape[1]} columns")
    bad = ~np.isfinite(x) | (np.abs(x) > MAX_ABS_RETURN)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InvalidReturns(
            f"return at row {i}, asset {j} is {x[i, j]!r}; returns must be finite log returns "
            f"as fractions with |r| <= {MAX_ABS_RETURN:g} (0.01 = 1%)")
    if x.shape[0] < min_obs:
        raise InvalidReturns(f"{x.shape[0]} days of returns, but {who} needs at least "
                             f"{min_obs}; give a longer history")
    return x


def judge_columns(returns: object, x: FloatArray) -> FloatArray:
    """Refuse a column of ``x`` ``(T, N)`` that moves like prices or rates, unless judged already.

    ``returns`` is what the caller handed in (``x`` its checked copy): a
    DataFrame carrying :func:`~swarmvar.data.mark_from_prices`'s mark, or an
    array or frame :func:`~swarmvar.data.is_judged` takes as judged (a window
    of a book's frame the drivers judged where it entered, a slice of a
    marked frame), is not judged again. The rule and its message are
    :func:`~swarmvar.data.judge_asset_columns`, as ``books.check_returns``
    applies them. ``x`` comes back marked judged.

    Raises
    ------
    InvalidReturns
        Naming the first column that moves like prices (by its name for a
        DataFrame) and what gave it away.
    """
    if not (is_judged(returns) or is_from_prices(returns)):
        judge_asset_columns(x, getattr(returns, "columns", None),
                            stale=stale_mark_hint(returns))
    return mark_judged(x)


def common_normals(seed: Seed, paths: int, n: int) -> FloatArray:
    """The shared base normals ``(M, N)`` of one forecast (common random numbers)."""
    from .base import rng_from

    out: FloatArray = rng_from(seed).standard_normal((paths, n))
    return out


class JointAgent(Agent):
    """An :class:`Agent` of ``N`` assets' joint log returns (see the module docstring).

    Subclasses implement ``_fit_matrix``, ``_update_row``, :meth:`scenarios`
    and the state/prior/posterior methods.
    """

    #: Most assets a joint agent accepts.
    max_assets: int = 500

    positions: tuple[float, ...]
    _n: int = 0

    def _set_positions(self, positions: Sequence[float]) -> tuple[float, ...]:
        odd = [p for p in positions
               if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real)]
        if odd:
            raise InvalidParameter(f"positions must be numbers (currency per asset), not "
                                   f"{type(odd[0]).__name__} {odd[0]!r}")
        pos = tuple(float(p) for p in positions)
        if not all(math.isfinite(p) for p in pos):
            raise InvalidParameter(f"positions must be finite numbers, not {positions!r}")
        return pos

    @property
    def n_assets(self) -> int:
        """Assets the agent was fitted on."""
        self._require_fitted()
        return self._n

    def book_positions(self) -> FloatArray:
        """The positions ``forecast`` reports on (equal weights summing to one if none given)."""
        return self._positions_for(self.n_assets)

    def _positions_for(self, n: int) -> FloatArray:
        """``positions`` as an ``(n,)`` array, equal weights ``1 / n`` if none are given;
        raises :class:`InvalidParameter` unless there is one per asset."""
        if not self.positions:
            return np.full(n, 1.0 / n)
        if len(self.positions) != n:
            raise InvalidParameter(f"{self.name} has {len(self.positions)} positions for {n} "
                                   "assets; give one per asset")
        return np.asarray(self.positions, dtype=float)

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> JointAgent:
        """Posterior from a ``(T, N)`` history of asset log returns (oldest first).

        Each asset's column is judged for looking like prices or rates
        (:func:`judge_columns`) unless the history was judged already.

        Raises
        ------
        InvalidReturns
            Not numbers, not finite, beyond ``|r| <= 1``, fewer than
            ``min_observations`` days, or a column that moves like prices.
        InvalidParameter
            More than ``max_assets`` assets, or positions for another number of them.
        """
        x = judge_columns(returns, check_matrix(returns, min_obs=self.min_observations,
                                                who=self.name))
        if x.shape[1] > self.max_assets:
            raise InvalidParameter(f"{self.name} takes at most {self.max_assets} assets, got "
                                   f"{x.shape[1]}")
        if self.positions and len(self.positions) != x.shape[1]:
            raise InvalidParameter(f"{self.name} has {len(self.positions)} positions for "
                                   f"{x.shape[1]} asset columns")
        self._n = x.shape[1]
        self._fit_matrix(x, seed)
        self._fitted = True
        return self

    def update(self, r: Any) -> float:
        """Absorb one ``(N,)`` row; return its joint log predictive density before absorbing it."""
        self._require_fitted()
        return self._update_row(self._check_row(r, "update"))

    def _check_row(self, r: Any, who: str) -> FloatArray:
        """One checked ``(N,)`` row of asset log returns (a ``(1, N)`` matrix is taken too)."""
        row = check_matrix(r, n_assets=self._n, who=self.name, row=True)
        if row.shape[0] != 1:
            raise InvalidReturns(f"{who} takes one row of {self._n} returns, got shape "
                                 f"{row.shape}")
        out: FloatArray = row[0]
        return out

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        """VaR/ES of the book's currency loss (``positions``) with credible intervals."""
        self._require_fitted()
        levels = check_alphas(alphas)
        scen = self.scenarios(self._check_horizon(horizon), seed=seed)
        family = scen.with_positions_family(self.book_positions())
        return Forecast(self.name, int(horizon), risk_measures(family, levels))

    def forecast_block(self, returns: ArrayLike, alphas: Sequence[float] = (0.99,),
                       horizon: int = 1, *, seeds: Sequence[Seed] | None = None
                       ) -> tuple[list[Forecast], FloatArray]:
        """Forecast, then absorb, each row of ``returns`` ``(D, N)`` in turn (checked first)."""
        self._require_fitted()
        xs = check_matrix(returns, n_assets=self._n, who=self.name)
        day_seeds = self._block_seeds(seeds, xs.shape[0])
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        out, dens = [], np.empty(xs.shape[0])
        for j in range(xs.shape[0]):
            out.append(self.forecast(levels, h, seed=day_seeds[j]))
            dens[j] = self._update_row(xs[j])
        return out, dens

    @abstractmethod
    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        """Fit on a checked ``(T, N)`` matrix."""

    @abstractmethod
    def _update_row(self, x: FloatArray) -> float:
        """Absorb one checked ``(N,)`` row; its log predictive density first."""

    @abstractmethod
    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        """Posterior predictive scenarios of the next ``horizon`` days' cumulative log returns."""

    def _paths_within_budget(self, draws: int, paths: int) -> int:
        """``paths``, lowered for large books to keep ~:data:`SCENARIO_BUDGET` values."""
        return int(min(paths, max(MIN_PATHS, SCENARIO_BUDGET // max(1, draws * self._n))))

    def _scenario_budget(self, draws: int, paths: int) -> None:
        if draws * paths * self._n > MAX_SCENARIO_VALUES:
            raise InvalidParameter(
                f"{draws} draws x {paths} paths x {self._n} assets exceed "
                f"{MAX_SCENARIO_VALUES:,} scenario values; lower draws or paths")
