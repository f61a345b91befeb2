"""Expected-shortfall backtests: Acerbi-Szekely Z2 and McNeil-Frey.

Sign convention: losses ``L = -r``, VaR and ES are positive losses at
confidence ``alpha``; a hit is ``L > VaR``; ``tau = 1 - alpha``.

* Acerbi & Szekely (2014), "Backtesting Expected Shortfall", test 2:
  ``Z2 = sum_t L_t I_t / (T tau ES_t) - 1``. Under the null (the predictive
  is right) ``E[Z2] = 0``; a model that understates risk gives ``Z2 > 0``.
  The p-value is one-sided, by Monte Carlo: losses are drawn from each day's
  predictive (a ``sampler`` callback), ``Z2`` is recomputed with the same
  VaR/ES forecasts, and ``p = (1 + #{Z2* >= Z2}) / (M + 1)``. With a
  sampler censored at the same VaRs (``student_t_sampler(..., above=var)``)
  the count is made from the draws beyond VaR alone, mostly without their t
  quantiles, bit for bit the count of the whole array (``_tail_z2_at_least``).
* McNeil & Frey (2000): on hit days the exceedance residuals
  ``e_t = (L_t - ES_t) / s_t`` (``s_t`` a predictable scale, the volatility
  in the original; ES by default here) have mean zero under the null. The
  one-sided t statistic's p-value comes from a bootstrap of the centred
  residuals (Efron & Tibshirani 1993, section 16.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ..errors import InvalidParameter
from .coverage import TestResult
from .scoring import _aligned, _alpha

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
#: ``sampler(rng, m)`` returns ``(m, T)`` losses drawn from each day's predictive.
Sampler = Callable[[np.random.Generator, int], FloatArray]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def z2_statistic(losses: FloatArray, var: FloatArray, es: FloatArray, alpha: float) -> FloatArray:
    """``Z2`` for one or many loss paths; ``losses`` ``(T,)`` or ``(M, T)``."""
    tau = 1.0 - alpha
    n = var.shape[-1]
    contrib = np.where(losses > var, losses, 0.0) / es
    return np.asarray(contrib.sum(axis=-1) / (n * tau) - 1.0)


def acerbi_szekely_z2(
    losses: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float,
    *,
    sampler: Sampler,
    n_sim: int = 2000,
    seed: int | np.random.Generator | None = 0,
    chunk: int = 250,
) -> TestResult:
    """Acerbi-Szekely Z2 test of ES with a Monte Carlo p-value from the predictive.

    Parameters
    ----------
    losses, var, es : arrays ``(T,)``
        Realized losses and the day's VaR/ES forecasts (positive losses).
    alpha : float
        Confidence level (0.975 is the Basel ES level).
    sampler : callable ``(rng, m) -> (m, T)``
        Draws ``m`` loss paths from the model's daily predictive distributions.
    n_sim : int
        Monte Carlo paths.
    seed : int or Generator
        Randomness of the simulation.
    chunk : int
        Paths drawn at a time (memory ``chunk * T``); a positive whole number.

    Returns
    -------
    TestResult
        ``statistic`` is Z2 (0 under the null, > 0 when risk is understated);
        ``pvalue`` is one-sided.
    """
    a = _alpha(alpha)
    loss, v, e = _aligned(losses, var, es)
    if np.any(e <= 0):
        raise InvalidParameter("Z2 needs ES > 0 every day")
    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 1:
        raise InvalidParameter(f"n_sim must be a positive whole number, not {n_sim!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InvalidParameter(f"chunk must be a positive whole number of paths, not {chunk!r}")
    observed = float(z2_statistic(loss, v, e, a))
    rng = _rng(seed)
    if isinstance(sampler, CensoredStudentT) and np.array_equal(sampler.floor, v):
        # censored at these very VaRs: only its tail draws are read (the same p-value)
        at_least = _censored_at_least(sampler, rng, n_sim, chunk, v, e, a, observed)
    else:
        at_least = done = 0
        while done < n_sim:
            m = min(chunk, n_sim - done)
            sims = np.asarray(sampler(rng, m), dtype=float)
            _check_sims(sims, m, loss.size)
            at_least += int(np.sum(z2_statistic(sims, v, e, a) >= observed))
            done += m
    return TestResult("acerbi_szekely_z2", observed, (1.0 + at_least) / (n_sim + 1.0), None)


def _check_sims(sims: FloatArray, m: int, n: int) -> None:
    if sims.shape != (m, n) or not np.all(np.isfinite(sims)):
        raise InvalidParameter(
            f"the sampler must return finite losses of shape ({m}, {n}); got {sims.shape}"
        )


def _censored_at_least(
    sampler: CensoredStudentT, rng: np.random.Generator, n_sim: int, chunk: int,
    var: FloatArray, es: FloatArray, alpha: float, observed: float,
) -> int:
    """``#{Z2* >= observed}`` over ``n_sim`` censored paths drawn ``chunk`` at a time."""
    grid = _QuantileGrid.of(sampler.df, sampler.normal, sampler.keep)
    size = (min(chunk, n_sim), var.size)
    u, tail = np.empty(size), np.empty(size, dtype=bool)  # reused by every chunk
    at_least = done = 0
    while done < n_sim:
        m = min(chunk, n_sim - done)
        at_least += _tail_z2_at_least(sampler, grid, (u[:m], tail[:m]), rng, m, var, es,
                                      alpha, observed)
        done += m
    return at_least


def _tail_z2_at_least(
    sampler: CensoredStudentT,
    grid: _QuantileGrid | None,
    buffers: tuple[FloatArray, NDArray[np.bool_]],
    rng: np.random.Generator,
    m: int,
    var: FloatArray,
    es: FloatArray,
    alpha: float,
    observed: float,
) -> int:
    """``#{Z2* >= observed}`` over ``m`` censored paths, from their tail draws alone.

    The same count as ``z2_statistic(sampler(rng, m), ...) >= observed``, with
    the same random numbers, without the ``(m, T)`` array and mostly without
    the t quantiles:

    1. a censored path's ``Z2`` sums only its draws beyond the VaR (the floor
       draws equal it and add 0);
    2. each draw's quantile is first bracketed from ``grid`` (the t quantile
       rises with the uniform and falls with ``df``), which brackets every
       path's sum; a path whose bracket lies on one side of ``observed`` is
       decided;
    3. the other paths' draws get their exact quantile
       (``scipy.special.stdtrit``, as the sampler computes them), and their
       sums (``np.bincount``) add the same quotients as ``z2_statistic`` in
       another order: both lie within ``T * eps * sum |terms|`` of the exact
       sum (Higham 2002, section 4.2) and ``S -> S / (T tau) - 1`` is monotone
       in floating point, so a bracket ``S +- 4 T eps sum |terms|`` on one side
       of ``observed`` decides the path as ``z2_statistic`` does;
    4. paths still straddling ``observed`` (ties) are decided by
       ``z2_statistic`` itself on their rebuilt rows.
    """
    s_idx, t_idx, u = sampler.uniforms(rng, m, buffers)
    exact = np.ones(u.shape, dtype=bool) if grid is None else ~grid.covers(t_idx, u)
    q_lo, q_hi = np.empty_like(u), np.empty_like(u)
    q_lo[exact] = q_hi[exact] = sampler.quantile(t_idx[exact], u[exact])
    if grid is not None:
        q_lo[~exact], q_hi[~exact] = grid.bracket(t_idx[~exact], u[~exact])
    x_lo, x_hi = sampler.losses(t_idx, q_lo), sampler.losses(t_idx, q_hi)
    if not (np.all(np.isfinite(x_lo)) and np.all(np.isfinite(x_hi))):
        exact = _refine(sampler, s_idx, t_idx, u, x_lo, x_hi, exact,
                        ~(np.isfinite(x_lo) & np.isfinite(x_hi)))
        if not np.all(np.isfinite(x_lo)):
            raise InvalidParameter(
                f"the sampler must return finite losses of shape ({m}, {var.size}); "
                "got non-finite draws"
            )
    above, unsure = _decide(s_idx, t_idx, x_lo, x_hi, m, var, es, alpha, observed)
    if unsure.any() and not exact.all():
        exact = _refine(sampler, s_idx, t_idx, u, x_lo, x_hi, exact, unsure[s_idx])
        above_exact, unsure_exact = _decide(s_idx, t_idx, x_lo, x_hi, m, var, es, alpha, observed)
        above[unsure] = above_exact[unsure]
        unsure &= unsure_exact
    if unsure.any():  # every draw of these paths is exact: x_lo == x_hi there
        sims = np.broadcast_to(sampler.floor, (m, var.size)).copy()
        sims[s_idx, t_idx] = x_lo  # other paths' rows are not read
        above[unsure] = (z2_statistic(sims, var, es, alpha) >= observed)[unsure]
    return int(np.count_nonzero(above))


def _refine(
    sampler: CensoredStudentT, s_idx: IntArray, t_idx: IntArray, u: FloatArray,
    x_lo: FloatArray, x_hi: FloatArray, exact: NDArray[np.bool_], want: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """The exact loss of the draws in ``want`` not yet exact, into ``x_lo`` and ``x_hi``."""
    pick = want & ~exact
    x_lo[pick] = x_hi[pick] = sampler.losses(t_idx[pick], sampler.quantile(t_idx[pick], u[pick]))
    return exact | pick


def _decide(
    s_idx: IntArray, t_idx: IntArray, x_lo: FloatArray, x_hi: FloatArray, m: int,
    var: FloatArray, es: FloatArray, alpha: float, observed: float,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Paths surely at or above ``observed``, and paths undecided, from losses within brackets.

    A draw's term in ``Z2``'s sum is ``x / es`` if ``x > var`` else 0 (the
    quotient rounds monotonically in ``x``); the floor is the VaR, so a draw
    never falls below it.
    """
    e = es[t_idx]
    over_lo = x_lo > var[t_idx]
    term_lo = np.where(over_lo, x_lo / e, np.minimum(var[t_idx] / e, 0.0))
    term_hi = np.where(x_hi > var[t_idx], np.maximum(x_hi / e, 0.0), 0.0)
    size = np.maximum(np.abs(term_lo), np.abs(term_hi))
    band = 4.0 * var.size * np.finfo(float).eps * np.bincount(s_idx, size, minlength=m)
    n_tau = var.size * (1.0 - alpha)
    low = (np.bincount(s_idx, term_lo, minlength=m) - band) / n_tau - 1.0
    high = (np.bincount(s_idx, term_hi, minlength=m) + band) / n_tau - 1.0
    above = low >= observed  # a path without a draw beyond its VaR: exactly -1 either way
    return above, ~above & (high >= observed)


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
    args = [np.atleast_1d(np.asarray(x, dtype=float))
            for x in (loc, scale, df, *(() if above is None else (above,)))]
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
        raise InvalidParameter("a Student-t sampler needs scale > 0 and df > 0")
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
    pdf = np.exp(
        special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * np.log(df * np.pi)
        - (df + 1) / 2 * np.log1p(q * q / df)
    )
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
    v, e = _aligned(var, es)
    if np.any(v <= 0) or np.any(e < v):
        raise InvalidParameter("matching a centred t needs 0 < VaR <= ES every day")
    target = e / v
    lo, hi = np.log(df_bounds[0]), np.log(df_bounds[1])
    heaviest, thinnest = _t_ratio(np.exp(lo), a), _t_ratio(np.exp(hi), a)
    log_df = np.full(target.shape, hi)  # clipped at either bound outside the ratio's range
    log_df[target >= heaviest] = lo
    inside = (target < heaviest) & (target > thinnest)
    if inside.any():
        log_df[inside] = _log_df_root(target[inside], a, lo, hi)
    df = np.exp(log_df)
    scale = v / special.stdtrit(df, a)
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


def mcneil_frey(
    losses: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    *,
    scale: ArrayLike | None = None,
    n_boot: int = 2000,
    seed: int | np.random.Generator | None = 0,
) -> TestResult:
    """McNeil-Frey exceedance-residual test of ES with a bootstrap p-value.

    Parameters
    ----------
    losses, var, es : arrays ``(T,)``
        Realized losses and the day's VaR/ES forecasts (positive losses).
    scale : array ``(T,)``, optional
        Predictable scale of the residuals (the forecast volatility); default ``es``.
    n_boot : int
        Bootstrap resamples.

    Returns
    -------
    TestResult
        ``statistic`` is the t statistic of the mean residual (> 0 when losses
        beyond VaR exceed the forecast ES on average); ``pvalue`` one-sided;
        both NaN with fewer than 2 hits.
    """
    loss, v, e = _aligned(losses, var, es)
    s = e if scale is None else _aligned(scale, loss)[0]
    if np.any(s <= 0):
        raise InvalidParameter("the residual scale must be positive every day")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InvalidParameter(f"n_boot must be a positive whole number, not {n_boot!r}")
    hit = loss > v
    resid = (loss[hit] - e[hit]) / s[hit]
    k = resid.size
    if k < 2 or np.ptp(resid) == 0:
        return TestResult("mcneil_frey", float("nan"), float("nan"), None)
    observed = float(resid.mean() / (resid.std(ddof=1) / np.sqrt(k)))
    centred = resid - resid.mean()
    rng = _rng(seed)
    idx = rng.integers(0, k, size=(n_boot, k))
    boot = centred[idx]
    sd = boot.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = np.where(sd > 0, boot.mean(axis=1) / (sd / np.sqrt(k)), 0.0)
    p = (1.0 + float(np.sum(t_star >= observed))) / (n_boot + 1.0)
    return TestResult("mcneil_frey", observed, p, None)
