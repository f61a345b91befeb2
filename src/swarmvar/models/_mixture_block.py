"""The mixture VaR/ES solver shared by the tabulated Student-t families, for many days at once.

GarchT's predictive (:mod:`._garch_family`: ``loc_s + scale_s t(nu_s)``) and
BetaSkewTEgarch's (:mod:`._score_driven_family`: ``loc_s + scale_s eps``,
``eps`` Fernandez-Steel skew-t) are both weighted mixtures over particles
whose CDF and density come from the same Student-t table. For ``D`` days
sharing one particle set (scales ``(D, S)``), :func:`halley_block` finds the
mixture VaR of every level by safeguarded Halley steps on one ``(rows,
particles)`` batch of table lookups per step, and the ES by
Rockafellar-Uryasev at the last point evaluated (its partial moment carried
over the last step to second order). What differs between the two families
(the lookup, the density's bend and the per-draw partial moment) is a
:class:`Lookup`; the steps, their bracket and stopping rule and the sums over
particles are here, once.

A day's numbers do not depend on the other days in the block: its sums over
particles are one matrix product per day, of the same rows as the single
family's (:class:`DayRows`, :func:`~.risk.day_dots`), so a block and its
days one at a time agree bit for bit.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .risk import BlockMeasures, day_dots

FloatArray = NDArray[np.float64]


class Lookup(Protocol):
    """One family's CDF, density and partial moment at standardized points ``z`` ``(M, S)``."""

    def step(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, Any]:
        """``(cdf, pdf, bend, carry)`` at ``z``: ``bend`` is minus the density's derivative
        in ``z`` over ``nu + 1``; ``carry`` is whatever :meth:`moment` reuses."""
        ...

    def moment(self, z: FloatArray, cdf: FloatArray, pdf: FloatArray, carry: Any) -> FloatArray:
        """``E[(L - v)^+] / scale`` per draw at ``z`` (before the scale and the floor at 0).

        May write into ``z`` and ``carry``: the solver does not read them afterwards.
        """
        ...


class DayRows:
    """Which day each row of a ``(M, S)`` batch belongs to, for per-day dot products.

    ``days`` ``(M,)`` is sorted. :meth:`dots` is :func:`~.risk.day_dots` with
    the runs of days worked out once for the several products of one step.
    """

    def __init__(self, days: NDArray[np.intp], n_days: int) -> None:
        self.days = days
        cut = np.flatnonzero(np.diff(days)) + 1
        runs = cut.size + 1
        k = days.size // runs
        self.k = k if k * runs == days.size and np.array_equal(
            cut, np.arange(1, runs) * k) else 0
        self.all_days = self.k > 0 and runs == n_days  # days[::k] is 0 .. n_days - 1

    def dots(self, x: FloatArray, w: FloatArray) -> FloatArray:
        if not self.k:
            return day_dots(x, w, self.days)
        k = self.k
        ww = w if self.all_days else w[self.days[::k]]
        # every day has k rows: one stacked product, the same call per day as day_dots
        return (x.reshape(-1, k, x.shape[1]) @ ww[:, :, None]).reshape(-1)


#: Most Halley steps per day and level (two as a rule).
MAX_STEPS = 60


def halley_block(lookup: Lookup, q: FloatArray, k: FloatArray, nu1: FloatArray,
                 loc: FloatArray, scale: FloatArray, weights: FloatArray,
                 alphas: tuple[float, ...]) -> BlockMeasures:
    """Point and per-draw VaR and ES of ``D`` mixtures ``loc + scale[d] * eps`` sharing particles.

    ``q``, ``k`` ``(L, S)`` are each level's per-draw standardized quantile
    ``F^{-1}(1 - alpha)`` and ``E[(q - eps)^+]``; ``nu1`` ``(S,)`` is ``nu + 1``;
    ``loc`` ``(S,)``, ``scale`` ``(D, S)``, ``weights`` ``(D, S)`` normalized.
    Returns :class:`~.risk.BlockMeasures`; ``redo`` lists the days with a
    level whose draws all have the same VaR, or that the steps left unsolved
    in :data:`MAX_STEPS` (not seen), for the single family.
    """
    days, _ = scale.shape
    keep = np.array([1.0 - a for a in alphas])[:, None]
    sc = scale[:, None, :]
    cond_var = -(loc + sc * q)
    cond_es = cond_var + sc * k / keep
    ws = weights / scale
    ws2 = (ws / scale) * nu1
    lo, hi = cond_var.min(axis=2), cond_var.max(axis=2)
    v = (cond_var @ weights[:, :, None])[..., 0]  # each day's (L, S) @ (S,), the same call
    var, es = hi.copy(), np.zeros_like(hi)
    target = 1.0 - np.array(alphas)
    spread = (hi - lo > 1e-15 * np.maximum(1.0, np.abs(hi))).all(axis=1)
    redo = np.flatnonzero(~spread).tolist()
    rd, rl = np.nonzero(np.broadcast_to(spread[:, None], hi.shape))
    for _ in range(MAX_STEPS):
        if not rd.size:
            break
        at = v[rd, rl]
        rows = DayRows(rd, days)
        sc_r = scale[rd]
        z = (-at)[:, None] - loc
        z /= sc_r
        cdf, pdf, bend, carry = lookup.step(z)
        total = rows.dots(cdf, weights)  # P(L > v) per row, decreasing in v
        slope = rows.dots(pdf, ws)  # the mixture density of L at v
        curv = rows.dots(bend, ws2)  # minus its derivative in v
        g = total - target[rl]
        up = g > 0
        lo[rd[up], rl[up]] = at[up]
        hi[rd[~up], rl[~up]] = at[~up]
        lo_r, hi_r = lo[rd, rl], hi[rd, rl]
        den = 2.0 * slope * slope + g * curv
        with np.errstate(divide="ignore", invalid="ignore"):
            nxt = np.where((slope > 0) & (den > 0), at + 2.0 * g * slope / den, np.inf)
        nxt = np.where((lo_r < nxt) & (nxt < hi_r), nxt, 0.5 * (lo_r + hi_r))
        v[rd, rl] = nxt
        done = (np.abs(nxt - at) <= 1e-6 * np.maximum(np.abs(at), 1e-300)) | (
            hi_r - lo_r <= 1e-14 * np.abs(hi_r))
        if done.any():
            # the partial moment per draw at the evaluated point, summed per day over all
            # of the day's rows as the single family sums them
            moment = lookup.moment(z, cdf, pdf, carry)
            moment *= sc_r
            np.maximum(moment, 0.0, out=moment)
            part = rows.dots(moment, weights)
            step = nxt - at
            moved = part - step * total + 0.5 * step * step * slope
            fin_d, fin_l = rd[done], rl[done]
            var[fin_d, fin_l] = nxt[done]
            es[fin_d, fin_l] = nxt[done] + moved[done] / target[fin_l]
        rd, rl = rd[~done], rl[~done]
    redo = sorted({*redo, *rd.tolist()})
    return BlockMeasures(var, es, cond_var, cond_es, redo)
