"""VaR coverage backtests on a hit sequence: Kupiec, Christoffersen, Basel traffic light.

A *hit* on day ``t`` means the realized loss exceeded that day's VaR. With
``p = 1 - alpha`` the expected hit rate:

* Kupiec (1995) proportion of failures: ``LR_pof = -2 [log L(p) - log L(x/n)]``
  with ``x`` hits in ``n`` days, chi-square with 1 degree of freedom;
* Christoffersen (1998) independence: first-order Markov transitions
  ``n_ij`` (state ``i`` on day ``t-1``, ``j`` on day ``t``),
  ``LR_ind = -2 [log L(pi) - log L(pi_01, pi_11)]``, 1 degree of freedom;
* conditional coverage ``LR_cc = LR_pof + LR_ind``, 2 degrees of freedom
  (as in rugarch's ``VaRTest``).

Every log likelihood uses ``0 * log(0) = 0`` (:func:`scipy.special.xlogy`), so
the statistics are exact at the edges: hits only on the first or last day,
runs of consecutive hits. Where the transitions hold no hit at all (or only
hits), the independence test is undefined - its null and alternative are the
same degenerate chain - so Christoffersen's test and conditional coverage
report NaN (``passed()`` is ``None``), as rugarch's ``VaRTest`` does; Kupiec's
test is still defined there.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from ..errors import InvalidParameter
from ..models.base import check_whole
from . import _checks
from ._checks import level

#: Basel plus factors added to 3.0 in the yellow zone, by number of exceptions (5..9).
BASEL_YELLOW = {5: 3.40, 6: 3.50, 7: 3.65, 8: 3.75, 9: 3.85}
BASEL_GREEN_MULTIPLIER = 3.0
BASEL_RED_MULTIPLIER = 4.0
#: Cumulative binomial probabilities that bound the Basel zones.
GREEN_CUTOFF = 0.95
RED_CUTOFF = 0.9999


@dataclass(frozen=True)
class TestResult:
    """A likelihood-ratio (or other) test: statistic, p-value, degrees of freedom.

    ``pvalue`` is NaN when the test is undefined for the data (e.g. an ES test
    with no exceedance); :meth:`passed` then returns ``None``.
    """

    __test__ = False  # not a pytest class

    name: str
    statistic: float
    pvalue: float
    df: int | None = None

    def passed(self, level: float = 0.05) -> bool | None:
        """``True`` when the null is not rejected at ``level`` (``None`` if undefined)."""
        size = _checks.level(level, "level (the test size)")
        if math.isnan(self.pvalue):
            return None
        return bool(self.pvalue > size)


class Zone(enum.Enum):
    """Basel traffic-light zone."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class TrafficLight:
    """Basel traffic-light outcome over the last ``days`` days.

    ``cumulative`` is ``P(X <= exceptions)`` for ``X ~ Binomial(days, 1 - alpha)``.
    """

    zone: Zone
    exceptions: int
    days: int
    alpha: float
    multiplier: float
    cumulative: float


def as_hits(hits: ArrayLike) -> NDArray[np.bool_]:
    """Validate a hit sequence: a non-empty 1-D array of booleans (or 0/1)."""
    if hits is None or isinstance(hits, (str, bytes, dict, set)):
        raise InvalidParameter(f"hits must be a sequence of booleans, not {type(hits).__name__}")
    try:
        x = np.asarray(hits)
    except (ValueError, TypeError):  # ragged
        raise InvalidParameter("hits must be a flat sequence of booleans (or 0/1)") from None
    if x.ndim != 1 or x.size == 0:
        raise InvalidParameter(f"hits must be a non-empty 1-D sequence; got shape {x.shape}")
    if x.dtype != bool:
        if not np.issubdtype(x.dtype, np.number) or not np.all(np.isin(x, (0, 1))):
            raise InvalidParameter("hits must be booleans or 0/1 (True = loss exceeded VaR)")
        x = x.astype(bool)
    return x


def _check_alpha(alpha: float) -> float:
    return level(alpha)


def kupiec(hits: ArrayLike, alpha: float) -> TestResult:
    """Kupiec's proportion-of-failures test of unconditional coverage.

    Parameters
    ----------
    hits : array ``(n,)`` of bool
        ``True`` on days the loss exceeded VaR.
    alpha : float
        VaR confidence level (0.99); the expected hit rate is ``1 - alpha``.
    """
    h = as_hits(hits)
    p = 1.0 - _check_alpha(alpha)
    n, x = h.size, int(h.sum())
    phat = x / n
    loglik_null = special.xlogy(n - x, 1.0 - p) + special.xlogy(x, p)
    loglik_alt = special.xlogy(n - x, 1.0 - phat) + special.xlogy(x, phat)
    stat = max(-2.0 * (loglik_null - loglik_alt), 0.0)
    return TestResult("kupiec", float(stat), float(stats.chi2.sf(stat, 1)), 1)


def transition_counts(hits: ArrayLike) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: day-to-day transitions of the hit sequence."""
    h = as_hits(hits).astype(np.int64)
    prev, cur = h[:-1], h[1:]
    n00 = int(np.sum((prev == 0) & (cur == 0)))
    n01 = int(np.sum((prev == 0) & (cur == 1)))
    n10 = int(np.sum((prev == 1) & (cur == 0)))
    n11 = int(np.sum((prev == 1) & (cur == 1)))
    return n00, n01, n10, n11


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else 0.0


def christoffersen(hits: ArrayLike) -> TestResult:
    """Christoffersen's test that hits are independent (first-order Markov alternative).

    Parameters
    ----------
    hits : array ``(n,)`` of bool, ``n >= 2``

    Returns
    -------
    TestResult
        NaN statistic and p-value when days ``2..n`` hold no hit or only hits
        (the test is undefined there).
    """
    h = as_hits(hits)
    if h.size < 2:
        raise InvalidParameter("the independence test needs at least 2 days of hits")
    n00, n01, n10, n11 = transition_counts(h)
    if n01 + n11 == 0 or n00 + n10 == 0:  # no hit (or only hits) after day 1: undefined
        return TestResult("christoffersen", math.nan, math.nan, 1)
    pi01, pi11 = _ratio(n01, n00 + n01), _ratio(n11, n10 + n11)
    pi = _ratio(n01 + n11, n00 + n01 + n10 + n11)
    loglik_null = special.xlogy(n00 + n10, 1.0 - pi) + special.xlogy(n01 + n11, pi)
    loglik_alt = (
        special.xlogy(n00, 1.0 - pi01)
        + special.xlogy(n01, pi01)
        + special.xlogy(n10, 1.0 - pi11)
        + special.xlogy(n11, pi11)
    )
    stat = max(-2.0 * (loglik_null - loglik_alt), 0.0)
    return TestResult("christoffersen", float(stat), float(stats.chi2.sf(stat, 1)), 1)


def conditional_coverage(hits: ArrayLike, alpha: float) -> TestResult:
    """Christoffersen's joint test of coverage and independence: ``LR_pof + LR_ind``, 2 df.

    NaN (undefined) where the independence test is undefined (no hits after day 1).
    """
    stat = kupiec(hits, alpha).statistic + christoffersen(hits).statistic
    if math.isnan(stat):
        return TestResult("conditional_coverage", math.nan, math.nan, 2)
    return TestResult("conditional_coverage", float(stat), float(stats.chi2.sf(stat, 2)), 2)


def traffic_light(hits: ArrayLike, alpha: float = 0.99, *, days: int = 250) -> TrafficLight:
    """Basel traffic-light zone and capital multiplier from the last ``days`` hits.

    Zones follow the cumulative binomial probability of the exception count,
    ``F(x) = P(X <= x)``, ``X ~ Binomial(days, 1 - alpha)``: green when
    ``F(x) < 95%``, red when ``F(x) >= 99.99%``, yellow between. At
    ``alpha = 0.99`` over 250 days this is the Basel table (green 0-4,
    yellow 5-9, red >= 10) with multipliers 3.00, 3.40/3.50/3.65/3.75/3.85 and
    4.00. At other levels the yellow multiplier is that of the Basel count
    (at 99%, 250 days) whose cumulative probability first reaches ``F(x)``.
    """
    h = as_hits(hits)
    a = _check_alpha(alpha)
    days = check_whole("days", days, 1)
    if h.size < days:
        raise InvalidParameter(
            f"the traffic light needs the last {days} days of hits; got only {h.size}"
        )
    x = int(h[-days:].sum())
    cum = float(stats.binom.cdf(x, days, 1.0 - a))
    if cum < GREEN_CUTOFF:
        return TrafficLight(Zone.GREEN, x, int(days), a, BASEL_GREEN_MULTIPLIER, cum)
    if cum >= RED_CUTOFF:
        return TrafficLight(Zone.RED, x, int(days), a, BASEL_RED_MULTIPLIER, cum)
    basel_cum = stats.binom.cdf(np.arange(5, 10), 250, 0.01)
    k = 5 + int(np.searchsorted(basel_cum, cum - 1e-12, side="left"))
    return TrafficLight(Zone.YELLOW, x, int(days), a, BASEL_YELLOW[min(k, 9)], cum)


def rolling_zones(hits: ArrayLike, alpha: float = 0.99, *, days: int = 250) -> NDArray[np.int8]:
    """Basel zone of every rolling ``days``-day window: 0 green, 1 yellow, 2 red.

    Element ``k`` covers hits ``k .. k + days - 1`` (``n - days + 1`` windows),
    with the zone bounds of :func:`traffic_light`.
    """
    h = as_hits(hits)
    a = _check_alpha(alpha)
    days = check_whole("days", days, 1)
    if h.size < days:
        raise InvalidParameter(f"rolling {days}-day windows need {days} days; got {h.size}")
    cum = np.concatenate(([0], np.cumsum(h, dtype=np.int64)))
    counts = cum[days:] - cum[:-days]
    prob = stats.binom.cdf(np.arange(days + 1), days, 1.0 - a)[counts]
    return np.where(prob < GREEN_CUTOFF, 0, np.where(prob >= RED_CUTOFF, 2, 1)).astype(np.int8)
