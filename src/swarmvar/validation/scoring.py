"""Scoring rules for VaR/ES forecasts and the Diebold-Mariano comparison.

Sign convention: losses ``L = -r`` are positive, VaR and ES are positive
losses, ``alpha`` is the confidence level (0.99).

* pinball (quantile) loss of VaR as the ``alpha`` quantile of the loss:
  ``(alpha - 1{L < VaR}) (L - VaR)`` - strictly consistent for the quantile;
* FZ0 loss of Patton, Ziegel & Chen (2019, J. Econometrics 211), the
  zero-degree-homogeneous member of the Fissler-Ziegel family, jointly
  consistent for (VaR, ES). In their return convention with tail probability
  ``tau = 1 - alpha``, return quantile ``v = -VaR`` and return ES ``e = -ES < 0``:
  ``L_FZ0 = -1/(tau e) 1{Y <= v} (v - Y) + v/e + log(-e) - 1``. In losses:
  ``1{L >= VaR} (L - VaR) / (tau ES) + VaR/ES + log(ES) - 1``;
* Diebold-Mariano (1995) test of equal expected loss with a Newey-West
  (Bartlett kernel) long-run variance of the loss differential.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from ..errors import InvalidParameter
from ..models.base import check_whole
from ._checks import aligned, finite_result, float_array, level
from .coverage import TestResult

FloatArray = NDArray[np.float64]


def _aligned(*arrays: ArrayLike, names: Sequence[str] | None = None) -> list[FloatArray]:
    """Non-empty finite 1-D arrays of one length, named in errors by ``names``."""
    if names is None:
        names = ("losses", *(f"forecasts {k}" for k in range(1, len(arrays))))
    return aligned(arrays, names)


def _alpha(alpha: float) -> float:
    return level(alpha)


def pinball_loss(losses: ArrayLike, var: ArrayLike, alpha: float) -> FloatArray:
    """Daily quantile (pinball) loss of VaR forecasts.

    Parameters
    ----------
    losses : array ``(T,)``
        Realized losses (``-r``), return units.
    var : array ``(T,)``
        VaR forecasts (positive losses) at confidence ``alpha``.
    alpha : float

    Returns
    -------
    array ``(T,)`` of non-negative losses (return units); lower is better.
    """
    a = _alpha(alpha)
    loss, v = _aligned(losses, var, names=("losses", "var"))
    with np.errstate(over="ignore", invalid="ignore"):
        out = (a - (loss < v)) * (loss - v)
    return finite_result(out, "the pinball loss", "losses and VaR too large to subtract; "
                         "give them in return (or currency) units")


def fz0_loss(losses: ArrayLike, var: ArrayLike, es: ArrayLike, alpha: float) -> FloatArray:
    """Daily FZ0 joint VaR/ES loss (Patton, Ziegel & Chen 2019); lower is better.

    Parameters
    ----------
    losses, var, es : arrays ``(T,)``
        Realized losses and the VaR/ES forecasts (positive losses, ``es > 0``).
    alpha : float
        Confidence level; the tail probability is ``1 - alpha``.

    Returns
    -------
    array ``(T,)`` (unitless: the loss is invariant to rescaling the data
    up to an additive ``log`` of the scale).
    """
    tau = 1.0 - _alpha(alpha)
    loss, v, e = _aligned(losses, var, es, names=("losses", "var", "es"))
    if np.any(e <= 0):
        raise InvalidParameter("FZ0 needs ES > 0 (a positive expected-shortfall loss) every day")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        exceed = (loss >= v) * (loss - v)
        out = exceed / (tau * e) + v / e + np.log(e) - 1.0
    return finite_result(out, "the FZ0 loss", "losses or VaR are too large against ES "
                         "(an ES near 0?); give VaR/ES as positive losses in return units")


def newey_west_lags(n: int) -> int:
    """Default Bartlett bandwidth ``floor(4 (n/100)^(2/9))`` (Newey & West 1994)."""
    n = check_whole("n (the series length)", n, 0)
    return int(math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))


def long_run_variance(x: ArrayLike, lags: int) -> float:
    """Newey-West long-run variance of a series (Bartlett weights ``1 - j/(lags+1)``).

    Autocovariances are divided by ``n`` (not ``n - j``), which keeps the
    estimate non-negative.
    """
    d = float_array(x, "x (the series)")
    if d.ndim != 1 or d.size == 0:
        raise InvalidParameter(f"x must be a non-empty 1-D series; got shape {d.shape}")
    lags = check_whole("lags", lags, 0)
    n = d.size
    with np.errstate(over="ignore", invalid="ignore"):
        c = d - d.mean()
        lrv = float(c @ c) / n
        for j in range(1, min(lags, n - 1) + 1):
            lrv += 2.0 * (1.0 - j / (lags + 1.0)) * float(c[j:] @ c[:-j]) / n
    if not math.isfinite(lrv):
        raise InvalidParameter("the long-run variance of x overflows: its values are too "
                               "large (give losses in return units)")
    return max(lrv, 0.0)  # >= 0 in exact arithmetic; rounding can leave -1e-20


def diebold_mariano(
    loss_a: ArrayLike, loss_b: ArrayLike, *, lags: int | None = None
) -> TestResult:
    """Diebold-Mariano test that two forecasters have equal expected loss.

    Parameters
    ----------
    loss_a, loss_b : arrays ``(T,)``
        Daily losses (e.g. :func:`fz0_loss`) of forecasters A and B on the same days.
    lags : int, optional
        Newey-West truncation lag; default :func:`newey_west_lags` of ``T``
        (use ``horizon - 1`` for ``horizon``-step forecasts if you prefer
        the original rectangular choice).

    Returns
    -------
    TestResult
        ``statistic = mean(d) / sqrt(LRV(d) / T)`` with ``d = loss_a - loss_b``
        (negative: A is better); ``pvalue`` two-sided, standard normal.
    """
    a, b = _aligned(loss_a, loss_b, names=("loss_a", "loss_b"))
    with np.errstate(over="ignore", invalid="ignore"):
        d = a - b
    d = finite_result(d, "the loss differential", "loss_a and loss_b are too large "
                      "to subtract")
    n = d.size
    if n < 2:
        raise InvalidParameter("the Diebold-Mariano test needs at least 2 days")
    q = newey_west_lags(n) if lags is None else check_whole("lags", lags, 0)
    try:
        lrv = long_run_variance(d, q)
    except InvalidParameter:
        raise InvalidParameter("the loss differential loss_a - loss_b is too large for its "
                               "long-run variance; give losses in return units") from None
    if lrv <= 0:
        if np.all(d == d[0]) and d[0] == 0:
            return TestResult("diebold_mariano", 0.0, 1.0, None)
        raise InvalidParameter("the loss differential has no variance; the test is undefined")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        stat = float(d.mean() / np.sqrt(lrv / n))
    if not math.isfinite(stat):
        raise InvalidParameter("the loss differential's variance is too small (or its mean too "
                               "large) for a finite Diebold-Mariano statistic")
    return TestResult("diebold_mariano", stat, float(2.0 * stats.norm.sf(abs(stat))), None)
