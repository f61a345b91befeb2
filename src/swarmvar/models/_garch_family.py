"""GarchT's predictive family with per-particle Student-t constants cached.

The one-step predictive is a weighted mixture of ``loc_s + scale_s * t(nu_s)``
over particles. ``loc`` and ``scale`` change every tick, ``nu`` only when
the particles are moved, so the standard-t quantiles ``q_s(alpha)`` and the
partial-moment factors needed for the conditional ES are computed once per
particle set and level (:class:`TQuantileCache`), not once per forecast.
The mixture VaR is found by safeguarded Newton steps on the exact mixture
CDF (a few vectorized ``stdtr`` calls), which the shared
:func:`~swarmvar.models.risk.mixture_var` uses when the family offers it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from ._garch_lik import Theta
from .risk import StudentTFamily

FloatArray = NDArray[np.float64]


def _t_log_pdf(z: FloatArray, df: FloatArray, log_norm: FloatArray) -> FloatArray:
    result: FloatArray = log_norm - 0.5 * (df + 1.0) * np.log1p(z * z / df)
    return result


class TQuantileCache:
    """Standard Student-t quantiles and ES factors for a fixed set of ``df`` ``(S,)``."""

    def __init__(self, df: FloatArray) -> None:
        self.df = np.asarray(df, dtype=float)
        self.log_norm = (
            special.gammaln((self.df + 1) / 2)
            - special.gammaln(self.df / 2)
            - 0.5 * np.log(self.df * np.pi)
        )
        self._levels: dict[float, tuple[FloatArray, FloatArray]] = {}

    def level(self, alpha: float) -> tuple[FloatArray, FloatArray]:
        """``(q, k)`` ``(S,)``: ``q = F^{-1}(1 - alpha)`` and ``k = E[(q - T)^+]``."""
        hit = self._levels.get(alpha)
        if hit is None:
            q = special.stdtrit(self.df, 1.0 - alpha)
            pdf = np.exp(_t_log_pdf(q, self.df, self.log_norm))
            # E[(q - T)^+] = q F(q) + f(q) (df + q^2) / (df - 1), with F(q) = 1 - alpha
            k = q * (1.0 - alpha) + pdf * (self.df + q * q) / (self.df - 1.0)
            hit = (q, k)
            self._levels[alpha] = hit
        return hit

    def family(self, loc: FloatArray, scale: FloatArray, weights: FloatArray) -> CachedTFamily:
        """The predictive family at the current ``loc``, ``scale`` and ``weights``."""
        return CachedTFamily(loc, scale, weights, self)


class CachedTFamily(StudentTFamily):
    """A :class:`StudentTFamily` whose per-draw quantiles come from a cache."""

    def __init__(
        self, loc: FloatArray, scale: FloatArray, weights: FloatArray, cache: TQuantileCache
    ) -> None:
        super().__init__(loc, scale, cache.df, weights)
        self._cache = cache
        self._own: dict[int, tuple[FloatArray, FloatArray]] = {}

    def var(self, alpha: float) -> FloatArray:
        q, k = self._cache.level(alpha)
        v: FloatArray = -(self.loc + self.scale * q)
        self._own[id(v)] = (v, self.scale * k)
        return v

    def excess(self, v: float | FloatArray) -> FloatArray:
        own = self._own.get(id(v))
        if own is not None and own[0] is v:
            # E[(L - VaR_s)^+] at each draw's own VaR: scale * E[(q - T)^+]
            return own[1].copy()
        return super().excess(v)

    def mixture_var(self, alpha: float) -> float:
        """The ``alpha`` quantile of the mixture loss, by safeguarded Newton steps."""
        cond = self.var(alpha)
        w = self.weights
        lo, hi = float(cond.min()), float(cond.max())
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            return hi
        v = float(w @ cond)
        target = 1.0 - alpha
        for _ in range(60):
            z = (-v - self.loc) / self.scale
            g = float(w @ special.stdtr(self.df, z)) - target
            if g > 0:
                lo = v
            else:
                hi = v
            slope = float(w @ (np.exp(_t_log_pdf(z, self.df, self._cache.log_norm)) / self.scale))
            step = g / slope if slope > 0 else np.inf
            nxt = v + step
            if not lo < nxt < hi:
                nxt = 0.5 * (lo + hi)
            if abs(nxt - v) <= 1e-12 * max(abs(v), 1e-300) or hi - lo <= 1e-14 * abs(hi):
                return nxt
            v = nxt
        return v


def simulate_paths(
    th: Theta, h: FloatArray, horizon: int, paths: int, rng: np.random.Generator
) -> FloatArray:
    """Sums of ``horizon`` future returns, ``(D, paths)``, from ``D`` particles.

    ``th`` and ``h`` (the next conditional variance) are ``(D,)``; the GARCH
    recursion is run forward with fresh unit-variance t shocks.
    """
    d = th.mu.size
    mu, omega, alpha, beta = (np.asarray(p)[:, None] for p in th[:4])
    nu = th.nu[:, None]
    unit = np.sqrt((nu - 2.0) / nu)
    hh = np.broadcast_to(h[:, None], (d, paths)).copy()
    total = np.zeros((d, paths))
    for _ in range(horizon):
        e = np.sqrt(hh) * rng.standard_t(np.broadcast_to(nu, (d, paths))) * unit
        total += mu + e
        hh = omega + alpha * e * e + beta * hh
    return total
