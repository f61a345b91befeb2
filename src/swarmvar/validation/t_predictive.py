"""Student-t predictives of a backtest row, for the Acerbi-Szekely Z2 simulation.

Sign convention: losses ``L = -r``, VaR and ES are positive losses at
confidence ``alpha``.

* :func:`student_t_sampler` draws losses ``loc_t + scale_t T_t``,
  ``T_t ~ t(df_t)``; with ``above`` (the VaRs) the draws are censored from
  below and it returns a :class:`CensoredStudentT`, which inverts the CDF at
  one uniform per loss and computes the t quantile only beyond the floor;
  ``_QuantileGrid`` brackets those quantiles for
  :mod:`~swarmvar.validation.z2`'s censored count.
* :func:`matched_student_t`: the centred t whose VaR and ES at ``alpha``
  equal a forecaster's (for rows that report VaR/ES but not their predictive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ..errors import InvalidParameter
from ..models.base import check_real
from ..models.risk import t_log_norm
from ._checks import float_array
from .scoring import _aligned, _alpha

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
#: ``sampler(rng, m)`` returns ``(m, T)`` losses drawn from each day's predictive.
Sampler = Callable[[np.random.Generator, int], FloatArray]


#: The quantile grid: points in ``df`` and in the upper tail probability ``1 - u``.
_GRID_DF, _GRID_P = 24, 192
#: Smallest tail probability on the grid; a draw beyond it gets its exact quantile.
_GRID_P_MIN = 1e-8
#: Relative widening of a bracket against the quantile function's own rounding.
_GRID_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class _QuantileGrid:
    """t quantiles on a grid of ``df`` (days' range) by uniforms ``u >= 1/2``: brackets.

    For ``u >= 1/2`` the quantile ``stdtrit(df, u)`` rises with ``u`` and falls
    with ``df``, so the grid's neighbouring points bracket it (widened by
    ``_GRID_SLACK`` relative, far beyond ``stdtrit``'s rounding).
    """

    day_lo: IntArray  # per day: the grid df at or above the day's df (low quantile)
    day_hi: IntArray  # per day: the grid df at or below it (high quantile)
    finite: NDArray[np.bool_]  # per day: a t day (not normal)
    u: FloatArray  # (G_u,) ascending
    q: FloatArray  # (G_df, G_u)

    @classmethod
    def of(
        cls, df: FloatArray, normal: NDArray[np.bool_], keep: FloatArray
    ) -> _QuantileGrid | None:
        finite = ~normal
        if not finite.any():
            return None
        nu = df[finite]
        inv = np.linspace(1.0 / nu.max(), 1.0 / nu.min(), _GRID_DF)
        nu_grid = np.unique(np.concatenate(([nu.min(), nu.max()], 1.0 / inv[1:-1])))
        p_top = float(np.clip(np.max(1.0 - keep[finite]), _GRID_P_MIN * 2, 0.5))
        u_grid = np.unique(1.0 - np.geomspace(p_top, _GRID_P_MIN, _GRID_P))
        u_grid = u_grid[u_grid >= 0.5]
        if u_grid.size < 2:
            return None
        hi = np.searchsorted(nu_grid, df, side="left").clip(0, nu_grid.size - 1)
        lo = np.searchsorted(nu_grid, df, side="right").clip(1, nu_grid.size) - 1
        q = special.stdtrit(nu_grid[:, None], u_grid[None, :])
        return cls(hi, lo, finite, u_grid, q)

    def covers(self, t_idx: IntArray, u: FloatArray) -> NDArray[np.bool_]:
        """Draws the grid brackets: a t day, ``u`` within the grid's range."""
        return np.asarray(self.finite[t_idx] & (u >= self.u[0]) & (u <= self.u[-1]))

    def bracket(self, t_idx: IntArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(low, high)`` around ``stdtrit(df_t, u)`` for covered draws."""
        k = np.searchsorted(self.u, u, side="left")  # u[k-1] < u <= u[k]
        k_lo = np.maximum(k - 1, 0)
        lo = self.q[self.day_lo[t_idx], k_lo]
        hi = self.q[self.day_hi[t_idx], k]
        return lo - _GRID_SLACK * np.abs(lo), hi + _GRID_SLACK * np.abs(hi)


@dataclass(frozen=True, eq=False)
class CensoredStudentT:
    """Losses ``max(loc_t + scale_t T_t, floor_t)``, ``T_t ~ t(df_t)``: a censored :data:`Sampler`.

    Made by :func:`student_t_sampler` with ``above``; arrays ``(T,)``. Calling
    it returns the ``(m, T)`` losses; :meth:`tail` returns only the draws
    beyond the floor, from the same random numbers (what
    :func:`acerbi_szekely_z2` reads when the floor is its VaR).
    """

    loc: FloatArray
    scale: FloatArray
    df: FloatArray  # 1.0 where ``normal``
    normal: NDArray[np.bool_]
    floor: FloatArray
    keep: FloatArray  # P(L <= floor_t)

    def uniforms(
        self, rng: np.random.Generator, m: int,
        out: tuple[FloatArray, NDArray[np.bool_]] | None = None,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """``(path, day, u)`` of the draws beyond the floor, by path then day.

        Consumes ``rng.random((m, T))`` (into ``out``'s ``(m, T)`` buffers when
        given): a uniform above ``keep_t`` is a draw beyond the floor.
        """
        shape = (m, self.floor.size)
        u, tail = (np.empty(shape), np.empty(shape, dtype=bool)) if out is None else out
        rng.random(out=u)
        np.greater(u, self.keep, out=tail)
        flat = np.flatnonzero(tail)
        s_idx, t_idx = np.divmod(flat, self.floor.size)
        return s_idx, t_idx, u.ravel()[flat]

    def quantile(self, t_idx: IntArray, u: FloatArray) -> FloatArray:
        """Standard t (or normal) quantile of uniforms ``u`` on days ``t_idx``."""
        norm = self.normal[t_idx]
        q = np.empty_like(u)
        q[norm] = special.ndtri(u[norm])
        q[~norm] = special.stdtrit(self.df[t_idx[~norm]], u[~norm])
        return q

    def losses(self, t_idx: IntArray, q: FloatArray) -> FloatArray:
        """Losses of standard quantiles ``q`` on days ``t_idx`` (monotone in ``q``)."""
        # max(): where rounding in the CDF puts a draw below its floor, it is the floor
        return np.maximum(self.loc[t_idx] + self.scale[t_idx] * q, self.floor[t_idx])

    def tail(self, rng: np.random.Generator, m: int) -> tuple[IntArray, IntArray, FloatArray]:
        """``(path, day, loss)`` of the draws beyond the floor, by path then day."""
        s_idx, t_idx, u = self.uniforms(rng, m)
        return s_idx, t_idx, self.losses(t_idx, self.quantile(t_idx, u))

    def __call__(self, rng: np.random.Generator, m: int) -> FloatArray:
        s_idx, t_idx, x = self.tail(rng, m)
        out = np.broadcast_to(self.floor, (m, self.floor.size)).copy()
        out[s_idx, t_idx] = x
        return out


def student_t_sampler(
    loc: ArrayLike, scale: ArrayLike, df: ArrayLike, *, above: ArrayLike | None = None
) -> Sampler:
    """A sampler of losses ``L_t = loc_t + scale_t * T_t``, ``T_t ~ t(df_t)`` (``inf`` = normal).

    All arguments broadcast to ``(T,)``. With ``above`` (e.g. the VaR
    forecasts), the draws are censored from below: a draw ``<= above_t`` is
    returned as ``above_t``. Every draw above ``above_t`` keeps its law, and
    that is all :func:`acerbi_szekely_z2` reads (``Z2`` sums the losses beyond
    VaR), so its p-value has the same distribution; the draws are then made
    by inverting the CDF at one uniform per loss, the t quantile computed
    only for the few beyond ``above`` - several times cheaper than a normal
    and a chi-square per loss.
    """
    args = [np.atleast_1d(float_array(x, name, finite=name in ("scale", "above")))
            for x, name in zip((loc, scale, df, *(() if above is None else (above,))),
                               ("loc", "scale", "df", "above"), strict=False)]
    try:
        lo, sc, nu, *floors = np.broadcast_arrays(*args)
    except ValueError:
        names = ("loc", "scale", "df", "above")
        raise InvalidParameter(
            "a Student-t sampler's arguments must broadcast to one (T,) shape; "
            + ", ".join(f"{k} {a.shape}" for k, a in zip(names, args, strict=False))
            + " do not broadcast; pass scalars or arrays of one length T") from None
    if lo.ndim != 1:
        raise InvalidParameter(f"a Student-t sampler's arguments broadcast to shape {lo.shape}, "
                               "not (T,); pass scalars or 1-d arrays of one length T")
    if np.any(~(sc > 0)) or np.any(~(nu > 0)):
        raise InvalidParameter("a Student-t sampler needs scale > 0 and df > 0 (df = inf: normal)")
    normal = np.isinf(nu)
    nu_finite = np.where(normal, 1.0, nu)
    if floors:
        (floor,) = floors
        if not np.all(np.isfinite(floor)):
            raise InvalidParameter("a censored Student-t sampler needs finite `above` values")
        z_floor = (floor - lo) / sc
        # P(L <= above_t): a uniform above it is a draw beyond the floor
        keep = np.where(normal, special.ndtr(z_floor), special.stdtr(nu_finite, z_floor))

        return CensoredStudentT(lo, sc, nu_finite, normal, np.ascontiguousarray(floor), keep)

    def sample(rng: np.random.Generator, m: int) -> FloatArray:
        z = rng.standard_normal((m, lo.size))
        chi = rng.chisquare(nu_finite, size=(m, lo.size))
        t = np.where(normal, z, z / np.sqrt(chi / nu_finite))
        return np.asarray(lo + sc * t)

    return sample


def _t_ratio(df: FloatArray, alpha: float) -> FloatArray:
    """ES / VaR of a centred Student-t(df) loss at ``alpha`` (decreasing in ``df``)."""
    q = special.stdtrit(df, alpha)
    pdf = np.exp(t_log_norm(df) - (df + 1) / 2 * np.log1p(q * q / df))
    es = pdf * (df + q * q) / ((df - 1) * (1 - alpha))
    return np.asarray(es / q)


def matched_student_t(
    var: ArrayLike, es: ArrayLike, alpha: float, *, df_bounds: tuple[float, float] = (2.05, 1e4)
) -> tuple[FloatArray, FloatArray]:
    """Scale and degrees of freedom of a centred Student-t loss with the given VaR and ES.

    For when a forecaster reports VaR/ES but not its predictive: the centred
    t whose ``alpha`` quantile is ``var`` and whose ES is ``es``. The ratio
    ``ES/VaR`` fixes ``df`` (clipped to ``df_bounds``: ratios thinner than
    the normal's get the largest ``df``), then ``scale = VaR / q_df(alpha)``.

    Returns
    -------
    scale, df : arrays ``(T,)``
    """
    a = _alpha(alpha)
    v, e = _aligned(var, es, names=("var", "es"))
    if (not isinstance(df_bounds, tuple) or len(df_bounds) != 2
            or not 1.0 < check_real("df_bounds[0]", df_bounds[0])
            < check_real("df_bounds[1]", df_bounds[1])):
        raise InvalidParameter(f"df_bounds must be (low, high) with 1 < low < high, not "
                               f"{df_bounds!r}")
    if not a > 0.5:
        raise InvalidParameter(f"alpha must be above 0.5 to match a centred t (its VaR is then "
                               f"a positive loss), not {alpha!r}")
    if np.any(v <= 0) or np.any(e < v):
        raise InvalidParameter("matching a centred t needs 0 < VaR <= ES every day")
    with np.errstate(over="ignore"):
        target = e / v
    if not np.all(np.isfinite(target)):
        raise InvalidParameter("ES / VaR overflows: a VaR near 0 beside a positive ES has no "
                               "matching t (give var and es in return units)")
    lo, hi = np.log(df_bounds[0]), np.log(df_bounds[1])
    heaviest, thinnest = _t_ratio(np.exp(lo), a), _t_ratio(np.exp(hi), a)
    log_df = np.full(target.shape, hi)  # clipped at either bound outside the ratio's range
    log_df[target >= heaviest] = lo
    inside = (target < heaviest) & (target > thinnest)
    if inside.any():
        log_df[inside] = _log_df_root(target[inside], a, lo, hi)
    df = np.exp(log_df)
    scale = v / special.stdtrit(df, a)
    if not np.all(scale > 0):  # a VaR so small its scale underflows to 0
        raise InvalidParameter("var is too small for a positive t scale (give var and es in "
                               "return units)")
    return np.asarray(scale), np.asarray(df)


#: Points of the grid that brackets each day's ``log df`` before the secant steps.
_GRID = 129
#: Secant steps at most; a step outside the bracket bisects it instead.
_MAX_STEPS = 60


def _log_df_root(target: FloatArray, alpha: float, lo: float, hi: float) -> FloatArray:
    """``log df`` with ``_t_ratio(df) = target``, for targets inside the ratio's range on [lo, hi].

    The ratio falls as ``log df`` grows. A grid of ``_GRID`` points brackets
    every root; secant steps from the bracket's linear interpolant then
    converge superlinearly (a step that leaves the bracket bisects it), each
    step one vectorized evaluation of the ratio over the days not yet done,
    until the step is within ``1e-13 + 4 eps |x|`` (the tolerances the
    bracketing solver of scipy, ``elementwise.find_root``, was given before:
    the days' ``df`` agree with it to that tolerance, a few times faster).
    """
    grid = np.linspace(lo, hi, _GRID)
    ratio = _t_ratio(np.exp(grid), alpha)
    k = np.clip(np.searchsorted(-ratio, -target, side="right"), 1, _GRID - 1)
    xa, xb = grid[k - 1], grid[k]  # f(xa) >= 0 >= f(xb), f = ratio - target
    fa, fb = ratio[k - 1] - target, ratio[k] - target
    x = xa - fa * (xb - xa) / (fb - fa)
    x_prev, f_prev = xa, fa
    out = x.copy()
    todo = np.arange(target.size)
    for _ in range(_MAX_STEPS):
        f = _t_ratio(np.exp(x), alpha) - target[todo]
        pos = f > 0
        xa, fa = np.where(pos, x, xa), np.where(pos, f, fa)
        xb, fb = np.where(pos, xb, x), np.where(pos, fb, f)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = -f * (x - x_prev) / (f - f_prev)
        x_new = x + step
        bad = ~((x_new > xa) & (x_new < xb))
        x_new = np.where(bad, 0.5 * (xa + xb), x_new)
        done = (f == 0) | (~bad & (np.abs(step) <= 1e-13 + 4 * np.finfo(float).eps * np.abs(x)))
        done |= xb - xa <= 1e-13 + 4 * np.finfo(float).eps * np.abs(xa)
        out[todo] = np.where(f == 0, x, x_new)
        keep = ~done
        if not keep.any():
            break
        todo = todo[keep]
        x_prev, f_prev, x = x[keep], f[keep], x_new[keep]
        xa, xb, fa, fb = xa[keep], xb[keep], fa[keep], fb[keep]
    return out
