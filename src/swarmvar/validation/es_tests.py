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

from ..errors import InvalidParameter
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


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


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
