"""The Markov-switching agent's one-step predictive: a two-state Student-t mixture per particle.

Particle ``s`` says the next return is ``mu_s + scale_{s,k} T`` with ``T ~
t(nu_s)`` in state ``k`` with probability ``pi_s`` (state 1) or ``1 - pi_s``
(state 2). Its loss ``L = -r`` has tail ``P_s(L > v) = pi_s F(c_1) + (1 -
pi_s) F(c_2)``, ``c_k = (-v - mu_s) / scale_{s,k}``, so

* the per-particle VaR (for the credible intervals) solves ``P_s(L > v) = 1 -
  alpha`` between the two states' own VaRs, and the point VaR solves the
  weighted sum over particles of the same between the smallest and largest
  per-particle VaR, both by Newton's method on the log tail safeguarded by
  bisection (a few steps to 1e-9 relative, below the tabulated CDF's error);
* ``E_s[(L - v)^+] = sum_k p_k scale_k (c_k F(c_k) + f(c_k)(nu + c_k^2)/(nu - 1))``
  gives the ES through the Rockafellar-Uryasev identity, per particle and for
  the mixture.

The t CDF is GarchT's tabulated one (:class:`._garch_family.TQuantileCache`,
absolute error below 1e-7), built once per particle set. Several days on one
particle set (their own state probabilities and weights) are solved together
(:meth:`SwitchingTFamily.block_measures`); every root is iterated on its own
(a converged one is frozen), so a day's numbers do not depend on the others
in its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from ._garch_family import TQuantileCache
from ._garch_family import _cdf_pdf as table_cdf_pdf
from .risk import BlockMeasures, LevelMeasures

FloatArray = NDArray[np.float64]

#: Most safeguarded Newton steps (they take 3-8), and their relative tolerance.
MAX_STEPS = 60
TOL = 1e-9


class SwitchingTFamily:
    """Losses of a weighted set of two-state t mixtures, for ``D`` days on one particle set.

    Parameters
    ----------
    mu : array ``(S,)``
        Location (fraction).
    scale1, scale2 : arrays ``(S,)`` or ``(D, S)``
        The two states' t scales (fractions), per particle (per day).
    prob1 : array ``(S,)`` or ``(D, S)``
        ``P(state 1)`` per particle (per day).
    cache : TQuantileCache
        Of the particles' ``nu`` ``(S,)``.
    weights : array ``(S,)`` or ``(D, S)``
        Non-negative with a positive sum per day (normalized here).

    With one day it is a :class:`~.risk.Family` (``weights``, ``var``,
    ``tail``, ``excess``, ``level_measures``).
    """

    def __init__(self, mu: FloatArray, scale1: FloatArray, scale2: FloatArray,
                 prob1: FloatArray, cache: TQuantileCache, weights: FloatArray) -> None:
        self.mu, self.cache = mu, cache
        sc = np.stack([scale1, scale2], axis=-2)  # (2, S) or (D, 2, S)
        self.scales = sc[None, None] if sc.ndim == 2 else sc[:, None]  # (1 or D, 1, 2, S)
        p1 = np.atleast_2d(prob1)
        self.probs = np.stack([p1, 1.0 - p1], axis=1)[:, None]  # (D, 1, 2, S)
        w = np.atleast_2d(weights)
        self._w: FloatArray = np.asarray(w / w.sum(axis=1, keepdims=True))  # (D, S)

    @property
    def weights(self) -> FloatArray:
        """The first day's normalized weights ``(S,)``."""
        return np.asarray(self._w[0])

    @property
    def day_weights(self) -> FloatArray:
        """Every day's normalized weights ``(D, S)``."""
        return self._w

    def _tail_dens(self, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """At losses ``v`` ``(D, M, S)``: tail ``P_s(L > v)``, density ``(D, M, S)``, and
        per state ``c``, ``F(c)`` ``(D, M, 2, S)``."""
        d, m, size = v.shape
        c = (-v[:, :, None, :] - self.mu) / self.scales  # (D, M, 2, S)
        cdf, pdf, _ = table_cdf_pdf(self.cache, c.reshape(-1, size))
        cdf = cdf.reshape(c.shape)
        pdf = pdf.reshape(c.shape)
        tail = (self.probs * cdf).sum(axis=2)
        dens = (self.probs * pdf / self.scales).sum(axis=2)
        return tail, dens, c, cdf

    def _excess(self, v: FloatArray) -> FloatArray:
        """``E_s[(L - v)^+]`` ``(D, M, S)`` at losses ``v`` ``(D, M, S)``."""
        _, _, c, cdf = self._tail_dens(v)
        nu = self.cache.df
        pdf = np.exp(self.cache.log_norm - self.cache.half_df1 * np.log1p(c * c / nu))
        part = c * cdf + pdf * (nu + c * c) / (nu - 1.0)
        out: FloatArray = np.maximum((self.probs * self.scales * part).sum(axis=2), 0.0)
        return out

    def _cond_var(self, alphas: Sequence[float]) -> FloatArray:
        """Per-particle VaR ``(D, L, S)``: between the two states' own VaRs."""
        q = np.stack([self.cache.level(a)[0] for a in alphas])  # (L, S), negative
        days = self.probs.shape[0]
        v1 = -self.mu - self.scales[:, :, 0] * q
        v2 = -self.mu - self.scales[:, :, 1] * q
        # the states' own VaRs bracket the mixture's (in either order: MS-GARCH's state
        # variances may cross)
        lo = np.broadcast_to(np.minimum(v1, v2), (days, *q.shape))
        hi = np.broadcast_to(np.maximum(v1, v2), (days, *q.shape))
        target = np.log1p(-np.asarray(alphas))[None, :, None]
        v0 = self.probs[:, :, 0] * v1 + self.probs[:, :, 1] * v2

        def tail_dens(v: FloatArray) -> tuple[FloatArray, FloatArray]:
            tail, dens, _, _ = self._tail_dens(v)
            return tail, dens

        return _newton(tail_dens, lo, hi, v0, target)

    def _mixture_var(self, alphas: Sequence[float], cond: FloatArray) -> FloatArray:
        """The point VaR ``(D, L)``: the weighted mixture's quantile."""
        w = self._w[:, None, :]  # (D, 1, S)
        size = self.mu.size
        target = np.log1p(-np.asarray(alphas))[None, :]

        def tail_dens(v: FloatArray) -> tuple[FloatArray, FloatArray]:
            tail, dens, _, _ = self._tail_dens(np.repeat(v[:, :, None], size, axis=2))
            return (tail * w).sum(axis=2), (dens * w).sum(axis=2)

        return _newton(tail_dens, cond.min(axis=2), cond.max(axis=2), (cond * w).sum(axis=2),
                       target)

    def block_measures(self, alphas: Sequence[float]) -> BlockMeasures:
        """Every day's point and per-particle VaR and ES (``(D, L)``, ``(D, L, S)``)."""
        keep = 1.0 - np.asarray(alphas, dtype=float)
        cond_var = self._cond_var(alphas)
        cond_es = cond_var + self._excess(cond_var) / keep[:, None]
        v = self._mixture_var(alphas, cond_var)
        size = self.mu.size
        ex = (self._excess(np.repeat(v[:, :, None], size, axis=2)) * self._w[:, None, :]).sum(
            axis=2)
        return BlockMeasures(v, v + ex / keep, cond_var, cond_es, [])

    # --- the Family protocol (one day) ---------------------------------------------

    def level_measures(self, alphas: Sequence[float]) -> tuple[LevelMeasures, ...]:
        """Point and per-particle VaR and ES at each level (see :class:`~.risk.LevelMeasures`)."""
        m = self.block_measures(alphas)
        return tuple(LevelMeasures(float(m.var[0, i]), float(m.es[0, i]), m.cond_var[0, i],
                                   m.cond_es[0, i]) for i in range(len(alphas)))

    def var(self, alpha: float) -> FloatArray:
        """Per-particle VaR ``(S,)`` at ``alpha``."""
        return np.asarray(self._cond_var((float(alpha),))[0, 0])

    def tail(self, v: float) -> FloatArray:
        return np.asarray(self._tail_dens(np.full((1, 1, self.mu.size), float(v)))[0][0, 0])

    def excess(self, v: float | FloatArray) -> FloatArray:
        vv = np.broadcast_to(np.asarray(v, dtype=float), self.mu.shape)
        return np.asarray(self._excess(vv[None, None, :])[0, 0])


def _newton(tail_dens: Callable[[FloatArray], tuple[FloatArray, FloatArray]], lo: FloatArray,
            hi: FloatArray, v0: FloatArray, log_target: FloatArray) -> FloatArray:
    """Roots of ``log tail(v) = log_target``, ``tail`` decreasing, inside ``[lo, hi]``.

    ``tail_dens(v) -> (tail, -d tail / dv)``, elementwise on arrays shaped as
    ``lo``. Newton's method on the log tail; a step leaving the current
    bracket bisects it instead. Each root stops (frozen) once its step is
    below ``TOL`` relative, independently of the others.
    """
    lo, hi = lo.copy(), hi.copy()
    v = np.clip(v0, lo, hi)
    active = np.ones(v.shape, dtype=bool)
    for _ in range(MAX_STEPS):
        tail, dens = tail_dens(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.log(tail) - log_target
            step = h * tail / dens
        above = h > 0  # tail too heavy: the root is at a larger loss
        lo = np.where(active & above, v, lo)
        hi = np.where(active & ~above, v, hi)
        nxt = v + step
        bad = ~np.isfinite(nxt) | (nxt < lo) | (nxt > hi)
        nxt = np.where(bad, 0.5 * (lo + hi), nxt)
        tol = TOL * np.maximum(np.abs(v), 1e-8)
        done = (np.abs(step) <= tol) | (hi - lo <= tol)
        v = np.where(active, nxt, v)
        active &= ~done
        if not active.any():
            break
    return v
