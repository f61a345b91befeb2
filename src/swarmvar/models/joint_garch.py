"""GJR-GARCH(1,1) volatility filters of many assets at once, with an exact grid posterior.

For each asset ``i`` the demeaned return ``e_t = r_t - mu_i`` follows

    e_t = s_t z_t,   s_t^2 = w + (a + g 1{e_{t-1} < 0}) e_{t-1}^2 + b s_{t-1}^2,

with ``z`` a unit-variance Student-t(``df``) (Glosten, Jagannathan & Runkle
1993) and variance targeting ``w = v (1 - a - g/2 - b)`` (``v`` the sample
variance). The posterior over ``(a, g, b)`` is computed exactly on a fixed
grid (a uniform prior over :data:`GRID`'s stationary points): the variance
recursion is linear in ``s^2`` given the parameters, so one
``scipy.signal.lfilter`` per value of ``b`` filters every asset and grid
point at once. Online, each new row updates every grid point's variance and
log posterior: the same exact posterior, tick by tick.

The joint agents use it as their per-asset filter: the standardized
residuals ``z_t = e_t / sbar_t`` (``sbar^2`` the posterior-mean variance),
and per posterior draw a grid point per asset, giving that draw's next-day
variance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import signal, special

FloatArray = NDArray[np.float64]

_A = (0.02, 0.05, 0.09)
_G = (0.0, 0.06, 0.14)
_B = (0.78, 0.86, 0.91, 0.94, 0.97)

#: The grid of ``(a, g, b)``: every stationary combination (persistence < 0.995).
GRID: FloatArray = np.array([(a, g, b) for a, g, b in itertools.product(_A, _G, _B)
                             if a + g / 2 + b < 0.995])

#: Degrees of freedom of the filters' standardized Student-t innovations.
FILTER_DF = 7.0


def _log_t_const(df: float) -> float:
    return float(special.gammaln((df + 1) / 2) - special.gammaln(df / 2)
                 - 0.5 * math.log(math.pi * (df - 2)))


class GjrFilters:
    """Per-asset GJR-GARCH filters with their grid posterior (see the module docstring).

    State: ``mu``, ``v`` ``(N,)``; ``logpost`` and ``s2`` ``(G, N)`` (log
    posterior, unnormalized, and the next day's variance per grid point);
    ``last`` ``(N,)``, the posterior-mean variance of the last day filtered.
    """

    def __init__(self, mu: FloatArray, v: FloatArray, logpost: FloatArray, s2: FloatArray,
                 df: float = FILTER_DF) -> None:
        self.mu, self.v, self.logpost, self.s2, self.df = mu, v, logpost, s2, float(df)
        a, g, b = GRID[:, 0:1], GRID[:, 1:2], GRID[:, 2:3]
        self._a, self._g, self._b = a, g, b
        self._w = v[None, :] * (1.0 - a - g / 2 - b)
        self._c = _log_t_const(self.df)

    @classmethod
    def fit(cls, x: FloatArray, df: float = FILTER_DF) -> tuple[GjrFilters, FloatArray]:
        """Filters and posterior from ``x`` ``(T, N)``, and standardized residuals ``(T, N)``."""
        mu = x.mean(axis=0)
        e = x - mu
        v = np.maximum(e.var(axis=0), 1e-12)
        t, n = x.shape
        neg = (e < 0).astype(float)
        e2 = e * e
        c = _log_t_const(df)
        logpost = np.empty((GRID.shape[0], n))
        s2_next = np.empty((GRID.shape[0], n))
        paths: dict[float, FloatArray] = {}
        for beta in np.unique(GRID[:, 2]):
            rows = np.flatnonzero(GRID[:, 2] == beta)
            a, g = GRID[rows, 0][:, None, None], GRID[rows, 1][:, None, None]
            w = v[None, :, None] * (1.0 - a - g / 2 - beta)
            u = w + (a + g * neg.T[None]) * e2.T[None]  # (k, N, T): input of day t -> s2[t+1]
            zi = np.broadcast_to(beta * v[None, :, None], (rows.size, n, 1))
            y, _ = signal.lfilter([1.0], [1.0, -beta], u, axis=-1, zi=zi)
            s2 = np.concatenate([np.broadcast_to(v[None, :, None], (rows.size, n, 1)),
                                 y[:, :, :-1]], axis=-1)  # variance of day t
            z2 = e2.T[None] / s2
            ll = (c - 0.5 * np.log(s2) - (df + 1) / 2 * np.log1p(z2 / (df - 2))).sum(axis=-1)
            logpost[rows] = ll
            s2_next[rows] = y[:, :, -1]
            paths[float(beta)] = s2
        filt = cls(mu, v, logpost, s2_next, df)
        wts = filt.weights()
        sbar2 = np.zeros((n, t))
        for beta, s2 in paths.items():
            rows = np.flatnonzero(GRID[:, 2] == beta)
            sbar2 += (wts[rows][:, :, None] * s2).sum(axis=0)
        return filt, (e / np.sqrt(sbar2.T))

    def weights(self) -> FloatArray:
        """Posterior probabilities of the grid points per asset ``(G, N)``."""
        lp = self.logpost - self.logpost.max(axis=0, keepdims=True)
        w = np.exp(lp)
        out: FloatArray = w / w.sum(axis=0, keepdims=True)
        return out

    def next_variance(self) -> FloatArray:
        """Posterior-mean variance of the next day per asset ``(N,)``."""
        out: FloatArray = (self.weights() * self.s2).sum(axis=0)
        return out

    def update(self, x: FloatArray) -> tuple[FloatArray, float]:
        """Absorb one row ``(N,)``: its standardized residual ``(N,)`` and log predictive density.

        The density is the posterior predictive of the row under independent
        margins (the filters' own), summed over assets.
        """
        e = x - self.mu
        wts = self.weights()
        sbar2 = (wts * self.s2).sum(axis=0)
        z2 = e * e / self.s2
        ll = self._c - 0.5 * np.log(self.s2) - (self.df + 1) / 2 * np.log1p(z2 / (self.df - 2))
        top = ll.max(axis=0)
        dens = float((top + np.log((wts * np.exp(ll - top)).sum(axis=0))).sum())
        self.logpost = self.logpost + ll
        self.logpost -= self.logpost.max(axis=0, keepdims=True)
        self.s2 = self._w + (self._a + self._g * (e < 0)) * (e * e) + self._b * self.s2
        return e / np.sqrt(sbar2), dens

    def draw(self, uniforms: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
        """Grid points per draw and asset from ``uniforms`` ``(S, N)``: ``(S, N)`` indices and
        the parameters ``(S, N, 3)``."""
        cum = np.cumsum(self.weights(), axis=0)  # (G, N)
        cum /= cum[-1:]
        idx = np.empty(uniforms.shape, dtype=np.intp)
        for j in range(uniforms.shape[1]):
            idx[:, j] = np.minimum(np.searchsorted(cum[:, j], uniforms[:, j]), GRID.shape[0] - 1)
        return idx, GRID[idx]

    def arrays(self) -> dict[str, FloatArray]:
        return {"gjr_mu": self.mu, "gjr_v": self.v, "gjr_logpost": self.logpost,
                "gjr_s2": self.s2}

    @classmethod
    def from_arrays(cls, arrays: dict[str, FloatArray], df: float = FILTER_DF) -> GjrFilters:
        return cls(np.asarray(arrays["gjr_mu"], float), np.asarray(arrays["gjr_v"], float),
                   np.asarray(arrays["gjr_logpost"], float),
                   np.asarray(arrays["gjr_s2"], float), df)

    def simulate_paths(self, params: FloatArray, s2_first: FloatArray, steps: int,
                       shocks: Callable[[int], FloatArray]) -> FloatArray:
        """Cumulative log returns over ``steps`` days ``(S, M, N)`` from standardized shocks.

        ``params`` ``(S, N, 3)`` per draw; ``s2_first`` ``(S, N)`` the first
        day's variance; ``shocks(k)`` the unit-variance shocks ``(S, M, N)``
        of day ``k`` (made one day at a time: no ``(h, S, M, N)`` array).
        """
        a, g, b = params[..., 0][:, None, :], params[..., 1][:, None, :], params[..., 2][:, None, :]
        w = self.v[None, None, :] * (1.0 - a - g / 2 - b)
        s2: FloatArray | None = None
        total: FloatArray | None = None
        for k in range(steps):
            z = shocks(k)
            if s2 is None:
                s2 = np.broadcast_to(s2_first[:, None, :], z.shape).copy()
                total = np.zeros(z.shape)
            e = np.sqrt(s2) * z
            total += self.mu + e  # type: ignore[operator]
            s2 = w + (a + g * (e < 0)) * (e * e) + b * s2
        assert total is not None
        return total
