"""Expected-shortfall backtests: Acerbi-Szekely Z2 and McNeil-Frey.

Sign convention: losses ``L = -r``, VaR and ES are positive losses at
confidence ``alpha``; a hit is ``L > VaR``; ``tau = 1 - alpha``.

* Acerbi & Szekely (2014), "Backtesting Expected Shortfall", test 2:
  ``Z2 = sum_t L_t I_t / (T tau ES_t) - 1``. Under the null (the predictive
  is right) ``E[Z2] = 0``; a model that understates risk gives ``Z2 > 0``.
  The p-value is one-sided, by Monte Carlo: losses are drawn from each day's
  predictive (a ``sampler`` callback), ``Z2`` is recomputed with the same
  VaR/ES forecasts, and ``p = (1 + #{Z2* >= Z2}) / (M + 1)``.
* McNeil & Frey (2000): on hit days the exceedance residuals
  ``e_t = (L_t - ES_t) / s_t`` (``s_t`` a predictable scale, the volatility
  in the original; ES by default here) have mean zero under the null. The
  one-sided t statistic's p-value comes from a bootstrap of the centred
  residuals (Efron & Tibshirani 1993, section 16.4).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.optimize import elementwise

from ..errors import InvalidParameter
from .coverage import TestResult
from .scoring import _aligned, _alpha

FloatArray = NDArray[np.float64]
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
    observed = float(z2_statistic(loss, v, e, a))
    rng = _rng(seed)
    at_least = 0
    done = 0
    while done < n_sim:
        m = min(chunk, n_sim - done)
        sims = np.asarray(sampler(rng, m), dtype=float)
        if sims.shape != (m, loss.size) or not np.all(np.isfinite(sims)):
            raise InvalidParameter(
                f"the sampler must return finite losses of shape ({m}, {loss.size}); "
                f"got {sims.shape}"
            )
        at_least += int(np.sum(z2_statistic(sims, v, e, a) >= observed))
        done += m
    return TestResult("acerbi_szekely_z2", observed, (1.0 + at_least) / (n_sim + 1.0), None)


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
    lo, sc, nu = np.broadcast_arrays(
        np.atleast_1d(np.asarray(loc, dtype=float)),
        np.atleast_1d(np.asarray(scale, dtype=float)),
        np.atleast_1d(np.asarray(df, dtype=float)),
    )
    if np.any(~(sc > 0)) or np.any(~(nu > 0)):
        raise InvalidParameter("a Student-t sampler needs scale > 0 and df > 0")
    normal = np.isinf(nu)
    nu_finite = np.where(normal, 1.0, nu)
    if above is not None:
        floor = np.broadcast_to(np.asarray(above, dtype=float), lo.shape)
        if not np.all(np.isfinite(floor)):
            raise InvalidParameter("a censored Student-t sampler needs finite `above` values")
        z_floor = (floor - lo) / sc
        # P(L <= above_t): a uniform above it is a draw beyond the floor
        keep = np.where(normal, special.ndtr(z_floor), special.stdtr(nu_finite, z_floor))

        def censored(rng: np.random.Generator, m: int) -> FloatArray:
            u = rng.random((m, lo.size))
            out = np.broadcast_to(floor, u.shape).copy()
            tail = u > keep
            s_idx, t_idx = np.nonzero(tail)
            ut = u[tail]
            q = np.where(normal[t_idx], special.ndtri(ut), special.stdtrit(nu_finite[t_idx], ut))
            # max(): where rounding in the CDF puts a draw below its floor, it is the floor
            out[s_idx, t_idx] = np.maximum(lo[t_idx] + sc[t_idx] * q, floor[t_idx])
            return out

        return censored

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
        # Chandrupatla's bracketing method on log df (the ratio falls as df grows),
        # elementwise over the days inside the bracket
        res = elementwise.find_root(
            lambda x, t: _t_ratio(np.exp(x), a) - t, (lo, hi), args=(target[inside],),
            tolerances={"xatol": 1e-13, "xrtol": 4 * np.finfo(float).eps},
        )
        log_df[inside] = res.x
    df = np.exp(log_df)
    scale = v / special.stdtrit(df, a)
    return np.asarray(scale), np.asarray(df)


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
