"""A mergeable quantile sketch with log-spaced buckets (DDSketch-style).

Buckets follow the binary floating-point representation: every octave
``[2^e, 2^(e+1))`` is split into ``2^p`` equal slices, so a bucket ``[lo, hi)``
has ``hi / lo <= 1 + 2^-p``. The bucket key is read straight off the bits of
the IEEE-754 double (no logarithm: the bit pattern of a positive double is
``(e + 1023) * 2^52 + mantissa bits``, a piecewise-linear log2), which makes
sketching a million values a few integer passes. ``p`` is the smallest
precision meeting the requested relative accuracy ``a``:
``1 + 2^-p <= gamma = (1 + a) / (1 - a)``. Keys sort like the values:
``k > 0`` for ``x > 0``, ``-k`` for ``-x``, and ``0`` for ``|x| < min_value``
(the zero bucket, read as 0). Each bucket keeps its exact count and the exact
sum of its values, so sketches merge by adding counts and sums bucket by
bucket: merging is associative and commutative, and the merge of two
sketches is the sketch of the union.

Error bounds (as in DDSketch, Masson, Rim & Lee 2019):

* an order statistic read as its bucket's harmonic midpoint
  ``2 lo hi / (lo + hi)`` is within relative error ``a`` of the true value
  (``min_value`` absolute in the zero bucket);
* a trimmed mean keeps whole buckets exactly (their sums are exact up to
  floating-point rounding, which the bound includes) and brackets only the
  partially kept boundary buckets, so its error is at most the returned
  ``bound``, itself at most ``a / (1 - a) * max |kept value|`` plus rounding
  (``2^-52 (max bucket count + 1024) sum |kept|``, about 1e-10 relative for
  a million values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_ACCURACY = 0.01
DEFAULT_MIN_VALUE = 1e-300
_ABS_MASK = np.int64(0x7FFFFFFFFFFFFFFF)
_MANTISSA_BITS = 52


@dataclass(frozen=True)
class Bounded:
    """A value read from a summary and a bound on its absolute error."""

    value: float
    bound: float


def precision_bits(relative_accuracy: float) -> int:
    """Slices per octave ``2^p`` needed for relative accuracy ``a`` (returns ``p``)."""
    gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy)
    return max(0, math.ceil(-math.log2(gamma - 1.0)))


@dataclass(frozen=True)
class QuantileSketch:
    """Sparse log-bucket sketch: sorted ``keys (B,)``, ``counts (B,)``, ``sums (B,)``.

    ``precision`` is ``p`` (``2^p`` buckets per octave); ``min_value`` bounds
    the zero bucket.
    """

    precision: int
    min_value: float
    keys: IntArray
    counts: IntArray
    sums: FloatArray

    @property
    def relative_accuracy(self) -> float:
        """The accuracy ``a`` actually met: ``(gamma - 1) / (gamma + 1)``, ``gamma = 1 + 2^-p``."""
        step = 2.0**-self.precision
        return step / (2.0 + step)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def bucket_bounds(self) -> tuple[FloatArray, FloatArray]:
        """Lower and upper value bound of each bucket, shapes ``(B,)`` (exact)."""
        shift = _MANTISSA_BITS - self.precision
        base = _grid_base(self.min_value, shift)
        mag = np.abs(self.keys)
        inner = (base + ((mag - 1) << shift)).view(np.float64)
        outer = (base + (mag << shift)).view(np.float64)
        lower = np.where(self.keys > 0, inner, np.where(self.keys < 0, -outer, -self.min_value))
        upper = np.where(self.keys > 0, outer, np.where(self.keys < 0, -inner, self.min_value))
        return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)

    def representatives(self) -> FloatArray:
        """Value reported for each bucket (relative error <= ``a``; 0 for the zero bucket)."""
        lower, upper = self.bucket_bounds()
        lo, hi = np.minimum(np.abs(lower), np.abs(upper)), np.maximum(np.abs(lower), np.abs(upper))
        with np.errstate(divide="ignore", over="ignore"):
            mag = np.where(self.keys != 0, 2.0 / (1.0 / np.where(lo > 0, lo, 1.0) + 1.0 / hi), 0.0)
        return np.asarray(np.sign(self.keys) * mag, dtype=np.float64)


def _grid_base(min_value: float, shift: int) -> np.int64:
    bits = np.array(min_value, dtype=np.float64).view(np.int64)
    return np.int64(bits & ~np.int64((1 << shift) - 1))


def check_accuracy(relative_accuracy: float, min_value: float) -> None:
    if not 0.0 < relative_accuracy < 1.0:
        raise InvalidParameter(f"relative_accuracy must be in (0, 1), got {relative_accuracy}")
    if not 1e-300 <= min_value < 1.0:
        raise InvalidParameter(f"min_value must be in [1e-300, 1), got {min_value}")
    if precision_bits(relative_accuracy) > 40:
        raise InvalidParameter(
            f"relative_accuracy {relative_accuracy} is finer than supported (2^-40)"
        )


def bucket_keys(
    values: FloatArray,
    precision: int,
    min_value: float = DEFAULT_MIN_VALUE,
    *,
    all_above: bool = False,
) -> IntArray:
    """Bucket key of each value (shape as ``values``, int64), read from the float bits.

    ``all_above=True`` promises every value exceeds ``min_value`` (no zeros or
    negatives, the usual case for VaR) and skips the passes that handle them.
    """
    shift = _MANTISSA_BITS - precision
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    if all_above:
        keys = bits - _grid_base(min_value, shift)
        keys >>= shift
        keys += 1
        return keys
    keys = bits & _ABS_MASK
    keys -= _grid_base(min_value, shift)
    keys >>= shift
    np.maximum(keys, -1, out=keys)
    keys += 1
    negative = bits < 0
    if negative.any():
        np.negative(keys, out=keys, where=negative)
    return keys


def sketch(
    values: ArrayLike,
    relative_accuracy: float = DEFAULT_ACCURACY,
    min_value: float = DEFAULT_MIN_VALUE,
) -> QuantileSketch:
    """Sketch of ``values`` (shape ``(n,)``, finite)."""
    check_accuracy(relative_accuracy, min_value)
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise InvalidParameter("sketched values must be finite")
    p = precision_bits(relative_accuracy)
    keys = bucket_keys(x, p, min_value)
    uniq, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=uniq.size).astype(np.int64)
    sums = np.bincount(inverse, weights=x, minlength=uniq.size).astype(np.float64)
    return QuantileSketch(p, min_value, uniq.astype(np.int64), counts, sums)


def merge_sketches(a: QuantileSketch, b: QuantileSketch) -> QuantileSketch:
    """The sketch of the union of what ``a`` and ``b`` summarize."""
    if (a.precision, a.min_value) != (b.precision, b.min_value):
        raise InvalidParameter("cannot merge sketches with different precision or min_value")
    keys = np.concatenate([a.keys, b.keys])
    uniq, inverse = np.unique(keys, return_inverse=True)
    weights = np.concatenate([a.sums, b.sums])
    sums = np.bincount(inverse, weights=weights, minlength=uniq.size).astype(np.float64)
    counts = np.zeros(uniq.size, dtype=np.int64)  # integer adds: counts stay exact
    np.add.at(counts, inverse, np.concatenate([a.counts, b.counts]))
    return QuantileSketch(a.precision, a.min_value, uniq, counts, sums)


def _order_statistic(s: QuantileSketch, cum: IntArray, rank: int) -> Bounded:
    b = int(np.searchsorted(cum, rank, side="right"))
    value = float(s.representatives()[b])
    a = s.relative_accuracy
    bound = a / (1.0 - a) * abs(value) + s.min_value
    return Bounded(value, bound)


def sketch_quantile(s: QuantileSketch, q: float) -> Bounded:
    """The order statistic of rank ``floor(q (n - 1))`` (0-based), within relative ``a``."""
    if not 0.0 <= q <= 1.0:
        raise InvalidParameter(f"q must be in [0, 1], got {q}")
    n = s.count
    if n == 0:
        raise InvalidParameter("quantile of an empty sketch")
    return _order_statistic(s, np.cumsum(s.counts), int(math.floor(q * (n - 1))))


def sketch_median(s: QuantileSketch) -> Bounded:
    """Median (mean of the two middle order statistics when ``n`` is even)."""
    n = s.count
    if n == 0:
        raise InvalidParameter("median of an empty sketch")
    cum = np.cumsum(s.counts)
    lo = _order_statistic(s, cum, (n - 1) // 2)
    hi = _order_statistic(s, cum, n // 2)
    return Bounded(0.5 * lo.value + 0.5 * hi.value, 0.5 * lo.bound + 0.5 * hi.bound)


def sketch_trimmed_mean(s: QuantileSketch, f: int) -> Bounded:
    """Mean of the order statistics of ranks ``f .. n - f - 1``, with a rigorous error bound.

    Whole kept buckets contribute their exact sums. A boundary bucket with
    ``c`` values summing to ``t`` inside ``[lo, hi]`` of which the lowest (or
    highest) ``k`` are kept contributes a sum known to lie in an interval
    (e.g. lowest ``k``: ``[max(k lo, t - (c - k) hi), k t / c]``); the
    midpoint is used and half the width is added to the bound.
    """
    n = s.count
    if f < 0 or n < 2 * f + 1:
        raise InvalidParameter(f"trimmed mean drops f={f} from each side of n={n}; needs n >= 2f+1")
    cum = np.cumsum(s.counts)
    start = cum - s.counts
    kept = np.clip(np.minimum(cum, n - f) - np.maximum(start, f), 0, None)
    full = kept == s.counts
    parts = s.sums[full].tolist()
    bound = 0.0
    lower, upper = s.bucket_bounds()
    for b in np.flatnonzero((kept > 0) & ~full):
        c, k, t = int(s.counts[b]), int(kept[b]), float(s.sums[b])
        lo, hi = float(lower[b]), float(upper[b])
        drop = c - k
        if start[b] < f:  # bucket crosses the lower cut: its highest k are kept
            low_sum, high_sum = k * t / c, min(k * hi, t - drop * lo)
            if cum[b] > n - f:  # ... and the upper cut too: a middle slice
                low_sum, high_sum = k * lo, k * hi
        else:  # crosses only the upper cut: its lowest k are kept
            low_sum, high_sum = max(k * lo, t - drop * hi), k * t / c
        low_sum, high_sum = min(low_sum, high_sum), max(low_sum, high_sum)
        parts.append(0.5 * (low_sum + high_sum))
        # half the width, plus the rounding of the midpoint and the width themselves
        bound += 0.5 * (high_sum - low_sum) + 2.0**-52 * (abs(low_sum) + abs(high_sum))
    # bucket sums are floating-point sums of same-sign values (error <= eps * count * |sum|,
    # plus the tree's merges); fsum then adds them exactly rounded, however they cancel
    touched = kept > 0
    rounding = 2.0**-52 * (int(s.counts.max()) + 1024) * float(np.abs(s.sums[touched]).sum())
    total = math.fsum(parts)
    m = n - 2 * f
    return Bounded(total / m, (bound + rounding) / m)
