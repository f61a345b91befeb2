"""The level solve of many days' GPD tail families at once: :func:`tail_level_measures_block`.

:func:`tail_level_measures_block` gives, bit for bit,
:meth:`GPDTailFamily.level_measures` of ``D`` families (days) where every
draw stays in its smooth GPD tail; :func:`_tail_solve` is
:meth:`GPDTailFamily._solve` for those days, its Halley steps on all their
rows at once; :class:`_Rows` takes per-draw arrays to the solver's rows.

Where it sits: ``GarchEVT.forecast_block`` at horizon 1 (``_forecast_days``,
the days that share the GARCH particles); the days it lists in ``redo`` go
back to :class:`~._gpd_tail_family.GPDTailFamily` one by one. State: it reads
its arguments and writes only arrays it makes (``redo`` is its own, extended
by :func:`_tail_solve`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._gpd_law import _TINY_XI
from .risk import BlockMeasures, day_dots

FloatArray = NDArray[np.float64]


def tail_level_measures_block(u: float, xi: FloatArray, beta: FloatArray, p_u: FloatArray,
                              loc: FloatArray, scale: FloatArray, weights: FloatArray,
                              alphas: tuple[float, ...]) -> BlockMeasures:
    """:meth:`GPDTailFamily.level_measures` of ``D`` families at once, bit for bit, where smooth.

    Day ``d``'s family has draws ``xi[d]``, ``beta[d]``, ``p_u[d]``, affine
    map ``loc`` ``(S,)`` and ``scale[d]``, and normalized weights
    ``weights[d]`` (all ``(D, S)`` but ``loc``). The days where every draw's
    VaR, ES and Halley iterates stay in its smooth GPD tail (the usual case)
    are solved together, each step on all their rows at once and the sums
    over draws one product per day as the single family forms them; the
    others (a draw in the empirical body, ``xi`` ~ 0, a root found by
    bisection) are listed in ``redo``, for the family itself.
    """
    keep = np.array([1.0 - a for a in alphas])[:, None]
    x3, b3, p3, s3 = (a[:, None, :] for a in (xi, beta, p_u, scale))
    redo = np.abs(xi).min(axis=1) < _TINY_XI  # a family with a draw at xi ~ 0
    ratio = keep / p3
    redo |= (ratio > 1.0).any(axis=(1, 2))  # a conditional VaR in the body
    # the family's expressions, evaluated in place (the same operations on the same values)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail_z = np.log(ratio)  # u + b3 * expm1(-x3 log(ratio)) / x3
        tail_z *= -x3
        np.expm1(tail_z, out=tail_z)
        tail_z *= b3
        tail_z /= x3
        tail_z += u
    cond_var = s3 * tail_z  # loc + s3 * tail_z
    cond_var += loc
    over = np.subtract(cond_var, loc, out=tail_z)  # x = (cond_var - loc) / s3
    over /= s3
    redo |= over.min(axis=(1, 2)) < u  # its ES would reach into the body
    over -= u
    np.maximum(over, 0.0, out=over)
    arg = x3 * over
    arg /= b3
    with np.errstate(divide="ignore", invalid="ignore"):
        if float(arg.min()) > -1.0:  # sf = exp(-log1p(arg) / x3), as np.where would keep it
            sf = np.log1p(arg, out=arg)
            np.negative(sf, out=sf)
            sf /= x3
            np.exp(sf, out=sf)
        else:
            sf = np.where(arg > -1.0, np.exp(-np.log1p(np.maximum(arg, -1.0)) / x3), 0.0)
    part = p3 * sf  # p3 * sf * (b3 + x3 * over) / (1 - x3), 0 where sf is
    extent = np.multiply(x3, over, out=over)
    extent += b3
    part *= extent
    part /= 1.0 - x3
    if not float(sf.min()) > 0.0:
        part = np.where(sf > 0, part, 0.0)
    cond_es = np.multiply(s3, part, out=part)  # cond_var + max(s3 * part, 0) / keep
    np.maximum(cond_es, 0.0, out=cond_es)
    cond_es /= keep
    cond_es += cond_var
    var, es = _tail_solve(u, xi, beta, p_u, loc, scale, weights, alphas, cond_var, redo)
    return BlockMeasures(var, es, cond_var, cond_es, np.flatnonzero(redo).tolist())


def _tail_solve(u: float, xi: FloatArray, beta: FloatArray, p_u: FloatArray, loc: FloatArray,
                scale: FloatArray, w: FloatArray, alphas: tuple[float, ...], cond: FloatArray,
                redo: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """:meth:`GPDTailFamily._solve` for the days not in ``redo`` (which it extends)."""
    lo, hi = cond.min(axis=2), cond.max(axis=2)
    v = (cond @ w[:, :, None])[..., 0]  # each day's (L, S) @ (S,), the same call
    var, es = hi.copy(), np.zeros_like(hi)
    target = 1.0 - np.array(alphas)
    redo |= ~(hi - lo > 1e-15 * np.maximum(1.0, np.abs(hi))).all(axis=1)
    rd, rl = np.nonzero(np.broadcast_to(~redo[:, None], hi.shape))
    with np.errstate(divide="ignore"):  # xi = 0 only on days left to redo
        inv_xi = -1.0 / xi
    # per-draw factors of the family's steps, formed as it forms them (the same values)
    xi_beta, inv_scale, xi1_scale = xi / beta, 1.0 / scale, (1.0 + xi) / scale
    factor = w * scale / (1.0 - xi)
    size = xi.shape[1]
    for _ in range(100):
        if not rd.size:
            break
        at = v[rd, rl]
        rows = _Rows(rd)
        over = np.subtract(rows.column(at), loc)  # (at - loc) / scale - u
        over /= rows(scale)
        over -= u
        y = over * rows(xi_beta)
        # the single family takes its smooth path only if all its rows are in the tail
        rough_rows = (over.reshape(-1, size).min(axis=1) < 0.0) | (
            y.reshape(-1, size).min(axis=1) <= -1.0)
        if rough_rows.any():  # those days are redone; the others' step is taken again
            redo[rd[rough_rows]] = True
            keep_rows = ~redo[rd]
            rd, rl = rd[keep_rows], rl[keep_rows]
            continue
        # in place, the family's p_u * exp(log1p(y) * inv_xi), beta + xi * over, tail / den
        # * inv_scale and dens * xi1_scale / den: the same operations on the same values
        tail = np.log1p(y, out=y)
        tail *= rows(inv_xi)
        np.exp(tail, out=tail)
        tail *= rows(p_u)
        den = rows(xi) * over
        den += rows(beta)
        dens = tail / den
        dens *= rows(inv_scale)
        curv = np.multiply(dens, rows(xi1_scale), out=over)
        curv /= den
        total, slope, bend = rows.dots((tail, dens, curv), w)
        g = total - target[rl]
        up = g > 0
        lo[rd[up], rl[up]] = at[up]
        hi[rd[~up], rl[~up]] = at[~up]
        lo_r, hi_r = lo[rd, rl], hi[rd, rl]
        den_h = 2.0 * slope * slope - g * bend
        with np.errstate(divide="ignore", invalid="ignore"):
            nxt = np.where((slope > 0) & (den_h > 0), at + 2.0 * g * slope / den_h, np.inf)
        halley = (lo_r < nxt) & (nxt < hi_r)
        nxt = np.where(halley, nxt, 0.5 * (lo_r + hi_r))
        v[rd, rl] = nxt
        step, scale_at = np.abs(nxt - at), np.maximum(np.abs(at), 1e-300)
        carried = halley & (step <= 1e-6 * scale_at)
        exact = ~carried & ((step <= 1e-9 * scale_at) | (hi_r - lo_r <= 1e-9 * scale_at))
        redo[rd[exact]] = True  # the family takes the partial moment at the root itself
        if carried.any():
            # the family's _smooth_excess at the evaluated points recomputes over and tail
            # as above, and beta + xi * over is den: reuse them
            cd, cl, d = rd[carried], rl[carried], (nxt - at)[carried]
            e = day_dots((tail * den).reshape(-1, size)[carried], factor, cd)
            moved = e - d * total[carried] + 0.5 * d * d * slope[carried]
            var[cd, cl] = nxt[carried]
            es[cd, cl] = nxt[carried] + moved / target[cl]
        left = ~carried & ~exact & ~redo[rd]
        rd, rl = rd[left], rl[left]
    redo[rd] = True  # no convergence in 100 steps (not seen)
    return var, es


class _Rows:
    """Per-draw arrays ``(D, S)`` taken to the solver's rows (``rd``: each row's day).

    ``(days, 1, S)`` when every active day has the same number ``k`` of rows
    (the rows' arrays are then ``(days, k, S)``), else gathered row by row
    ``(M, S)``. The steps are elementwise, so the values are the same either way.
    """

    def __init__(self, rd: NDArray[np.intp]) -> None:
        cut = np.flatnonzero(np.diff(rd)) + 1
        runs = cut.size + 1
        k = rd.size // runs
        self.k = k if k * runs == rd.size and np.array_equal(cut, np.arange(1, runs) * k) else 0
        self.rd = rd
        self.days = rd[::k] if self.k else rd

    def __call__(self, a: FloatArray) -> FloatArray:
        return a[self.days][:, None, :] if self.k else a[self.rd]

    def column(self, x: FloatArray) -> FloatArray:
        """Values per row ``(M,)`` shaped to broadcast against the draws."""
        return x.reshape(-1, self.k, 1) if self.k else x[:, None]

    def dots(self, arrays: tuple[FloatArray, ...], w: FloatArray) -> list[FloatArray]:
        """:func:`~swarmvar.models.risk.day_dots` of each of ``arrays`` (the rows' values).

        The same products, with the days' weights gathered once.
        """
        size = w.shape[1]
        if not self.k:
            return [day_dots(a.reshape(-1, size), w, self.rd) for a in arrays]
        wk = w[self.days][:, :, None]
        return [(a.reshape(-1, self.k, size) @ wk).reshape(-1) for a in arrays]
