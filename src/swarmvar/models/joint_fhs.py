"""``FilteredHistorical``: filtered historical simulation with a Bayesian bootstrap (joint).

Each asset's returns pass a GJR-GARCH(1,1) filter with an exact grid
posterior (:mod:`~swarmvar.models.joint_garch`), giving standardized
residual *vectors* ``z_t`` ``(N,)`` that keep the assets' dependence as it
happened (Barone-Adesi, Giannopoulos & Vosper 1999). The posterior over the
distribution of ``z`` is Rubin's (1981) Bayesian bootstrap: Dirichlet(1, ..., 1)
weights over the stored vectors; the posterior over each filter is its
grid posterior.

Posterior draw ``s``: Dirichlet weights ``w_s`` over the last ``window``
residual vectors and one grid point per asset (its next-day variance
``s2_s``). Given the draw, the next day's log return is ``mu + sqrt(s2_s) z_t``
with probability ``w_s[t]``: the one-day scenarios are every stored vector,
weighted, with no Monte Carlo error inside a draw. Over ``h > 1`` days each
path draws a stored vector per day (by ``w_s``) and runs the draw's
GJR recursions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter, InvalidState
from .base import Seed, rng_from
from .joint_base import SCENARIO_BUDGET, FloatArray, JointAgent, Scenarios
from .joint_garch import GjrFilters


class FilteredHistorical(JointAgent):
    """Joint FHS agent (see the module docstring).

    Parameters
    ----------
    window : int
        Most residual vectors kept (the oldest drop as new days arrive).
    draws : int
        Posterior draws of a forecast.
    paths : int
        Scenarios per draw for horizons beyond one day.
    positions : tuple of float
        The book ``forecast`` reports.
    """

    name = "FilteredHistorical"
    min_observations = 250

    def __init__(self, window: int = 1000, draws: int = 100, paths: int = 500,
                 positions: tuple[float, ...] = ()) -> None:
        if int(window) < 100 or int(draws) < 2 or int(paths) < 10:
            raise InvalidParameter("window must be >= 100, draws >= 2 and paths >= 10")
        self.window, self.draws, self.paths = int(window), int(draws), int(paths)
        self.positions = self._set_positions(positions)

    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        self._filters, z = GjrFilters.fit(x)
        self._z = z[-self.window:]

    def _update_row(self, x: FloatArray) -> float:
        z, dens = self._filters.update(x)
        self._z = np.vstack([self._z, z[None]])[-self.window:]
        return dens

    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        self._require_fitted()
        h = self._check_horizon(horizon)
        rng = rng_from(seed)
        t, n = self._z.shape
        # one-day scenarios are every stored vector per draw: large books get fewer draws
        s = self.draws if h > 1 else int(min(self.draws, max(20, SCENARIO_BUDGET // (t * n))))
        w = rng.dirichlet(np.ones(t), size=s)  # (S, T) Bayesian bootstrap
        f = self._filters
        idx, params = f.draw(rng.random((s, n)))
        s2 = f.s2[idx, np.arange(n)[None, :]]  # (S, N): each draw's next-day variance
        if h == 1:
            self._scenario_budget(s, t)
            r = f.mu + np.sqrt(s2)[:, None, :] * self._z[None, :, :]
            return Scenarios(r, np.full(s, 1.0 / s), w, 1)
        paths = self._paths_within_budget(s, self.paths)
        self._scenario_budget(s, paths * 2)
        u = rng.random((h, paths))  # common across draws
        cum = np.cumsum(w, axis=1)
        cum /= cum[:, -1:]
        picks = np.empty((h, s, paths), dtype=np.intp)
        for k in range(s):
            picks[:, k, :] = np.minimum(np.searchsorted(cum[k], u), t - 1)
        r = f.simulate_paths(params, s2, h, lambda k: self._z[picks[k]])
        return Scenarios(r, np.full(s, 1.0 / s), None, h)

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        from .joint_garch import GRID

        rng = rng_from(seed)
        return {"grid": GRID[rng.integers(0, GRID.shape[0], size=n)]}

    def simulate(self, params: Mapping[str, Any], n: int, *, seed: Seed = None
                 ) -> NDArray[np.float64]:
        """``n`` days of one asset from GJR-GARCH(``params["grid"]``) with Student-t(7) shocks."""
        a, g, b = (float(v) for v in np.asarray(params["grid"], float).reshape(3))
        rng = rng_from(seed)
        z = rng.standard_t(7.0, size=n) / np.sqrt(7.0 / 5.0)
        s2, w, out = 1e-4, 1e-4 * (1 - a - g / 2 - b), np.empty(n)
        for i in range(n):
            e = np.sqrt(s2) * z[i]
            out[i] = e
            s2 = w + (a + g * (e < 0)) * e * e + b * s2
        return out

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        self._require_fitted()
        from .joint_garch import GRID

        wts = self._filters.weights()
        return {"grid_weights": wts, "grid": GRID}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"n": self._n}, {"z": self._z, **self._filters.arrays()}

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            self._n = int(scalars["n"])
            self._z = np.asarray(arrays["z"], float)
            self._filters = GjrFilters.from_arrays(dict(arrays))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"FilteredHistorical state is incomplete: {exc}") from exc
        if self._z.ndim != 2 or self._z.shape[1] != self._n:
            raise InvalidState("FilteredHistorical state arrays do not match its asset count")
