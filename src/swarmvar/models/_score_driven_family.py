"""BetaSkewTEgarch's one-step predictive from the Student-t table: the fast horizon-1 path.

The predictive is a weighted mixture over particles of ``loc_s + scale_s *
eps`` with ``eps`` Fernandez-Steel skew-t(``nu_s``, ``gamma_s``). Its CDF is
a piecewise rescaled t CDF::

    F(z) = a T(z gamma)               z < 0,   a = 2 / (1 + gamma^2)
    F(z) = 1 - a gamma^2 T(-z/gamma)  z >= 0

and its density ``c f_t(w)`` with ``w = z gamma^(-sgn z)`` and ``c = a
gamma``, so the tabulated t CDF of :mod:`._garch_family` (``_cdf_pdf``:
Catmull-Rom in ``log(1 + |w|)``, absolute error below 1e-7) serves it.
What changes only when the particles move (the table rows, each level's
per-draw quantile ``q_s`` - exact, ``stdtrit`` - and ``k_s = E[(q_s -
eps)^+]``) is formed once per particle set in :class:`SkewTCache`.

:func:`skew_level_measures_block` is :func:`._garch_family.level_measures_block`
for this family: both are :func:`._mixture_block.halley_block` (for ``D``
days sharing one particle set, the mixture VaR of every level by safeguarded
Halley steps on one ``(rows, particles)`` batch of table lookups per step,
the ES by Rockafellar-Uryasev at the last point), with this family's lookup,
density bend and partial moment. A day's numbers do not depend on the other
days in the block, so ``forecast`` (one day) and ``forecast_block`` (many)
run the same code and agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._garch_family import TQuantileCache, _cdf_pdf
from ._mixture_block import halley_block
from ._score_driven_lik import FernandezSteelSkewTFamily
from .risk import BlockMeasures

FloatArray = NDArray[np.float64]


class SkewTCache:
    """Per-particle-set constants of the skew-t predictive, ``nu``, ``gamma`` ``(S,)``."""

    def __init__(self, nu: FloatArray, gamma: FloatArray) -> None:
        self.t = TQuantileCache(nu)
        self.nu, self.gamma = self.t.df, np.asarray(gamma, dtype=float)
        g2 = self.gamma * self.gamma
        self.g2, self.inv_g2 = g2, 1.0 / g2
        self.inv_g = 1.0 / self.gamma
        self.a = 2.0 / (1.0 + g2)  # P(eps < 0) * 2
        self.b = self.a * g2
        self.c = self.a * self.gamma  # the density's factor on f_t(w)
        self.nu1, self.dfm1 = self.t.df1, self.t.dfm1
        # E[(z - eps)^+] for z >= 0 carries this constant: lowerT(0) (c g^2 - a / g),
        # lowerT(0) = int_{-inf}^0 t f_t(t) dt = -nu / (nu - 1) f_t(0)
        self.const_pos = (-self.nu / self.dfm1 * np.exp(self.t.log_norm)
                          * (self.c * g2 - self.a * self.inv_g))
        self._unit = FernandezSteelSkewTFamily(np.zeros_like(self.nu), np.ones_like(self.nu),
                                               self.nu, self.gamma, np.ones_like(self.nu))
        self._stacked: dict[tuple[float, ...], tuple[FloatArray, FloatArray]] = {}

    def levels(self, alphas: tuple[float, ...]) -> tuple[FloatArray, FloatArray]:
        """``q`` and ``k`` ``(L, S)``: per-draw quantiles ``F^{-1}(1 - alpha)`` (exact) and
        ``E[(q - eps)^+] = q (1 - alpha) - E[eps 1{eps < q}]`` (closed form)."""
        hit = self._stacked.get(alphas)
        if hit is None:
            qs, ks = [], []
            for alpha in alphas:
                q = self._unit.standard_quantile(1.0 - alpha)
                qs.append(q)
                ks.append(q * (1.0 - alpha) - self._unit._partial(q))  # noqa: SLF001
            hit = (np.stack(qs), np.stack(ks))
            self._stacked[alphas] = hit
        return hit


def skew_cdf_pdf(cache: SkewTCache, z: FloatArray
                 ) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_] | None]:
    """The skew-t CDF (table), density, ``w^2`` and ``z < 0`` (None: all) at ``z`` ``(M, S)``.

    Elementwise in ``z``; the all-negative case (every VaR of a level above
    the skew-t's ``P(eps < 0)``) skips the right branch, its values the same.
    """
    left = float(z.max()) < 0.0
    if left:
        neg = None
        w = z * cache.gamma
    else:
        neg = z < 0.0
        w = z * np.where(neg, cache.gamma, cache.inv_g)
    tcdf, tpdf, ww = _cdf_pdf(cache.t, w)
    if neg is None:
        cdf = np.multiply(tcdf, cache.a, out=tcdf)
    else:
        cdf = np.where(neg, cache.a * tcdf, 1.0 - cache.b * (1.0 - tcdf))
    pdf = np.multiply(tpdf, cache.c, out=tpdf)
    return cdf, pdf, ww, neg


class _SkewLookup:
    """The skew-t :class:`._mixture_block.Lookup` of a :class:`SkewTCache`."""

    def __init__(self, cache: SkewTCache) -> None:
        self.cache = cache

    def step(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray,
                                           tuple[FloatArray, NDArray[np.bool_] | None]]:
        cache = self.cache
        cdf, pdf, ww, neg = skew_cdf_pdf(cache, z)
        dz = cache.nu + ww
        # minus the density's derivative in z over (nu + 1): pdf z m^2 / (nu + w^2),
        # m = gamma (z < 0) or 1 / gamma
        bend = pdf * z
        bend *= cache.g2 if neg is None else np.where(neg, cache.g2, cache.inv_g2)
        bend /= dz
        return cdf, pdf, bend, (dz, neg)

    def moment(self, z: FloatArray, cdf: FloatArray, pdf: FloatArray,
               carry: tuple[FloatArray, NDArray[np.bool_] | None]) -> FloatArray:
        # E[(L - v)^+] / scale per draw = z F(z) + (nu + w^2) / (nu - 1) pdf m'^2 + C,
        # m' = 1 / gamma, C = 0 (z < 0); m' = gamma, C = const_pos (z >= 0)
        cache, (dz, neg) = self.cache, carry
        moment = pdf * dz
        moment /= cache.dfm1
        if neg is None:
            moment *= cache.inv_g2
        else:
            moment *= np.where(neg, cache.inv_g2, cache.g2)
            moment += np.where(neg, 0.0, cache.const_pos)
        moment += z * cdf
        return moment


def skew_level_measures_block(cache: SkewTCache, loc: FloatArray, scale: FloatArray,
                              weights: FloatArray, alphas: tuple[float, ...]) -> BlockMeasures:
    """Point and per-draw VaR and ES of ``D`` skew-t mixtures sharing particles.

    ``loc`` ``(S,)``, ``scale`` ``(D, S)``, ``weights`` ``(D, S)`` normalized.
    Returns :class:`~.risk.BlockMeasures` (:func:`._mixture_block.halley_block`);
    ``redo`` lists the days the Halley steps left unsolved in 60 steps (not
    seen), for the exact family.
    """
    q, k = cache.levels(alphas)
    return halley_block(_SkewLookup(cache), q, k, cache.nu1, loc, scale, weights, alphas)
