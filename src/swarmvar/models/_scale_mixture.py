"""Per-draw normal scale mixtures: the h-day predictive of an iid Student-t model.

Given its parameters, a sum of ``h`` iid ``mu + sigma T_nu`` returns is
``h mu + sigma sqrt(V) Z`` with ``V = sum_j nu / G_j``, ``G_j ~ chi2(nu)`` and
``Z ~ N(0, 1)`` (each t is a normal whose variance is mixed by an inverse
gamma). So each posterior draw's h-day law is a mixture of normals over
``V``; ``M`` simulated ``V`` per draw give it with the normal part exact
(Rao-Blackwellized): every mixture component carries its whole tail, where
simulated sums would only count the few paths that land there. Twenty
times fewer random numbers than simulating the paths for the same accuracy.

:class:`ScaleMixtureFamily` implements the :class:`~swarmvar.models.risk.Family`
protocol: per-draw VaR by safeguarded Newton steps on all draws at once,
tail probabilities and partial moments in closed form.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def h_day_scales(nu: FloatArray, horizon: int, m: int,
                 rng: np.random.Generator) -> FloatArray:
    """``sqrt(V)`` ``(S, m)``: ``V``, a sum of ``horizon`` draws of ``nu / chi2(nu)`` per row."""
    v = np.zeros((nu.size, m))
    shape = np.broadcast_to((nu / 2.0)[:, None], v.shape)
    for _ in range(horizon):
        v += (nu / 2.0)[:, None] / rng.standard_gamma(shape)  # nu / chi2(nu)
    return np.sqrt(v)


class ScaleMixtureFamily:
    """Loss ``L = -R`` per draw: ``R ~ mean_m N(loc_s, scale_sm^2)``, draws weighted.

    Parameters
    ----------
    loc : array ``(S,)``
        Each draw's mean return (fraction).
    scale : array ``(S, M)``
        The standard deviations of each draw's ``M`` equally weighted components.
    weights : array ``(S,)``
        Posterior weights of the draws (normalized here).
    """

    def __init__(self, loc: FloatArray, scale: FloatArray, weights: FloatArray) -> None:
        self.loc = np.asarray(loc, dtype=float)[:, None]
        self.scale = np.asarray(scale, dtype=float)
        w = np.asarray(weights, dtype=float)
        self._weights: FloatArray = w / w.sum()

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def _z(self, v: float | FloatArray) -> FloatArray:
        vv = np.asarray(v, dtype=float)
        vv = vv[:, None] if vv.ndim == 1 else vv
        z: FloatArray = (vv + self.loc) / self.scale  # loss above v <=> return below -v
        return z

    def tail(self, v: float | FloatArray) -> FloatArray:
        """``P(L > v)`` per draw ``(S,)``."""
        out: FloatArray = special.ndtr(-self._z(v)).mean(axis=1)
        return out

    def excess(self, v: float | FloatArray) -> FloatArray:
        """``E[(L - v)^+]`` per draw ``(S,)``: ``s phi(z) - s z Phi(-z)`` per component."""
        z = self._z(v)
        part = self.scale * (np.exp(-0.5 * z * z) * _INV_SQRT_2PI - z * special.ndtr(-z))
        out: FloatArray = np.maximum(part, 0.0).mean(axis=1)
        return out

    def var(self, alpha: float) -> FloatArray:
        """Per-draw VaR ``(S,)``: the root of ``P(L > v) = 1 - alpha`` in each draw's mixture.

        The root lies between the smallest and largest component VaR; Newton
        steps with the exact density, kept inside that bracket (bisection when
        a step would leave it), to a relative step of 1e-12. A draw stops at
        its first step that small (its Newton point is taken even when it sits
        on the bracket's edge, where rounding puts a converged point; taking
        the bisection there cost ~40 more halvings), and only the draws still
        moving are iterated.
        """
        target = 1.0 - alpha
        q = special.ndtri(alpha)
        comp = -self.loc + self.scale * q  # each component's VaR
        lo, hi = comp.min(axis=1), comp.max(axis=1)
        v: FloatArray = comp.mean(axis=1)
        live = np.arange(v.size)
        for _ in range(100):
            at, loc, scale = v[live], self.loc[live], self.scale[live]
            z = (at[:, None] + loc) / scale  # loss above v <=> return below -v
            g = special.ndtr(-z).mean(axis=1) - target  # decreasing in v
            dens = (np.exp(-0.5 * z * z) * _INV_SQRT_2PI / scale).mean(axis=1)
            low = np.where(g > 0, at, lo[live])
            high = np.where(g > 0, hi[live], at)
            lo[live], hi[live] = low, high
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = at + g / dens
            tol = 1e-12 * np.maximum(np.abs(at), 1e-12)
            done = np.isfinite(newton) & (np.abs(newton - at) <= tol)
            inside = (newton > low) & (newton < high) & np.isfinite(newton)
            nxt = np.where(done | inside, newton, 0.5 * (low + high))
            done |= np.abs(nxt - at) <= tol
            v[live] = nxt
            live = live[~done]
            if not live.size:
                break
        return v
