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
  quantiles, bit for bit the count of the whole array (:mod:`.z2`; the
  Student-t samplers and the VaR/ES-matched t are in :mod:`.t_predictive`).
* McNeil & Frey (2000): on hit days the exceedance residuals
  ``e_t = (L_t - ES_t) / s_t`` (``s_t`` a predictable scale, the volatility
  in the original; ES by default here) have mean zero under the null. The
  one-sided t statistic's p-value comes from a bootstrap of the centred
  residuals (Efron & Tibshirani 1993, section 16.4).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter, SwarmVarError
from ..models.base import check_whole, rng_from
from ._checks import float_array
from .coverage import TestResult
from .scoring import _aligned, _alpha
from .t_predictive import (
    CensoredStudentT,
    FloatArray,
    Sampler,
    matched_student_t,
    student_t_sampler,
)
from .z2 import _censored_at_least, z2_statistic

__all__ = [
    "CensoredStudentT", "Sampler", "acerbi_szekely_z2", "matched_student_t", "mcneil_frey",
    "student_t_sampler", "z2_statistic",
]


#: Most Monte Carlo paths or bootstrap resamples one test draws (the defaults: 2,000).
MAX_DRAWS = 100_000


def _draw(sampler: Sampler, rng: np.random.Generator, m: int, n: int) -> FloatArray:
    """``m`` loss paths from the caller's sampler, checked (its own errors named as its)."""
    try:
        raw = sampler(rng, m)
    except SwarmVarError:
        raise
    except Exception as exc:  # the caller's callback: say whose error it is
        raise InvalidParameter(f"the sampler raised {type(exc).__name__}: {exc}") from exc
    try:
        sims = float_array(raw, "the sampler's draws", finite=False)
    except InvalidParameter as exc:
        raise InvalidParameter(f"the sampler must return finite losses of shape ({m}, {n}); "
                               f"{exc}") from None
    _check_sims(sims, m, n)
    return sims


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
    loss, v, e = _aligned(losses, var, es, names=("losses", "var", "es"))
    if np.any(e <= 0):
        raise InvalidParameter("Z2 needs ES > 0 every day")
    n_sim = check_whole("n_sim (Monte Carlo paths)", n_sim, 1, MAX_DRAWS)
    chunk = check_whole("chunk (paths drawn at a time)", chunk, 1)
    if not callable(sampler):
        raise InvalidParameter(f"sampler must be a callable (rng, m) -> (m, T) losses, such as "
                               f"student_t_sampler(...), not {type(sampler).__name__}")
    with np.errstate(over="ignore", invalid="ignore"):
        observed = float(z2_statistic(loss, v, e, a))
    if not np.isfinite(observed):
        raise InvalidParameter("Z2 is not finite: losses too large against ES (an ES near 0?); "
                               "give VaR/ES as positive losses in return units")
    rng = rng_from(seed)
    if isinstance(sampler, CensoredStudentT) and np.array_equal(sampler.floor, v):
        # censored at these very VaRs: only its tail draws are read (the same p-value)
        at_least = _censored_at_least(sampler, rng, n_sim, chunk, v, e, a, observed)
    else:
        at_least = done = 0
        while done < n_sim:
            m = min(chunk, n_sim - done)
            sims = _draw(sampler, rng, m, loss.size)
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a big Z2*
                at_least += int(np.sum(z2_statistic(sims, v, e, a) >= observed))
            done += m
    return TestResult("acerbi_szekely_z2", observed, (1.0 + at_least) / (n_sim + 1.0), None)


def _check_sims(sims: FloatArray, m: int, n: int) -> None:
    if sims.shape != (m, n) or not np.all(np.isfinite(sims)):
        raise InvalidParameter(
            f"the sampler must return finite losses of shape ({m}, {n}); got {sims.shape}"
        )


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
    loss, v, e = _aligned(losses, var, es, names=("losses", "var", "es"))
    s = e if scale is None else _aligned(scale, loss, names=("scale", "losses"))[0]
    if np.any(s <= 0):
        raise InvalidParameter("the residual scale must be positive every day")
    n_boot = check_whole("n_boot (bootstrap resamples)", n_boot, 1, MAX_DRAWS)
    rng = rng_from(seed)
    hit = loss > v
    with np.errstate(over="ignore", invalid="ignore"):
        resid = (loss[hit] - e[hit]) / s[hit]
    if not np.all(np.isfinite(resid)):
        raise InvalidParameter("the exceedance residuals (losses - es) / scale overflow: "
                               "losses too large against the scale (a scale near 0?)")
    k = resid.size
    with np.errstate(over="ignore", invalid="ignore"):
        flat = k < 2 or np.ptp(resid) == 0
    if flat:
        return TestResult("mcneil_frey", float("nan"), float("nan"), None)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sd0 = float(resid.std(ddof=1))
        observed = float(resid.mean() / (sd0 / np.sqrt(k)))
    if not (np.isfinite(sd0) and np.isfinite(observed)):  # so spread the variance overflows
        raise InvalidParameter("the exceedance residuals are too large for a t statistic; "
                               "give losses and es in return units")
    centred = resid - resid.mean()
    idx = rng.integers(0, k, size=(n_boot, k))
    boot = centred[idx]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sd = boot.std(axis=1, ddof=1)
        t_star = np.where(sd > 0, boot.mean(axis=1) / (sd / np.sqrt(k)), 0.0)
    p = (1.0 + float(np.sum(t_star >= observed))) / (n_boot + 1.0)
    return TestResult("mcneil_frey", observed, p, None)
