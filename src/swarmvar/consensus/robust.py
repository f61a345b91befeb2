"""Byzantine-robust aggregators over agents' estimates.

Each rule tolerates ``f`` arbitrary (Byzantine) inputs out of ``n`` only
above a minimum ``n``, and raises :class:`~swarmvar.errors.NotEnoughAgents`
below it:

=====================  ==============  =========================================
rule                   needs           guarantee with at most ``f`` bad inputs
=====================  ==============  =========================================
median                 n >= 2f + 1     inside [min honest, max honest]
trimmed mean           n >= 2f + 1     inside [min honest, max honest]
weight-trimmed mean    n >= 2f + 1     inside [min honest, max honest], whatever
(a studied candidate,                  the weights; bad rows of total weight
weight_trimmed_weights)                <= f/n are trimmed entirely
Krum, multi-Krum       n >= 2f + 3     picks inputs scored over n - f - 2
                                       nearest neighbours (Blanchard et al.
                                       2017); the pick is honest or close to
                                       the honest cluster
geometric median       n >= 2f + 1     ``|gm - z| <= 2(n-f)/(n-2f) * max
                                       honest |x - z|`` for any point z
=====================  ==============  =========================================

Inputs are rows of an ``(n, d)`` array (one row per agent; ``d = 1`` for a
single number). :func:`robust_aggregate` returns the aggregate together with
each input's effective weight, so callers can say which agents were used and
which were trimmed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import ConvergenceWarning, InvalidParameter, NotEnoughAgents

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


class Aggregator(Enum):
    """Which robust rule combines the agents' estimates."""

    MEDIAN = "median"
    TRIMMED_MEAN = "trimmed_mean"
    KRUM = "krum"
    MULTI_KRUM = "multi_krum"
    GEOMETRIC_MEDIAN = "geometric_median"
    MEAN = "mean"  # not robust: allowed only with f = 0

    def min_agents(self, f: int) -> int:
        """Smallest ``n`` for which the rule tolerates ``f`` Byzantine inputs."""
        if self in (Aggregator.KRUM, Aggregator.MULTI_KRUM):
            return 2 * f + 3
        if self is Aggregator.MEAN:
            return 1
        return 2 * f + 1


@dataclass(frozen=True)
class Aggregate:
    """A robust aggregate and how each input contributed.

    Attributes
    ----------
    value : ndarray, shape (d,)
        The aggregate, per coordinate.
    weights : ndarray, shape (n, d)
        ``value[j] == sum_i weights[i, j] * x[i, j]``; each column sums to 1.
        Zero means input ``i`` was trimmed from coordinate ``j``.
    """

    value: FloatArray
    weights: FloatArray


def check_tolerance(aggregator: Aggregator, n: int, f: int) -> None:
    """Raise :class:`NotEnoughAgents` if ``n`` inputs cannot tolerate ``f`` bad ones."""
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
        raise InvalidParameter(
            f"f (number of Byzantine agents tolerated) must be an int >= 0, got {f!r}"
        )
    if aggregator is Aggregator.MEAN and f != 0:
        raise InvalidParameter(
            "the plain mean tolerates no Byzantine agent; use f=0 or a robust rule"
        )
    need = aggregator.min_agents(int(f))
    if n < need:
        raise NotEnoughAgents(
            f"{aggregator.value} tolerating f={f} Byzantine agents needs n >= {need}, got n={n}; "
            "lower f or add agents"
        )


def _as_matrix(values: ArrayLike) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidParameter(f"expected a non-empty (n,) or (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidParameter("values must be finite (no NaN or inf)")
    return x


def _check_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidParameter(f"weights must be {n} finite non-negative numbers")
    return w


def _median_weights(x: FloatArray) -> FloatArray:
    n, d = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    out = np.zeros((n, d))
    cols = np.arange(d)
    if n % 2:
        out[order[n // 2], cols] = 1.0
    else:
        out[order[n // 2 - 1], cols] = 0.5
        out[order[n // 2], cols] += 0.5
    return out


def _trimmed_weights(x: FloatArray, f: int, w: FloatArray) -> FloatArray:
    n, d = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    kept = np.zeros((n, d), dtype=bool)
    kept[order[f : n - f], np.arange(d)] = True
    out = np.where(kept, w[:, None], 0.0)
    mass = out.sum(axis=0)
    # all surviving weights underflowed: fall back to equal weights among survivors
    out[:, mass <= 0] = kept[:, mass <= 0]
    return np.asarray(out / out.sum(axis=0), dtype=np.float64)


def weight_trimmed_weights(values: ArrayLike, f: int, weights: ArrayLike | None = None
                           ) -> FloatArray:
    """Each row's weight ``(n, d)`` in the weight-trimmed mean of each column.

    Per column: sort the values (stable), trim ``tau = f / n`` of the
    (normalized) *weight mass* from each tail — a row straddling the cut
    keeps the part inside — and average the rest with the weights left
    (shares below 1e-12 of the mass, rounding of the cumulative sums, count
    as trimmed). With equal weights this is the trimmed mean; a heavy agent at
    the edge keeps its weight minus ``tau`` instead of being dropped. The
    mean is then clipped to ``[x_(f+1), x_(n-f)]`` (the ``(f+1)``-th smallest
    and largest values); when the clip binds, all weight moves to the row at
    that order statistic, so ``value == sum_i weights[i] * x[i]`` still holds.

    Guarantee with at most ``f`` Byzantine rows (``n >= 2f + 1``): the result
    is inside the honest values' range whatever the bad rows report and
    whatever their weights (the order statistics are; Byzantine weight can
    only move the result between them). Bad rows whose total weight is at
    most ``tau`` are trimmed entirely when they lie outside the honest range.
    Weights are computed by the aggregator from realized losses, never
    self-reported. Not an :class:`Aggregator`: the study in
    ``docs/consensus.md`` found it no better than the trimmed mean; kept, with
    its guarantees tested, so that row can be recomputed.
    """
    x = _as_matrix(values)
    n, d = x.shape
    check_tolerance(Aggregator.TRIMMED_MEAN, n, f)  # the same bound, n >= 2f + 1
    w = _check_weights(weights, n)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    tau = f / n
    order = np.argsort(x, axis=0, kind="stable")  # (n, d)
    ws = w[order]
    high = np.cumsum(ws, axis=0)
    low = high - ws
    kept = np.clip(np.minimum(high, 1.0 - tau) - np.maximum(low, tau), 0.0, None)
    kept[kept < 1e-12] = 0.0
    cols = np.arange(d)
    for j in cols[kept.sum(axis=0) <= 0]:  # cannot happen for n >= 2f + 1 but for rounding
        kept[f : n - f, j] = 1.0
    out = np.zeros((n, d))
    np.put_along_axis(out, order, kept / kept.sum(axis=0), axis=0)
    with np.errstate(over="ignore", invalid="ignore"):  # |x| near the float limit: see below
        mean = np.sum(out * np.where(out > 0, x, 0.0), axis=0)
    sorted_x = np.take_along_axis(x, order, axis=0)
    below, above = mean < sorted_x[f], mean > sorted_x[n - 1 - f]
    for j in cols[below | above | ~np.isfinite(mean)]:
        # the nearer order statistic (the middle one if the mean overflowed)
        k = f if below[j] else n - 1 - f if above[j] else n // 2
        out[:, j] = 0.0
        out[order[k, j], j] = 1.0
    return out


def _day_weights(x: FloatArray, aggregator: Aggregator, f: int, w: FloatArray) -> FloatArray:
    """:func:`robust_aggregate`'s input weights for many days at once, ``(T, n, d)``.

    ``x`` is ``(T, n, d)`` (each day's ``n`` rows), ``w`` the prior weights
    ``(T, n)``. The median, trimmed mean and mean only, each the same numbers
    as the one-day rule (the same sums in the same order).
    """
    days, n, d = x.shape
    order = np.argsort(x, axis=1, kind="stable")
    if aggregator is Aggregator.MEDIAN:
        out = np.zeros((days, n, d))
        if n % 2:
            np.put_along_axis(out, order[:, n // 2 : n // 2 + 1], 1.0, axis=1)
        else:
            np.put_along_axis(out, order[:, n // 2 - 1 : n // 2], 0.5, axis=1)
            mid = order[:, n // 2 : n // 2 + 1]
            np.put_along_axis(out, mid, np.take_along_axis(out, mid, axis=1) + 0.5, axis=1)
        return out
    if aggregator not in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN):
        raise InvalidParameter(f"{aggregator.value} has no many-day form; aggregate day by day")
    trim = f if aggregator is Aggregator.TRIMMED_MEAN else 0
    kept = np.zeros((days, n, d), dtype=bool)
    np.put_along_axis(kept, order[:, trim : n - trim], True, axis=1)
    out = np.where(kept, w[:, :, None], 0.0)
    mass = out.sum(axis=1)  # (T, d)
    empty = mass <= 0
    if empty.any():  # all surviving weights underflowed: equal weights among survivors
        out = np.where(empty[:, None, :], kept, out)
    return np.asarray(out / out.sum(axis=1, keepdims=True), dtype=np.float64)


def aggregate_days(
    values: FloatArray, aggregator: Aggregator, f: int, weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`robust_aggregate` of each day's rows, ``values`` ``(T, n, d)``, weights ``(T, n)``.

    For the median, trimmed mean and mean (the rules whose weights are a
    sort away); returns each day's ``value`` ``(T, d)`` and ``weights``
    ``(T, n, d)``, equal to :func:`robust_aggregate` day by day. Inputs are
    taken as checked (finite, weights >= 0) and ``n`` as within tolerance.
    """
    out = _day_weights(values, aggregator, f, weights)
    used = out > 0
    total = np.sum(out * np.where(used, values, 0.0), axis=1)
    low = np.min(np.where(used, values, np.inf), axis=1)
    high = np.max(np.where(used, values, -np.inf), axis=1)
    return np.asarray(np.clip(total, low, high), dtype=np.float64), out


#: The rules :func:`aggregate_days` computes for many days at once.
MANY_DAY_RULES = frozenset({Aggregator.MEDIAN, Aggregator.TRIMMED_MEAN, Aggregator.MEAN})


def _as_vector(values: ArrayLike) -> FloatArray:
    if np.ndim(values) != 1:
        raise InvalidParameter(
            f"expected a 1-D array of values, got shape {np.shape(values)}; "
            "use robust_aggregate for (n, d) arrays"
        )
    return _as_matrix(values)


def median(values: ArrayLike, f: int = 0) -> float:
    """Median of ``n`` values (shape ``(n,)``); inside the honest range when ``n >= 2f + 1``."""
    x = _as_vector(values)
    check_tolerance(Aggregator.MEDIAN, x.shape[0], f)
    return float(_combine(x, _median_weights(x))[0])


def trimmed_mean(values: ArrayLike, f: int, weights: ArrayLike | None = None) -> float:
    """Drop the ``f`` smallest and ``f`` largest of ``values`` (shape ``(n,)``), average the rest.

    With ``weights`` (shape ``(n,)``), the survivors are averaged with their
    weights renormalized. Needs ``n >= 2f + 1``.
    """
    x = _as_vector(values)
    check_tolerance(Aggregator.TRIMMED_MEAN, x.shape[0], f)
    return float(_combine(x, _trimmed_weights(x, f, _check_weights(weights, x.shape[0])))[0])


#: Up to this many rows, the trimmed mean runs on Python floats (a live beat's few
#: agents: numpy's per-call overhead would dominate).
_SMALL = 16


def _small_trimmed(
    x: list[list[float]], trim: int, w: list[float]
) -> tuple[list[float], list[list[float]]]:
    """:func:`_trimmed_weights` then :func:`_combine` on Python floats, the same bits.

    Same stable order, same sums in the same (index) order, the same clip
    (tested bit for bit against the numpy path).
    """
    n, d = len(x), len(x[0])
    share = [[0.0] * d for _ in range(n)]
    values = []
    for j in range(d):
        col = [row[j] for row in x]
        order = sorted(range(n), key=col.__getitem__)  # stable, like argsort(kind="stable")
        kept = set(order[trim : n - trim])
        ws = [w[i] if i in kept else 0.0 for i in range(n)]
        mass = 0.0
        for v in ws:
            mass += v
        if mass <= 0:  # all surviving weights underflowed: equal among survivors
            ws = [1.0 if i in kept else 0.0 for i in range(n)]
            mass = 0.0
            for v in ws:
                mass += v
        total, low, high = 0.0, math.inf, -math.inf
        for i in range(n):
            wi = ws[i] / mass
            share[i][j] = wi
            if wi > 0:
                total += wi * col[i]
                low, high = min(low, col[i]), max(high, col[i])
            else:
                total += wi * 0.0
        values.append(min(max(total, low), high))
    return values, share


def _combine(x: FloatArray, weights: FloatArray) -> FloatArray:
    # a convex combination; written as sum of w*x so huge trimmed inputs (w = 0) cannot overflow
    used = weights > 0
    masked = np.where(used, x, 0.0)
    total = np.sum(weights * masked, axis=0)
    # a convex combination lies in the range of what it combines; the clip only undoes rounding
    low = np.min(np.where(used, x, np.inf), axis=0)
    high = np.max(np.where(used, x, -np.inf), axis=0)
    return np.asarray(np.clip(total, low, high), dtype=np.float64)


def _pairwise_sq(x: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):
        diff = x[:, None, :] - x[None, :, :]
        return np.asarray(np.sum(diff * diff, axis=2), dtype=np.float64)


def krum_scores(values: ArrayLike, f: int) -> FloatArray:
    """Krum score per input: sum of squared distances to its ``n - f - 2`` nearest others.

    Returns shape ``(n,)``; ``inf`` where distances overflow (absurd inputs).
    """
    x = _as_matrix(values)
    n = x.shape[0]
    check_tolerance(Aggregator.KRUM, n, f)
    dist = _pairwise_sq(x)
    np.fill_diagonal(dist, np.inf)
    nearest = np.sort(dist, axis=1)[:, : n - f - 2]
    with np.errstate(over="ignore"):
        return np.asarray(nearest.sum(axis=1), dtype=np.float64)


def krum(values: ArrayLike, f: int) -> int:
    """Index of the Krum choice (lowest score; ties to the lowest index)."""
    return int(np.argmin(krum_scores(values, f)))


def multi_krum(values: ArrayLike, f: int, m: int | None = None) -> IntArray:
    """Indices of the ``m`` lowest Krum scores (default ``m = n - f``), best first."""
    x = _as_matrix(values)
    n = x.shape[0]
    m = n - f if m is None else m
    if not 1 <= m <= n - f:
        raise InvalidParameter(f"multi-Krum selects m in [1, n - f] = [1, {n - f}], got {m}")
    scores = krum_scores(x, f)
    return np.argsort(scores, kind="stable")[:m].astype(np.intp)


def _row_norms(diff: FloatArray) -> FloatArray:
    # scale each row by its largest entry so 1e300-sized inputs neither overflow nor underflow
    scale = np.max(np.abs(diff), axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    return np.asarray(
        scale * np.sqrt(np.sum((diff / safe[:, None]) ** 2, axis=1)), dtype=np.float64
    )


def geometric_median_weights(
    values: ArrayLike,
    f: int = 0,
    weights: ArrayLike | None = None,
    *,
    tol: float = 1e-12,
    max_iter: int = 1000,
) -> tuple[FloatArray, FloatArray]:
    """Geometric median by Weiszfeld's iteration (with the Vardi-Zhang fix at data points).

    Minimizes ``sum_i w_i |x_i - y|``. Starts at the coordinate-wise median;
    stops when a step moves less than ``tol`` times the data's scale. Warns
    :class:`~swarmvar.errors.ConvergenceWarning` after ``max_iter`` steps.

    Returns
    -------
    y : ndarray, shape (d,)
    contribution : ndarray, shape (n,)
        Final Weiszfeld weights ``w_i / |x_i - y|`` normalized to sum 1
        (``y`` is their weighted mean at the fixed point).
    """
    x = _as_matrix(values)
    n = x.shape[0]
    check_tolerance(Aggregator.GEOMETRIC_MEDIAN, n, f)
    w = _check_weights(weights, n)
    if w.sum() <= 0:
        raise InvalidParameter("geometric median weights must not all be zero")
    size = float(np.max(np.abs(x)))
    if 0.0 < size < 1e-250 or size > 1e250:  # subnormal or huge: iterate on x * 2^k (exact)
        k = -math.frexp(size)[1]
        y_k, c_k = geometric_median_weights(np.ldexp(x, k), f, w, tol=tol, max_iter=max_iter)
        return np.asarray(np.ldexp(y_k, -k), dtype=np.float64), c_k
    y = np.asarray(np.median(x, axis=0), dtype=np.float64)
    scale = max(float(np.max(np.abs(x - y))), np.finfo(float).tiny)
    contribution = w / w.sum()
    for _ in range(max_iter):
        dist = _row_norms(x - y)
        at = dist <= scale * 1e-15
        inv = np.where(at, 0.0, w / np.where(at, 1.0, dist))
        if inv.sum() == 0:  # every weighted point coincides with y
            return y, contribution
        contribution = inv / inv.sum()
        t = _combine(x, np.repeat(contribution[:, None], x.shape[1], axis=1))
        if np.any(at):
            # Vardi & Zhang (2000): y is a data point; leave it only if the others pull harder
            # than its own weight
            pull = _row_norms(((t - y) * inv.sum())[None, :])[0]
            eta = float(w[at].sum())
            if pull <= eta:
                contribution = at * w / eta
                return y, contribution
            t = (1.0 - eta / pull) * t + (eta / pull) * y
        step = float(_row_norms((t - y)[None, :])[0])
        y = t
        if step <= tol * scale:
            return y, contribution
    warnings.warn(
        f"Weiszfeld did not converge in {max_iter} iterations", ConvergenceWarning, stacklevel=2
    )
    return y, contribution


def geometric_median(
    values: ArrayLike, f: int = 0, weights: ArrayLike | None = None, *, tol: float = 1e-12
) -> FloatArray:
    """Geometric median of the rows (see :func:`geometric_median_weights`), shape ``(d,)``."""
    return geometric_median_weights(values, f, weights, tol=tol)[0]


def robust_aggregate(
    values: ArrayLike,
    aggregator: Aggregator,
    f: int,
    weights: ArrayLike | None = None,
    *,
    multi_krum_m: int | None = None,
) -> Aggregate:
    """Aggregate the rows of ``values`` (shape ``(n, d)``) with one rule.

    ``weights`` (shape ``(n,)``, e.g. track-record weights) apply to the
    survivors of trimmed mean and multi-Krum, to the plain mean and to the
    geometric median; the median and Krum pick inputs and ignore them.

    Raises
    ------
    NotEnoughAgents
        If ``n`` is below the rule's tolerance bound for ``f``.
    """
    x = _as_matrix(values)
    n, d = x.shape
    check_tolerance(aggregator, n, f)
    w = _check_weights(weights, n)
    if aggregator in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN) and n <= _SMALL:
        trim = f if aggregator is Aggregator.TRIMMED_MEAN else 0
        value, share = _small_trimmed(x.tolist(), trim, w.tolist())
        return Aggregate(value=np.array(value), weights=np.array(share))
    if aggregator is Aggregator.MEDIAN:
        out = _median_weights(x)
    elif aggregator is Aggregator.TRIMMED_MEAN:
        out = _trimmed_weights(x, f, w)
    elif aggregator is Aggregator.MEAN:
        out = _trimmed_weights(x, 0, w)
    elif aggregator is Aggregator.KRUM:
        out = np.zeros((n, d))
        out[krum(x, f)] = 1.0
    elif aggregator is Aggregator.MULTI_KRUM:
        chosen = multi_krum(x, f, multi_krum_m)
        sel = np.zeros(n)
        sel[chosen] = w[chosen] if w[chosen].sum() > 0 else 1.0
        out = np.repeat((sel / sel.sum())[:, None], d, axis=1)
    else:
        _, contribution = geometric_median_weights(x, f, w)
        out = np.repeat(contribution[:, None], d, axis=1)
    return Aggregate(value=_combine(x, out), weights=out)


# --- credible intervals: the agents' disagreement added by the law of total variance ---------


_OVERFLOW = ("the consensus interval overflows: the agents' forecasts differ by more than "
             "the float range; such forecasts cannot be combined")


def _quadrature(a: float, b: float) -> float:
    """``sqrt(a^2 + b^2)`` for ``a, b >= 0`` without overflow (scaled by the larger)."""
    t = max(a, b)
    return t * math.sqrt((a / t) * (a / t) + (b / t) * (b / t)) if t > 0 else 0.0


def disagreement_bounds(
    point: float,
    lower: float,
    upper: float,
    points: list[float],
    weights: list[float],
    f: int,
    z: float,
) -> tuple[float, float]:
    """A credible interval around ``point`` that also holds the agents' disagreement.

    Law of total variance over the weighted agents: the consensus's
    uncertainty is the agents' own posterior spread (the robust rule's
    ``(lower, upper)``, each bound aggregated like the point) plus the spread
    of their points, ``B = sum_i w_i (x_i - point)^2 / sum_i w_i``. Each side
    grows in quadrature: ``point -/+ sqrt(side^2 + z^2 B)``; a lower bound
    that was ``>= 0`` stays ``>= 0``.

    Byzantine bound: each ``x_i`` is first clipped to ``[x_(f+1), x_(n-f)]``
    (the ``(f+1)``-th smallest and largest points), which lie in the honest
    range when at most ``f`` rows are bad. So, whatever the bad rows report
    and whatever their weights (computed by the aggregator from realized
    losses, never self-reported), ``B <= (max honest - min honest)^2`` when
    ``point`` is in the honest range, and each side grows by at most ``z``
    times the honest points' range.

    ``points``, ``weights`` ``(m,)`` as Python floats (weights ``>= 0``,
    equal if they sum to 0); ``z`` the normal quantile of the interval's
    mass. Sums run in index order and every step is scaled against overflow
    the same way as in :func:`disagreement_bounds_days` (the same bits, tested).
    """
    m = len(points)
    s = sorted(points)
    k = min(f, (m - 1) // 2)
    low_clip, high_clip = s[k], s[m - 1 - k]
    mass = 0.0
    for w in weights:
        mass += w
    gaps = [min(max(x, low_clip), high_clip) - point for x in points]
    c = 0.0
    for d in gaps:
        c = max(c, abs(d))
    total = 0.0
    if c > 0:
        for d, w in zip(gaps, weights, strict=True):
            total += (w if mass > 0 else 1.0) * ((d / c) * (d / c))
    sd = c * math.sqrt(total / (mass if mass > 0 else float(m)))
    low, high = min(lower, point), max(upper, point)
    new_low = point - _quadrature(point - low, z * sd)
    new_high = point + _quadrature(high - point, z * sd)
    if not math.isfinite(new_low + new_high):
        raise InvalidParameter(_OVERFLOW)
    return (max(new_low, 0.0) if low >= 0 else new_low), new_high


def _quadrature_days(a: FloatArray, b: FloatArray) -> FloatArray:
    """:func:`_quadrature` elementwise (the same operations)."""
    t = np.maximum(a, b)
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, t * np.sqrt((a / safe) * (a / safe) + (b / safe) * (b / safe)), 0.0)


def disagreement_bounds_days(
    point: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    points: FloatArray,
    weights: FloatArray,
    f: int,
    z: float,
) -> tuple[FloatArray, FloatArray]:
    """:func:`disagreement_bounds` of many days: ``point``, ``lower``, ``upper`` ``(T,)``,
    ``points``, ``weights`` ``(T, m)``; returns the new ``(lower, upper)`` ``(T,)`` each.

    The same operations in the same order as the one-day form (tested bit for bit).
    """
    m = points.shape[1]
    s = np.sort(points, axis=1)
    k = min(f, (m - 1) // 2)
    low_clip, high_clip = s[:, k], s[:, m - 1 - k]
    mass = np.zeros(point.shape)
    for i in range(m):
        mass = mass + weights[:, i]
    use = mass > 0
    gaps = np.minimum(np.maximum(points, low_clip[:, None]), high_clip[:, None]) - point[:, None]
    c = np.zeros(point.shape)
    for i in range(m):
        c = np.maximum(c, np.abs(gaps[:, i]))
    safe = np.where(c > 0, c, 1.0)
    total = np.zeros(point.shape)
    for i in range(m):
        q = gaps[:, i] / safe
        total = total + np.where(use, weights[:, i], 1.0) * (q * q)
    sd = c * np.sqrt(total / np.where(use, mass, float(m)))
    low, high = np.minimum(lower, point), np.maximum(upper, point)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        new_low = point - _quadrature_days(point - low, z * sd)
        new_high = point + _quadrature_days(high - point, z * sd)
        if not np.all(np.isfinite(new_low + new_high)):
            raise InvalidParameter(_OVERFLOW)
    return np.where(low >= 0, np.maximum(new_low, 0.0), new_low), new_high
