"""Hierarchical aggregation: mergeable summaries passed up a tree of fan-out k.

Every node of the tree sends its parent a :class:`Summary` of the estimates
below it: the exact count, sum, minimum and maximum; a
:class:`~swarmvar.consensus.sketch.QuantileSketch` (exact per-bucket counts
and sums over log-spaced buckets); and, for log-evidence, the pair
``(m, s) = (max x, sum exp(x - m))``. Summaries merge associatively:

    ``(m1, s1) + (m2, s2) = (m, s1 exp(m1 - m) + s2 exp(m2 - m))``, ``m = max(m1, m2)``

so the root knows ``log sum exp(x) = m + log s`` without ever exponentiating
a large negative number on its own (stable for 1e6 values in [-1e6, 0]), and
reads the trimmed mean and the median from the sketch within its stated
bound. Work is O(n); depth is ``ceil(log_k(leaves)) + 1``.

:func:`aggregate_tree` simulates the tree in-process: each leaf summarizes a
block of ``leaf_size`` consecutive estimates (one host's agents), and each
level merges groups of ``fanout`` children. A level is a stack of summaries
in arrays, so a level's merges run as one numpy reduction; the result is the
same as merging :class:`Summary` objects one by one (see :func:`merge`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .sketch import (
    DEFAULT_ACCURACY,
    DEFAULT_MIN_VALUE,
    Bounded,
    QuantileSketch,
    bucket_keys,
    check_accuracy,
    merge_sketches,
    precision_bits,
    sketch,
    sketch_median,
    sketch_trimmed_mean,
)

FloatArray = NDArray[np.float64]

#: keep a level's (nodes x buckets) arrays below this many cells
MAX_LEVEL_CELLS = 1 << 22


@dataclass(frozen=True)
class Summary:
    """What one tree node passes upward (all fields merge exactly or stably).

    ``log_max`` / ``log_scaled_sum`` are the log-sum-exp pair ``(m, s)`` of
    the log-evidence values below the node (``(-inf, 0)`` if none).
    """

    count: int
    total: float
    minimum: float
    maximum: float
    sketch: QuantileSketch
    log_max: float = -math.inf
    log_scaled_sum: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count

    @property
    def log_normalizer(self) -> float:
        """``log sum exp(x)`` over the log-evidence values below the node."""
        if self.log_scaled_sum <= 0:
            return -math.inf
        return self.log_max + math.log(self.log_scaled_sum)


def _lse_merge(m1: float, s1: float, m2: float, s2: float) -> tuple[float, float]:
    m = max(m1, m2)
    if m == -math.inf:
        return m, 0.0
    return m, s1 * math.exp(m1 - m) + s2 * math.exp(m2 - m)


def summarize(
    values: ArrayLike,
    log_evidence: ArrayLike | None = None,
    *,
    relative_accuracy: float = DEFAULT_ACCURACY,
    min_value: float = DEFAULT_MIN_VALUE,
) -> Summary:
    """Summary of one leaf's estimates ``values (n,)`` (and their log-evidence ``(n,)``)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise InvalidParameter("a leaf summarizes at least one finite value")
    m, s = -math.inf, 0.0
    if log_evidence is not None:
        e = _log_evidence(log_evidence, x.size)
        m = float(e.max())
        s = float(np.exp(e - m).sum()) if m > -math.inf else 0.0
    return Summary(
        count=int(x.size),
        total=float(x.sum()),
        minimum=float(x.min()),
        maximum=float(x.max()),
        sketch=sketch(x, relative_accuracy, min_value),
        log_max=m,
        log_scaled_sum=s,
    )


def merge(a: Summary, b: Summary) -> Summary:
    """Summary of the union of what ``a`` and ``b`` summarize."""
    m, s = _lse_merge(a.log_max, a.log_scaled_sum, b.log_max, b.log_scaled_sum)
    return Summary(
        count=a.count + b.count,
        total=a.total + b.total,
        minimum=min(a.minimum, b.minimum),
        maximum=max(a.maximum, b.maximum),
        sketch=merge_sketches(a.sketch, b.sketch),
        log_max=m,
        log_scaled_sum=s,
    )


def merge_all(summaries: Sequence[Summary]) -> Summary:
    """Merge several summaries (one tree node's children)."""
    if not summaries:
        raise InvalidParameter("nothing to merge")
    out = summaries[0]
    for item in summaries[1:]:
        out = merge(out, item)
    return out


def _log_evidence(log_evidence: ArrayLike, n: int) -> FloatArray:
    e = np.asarray(log_evidence, dtype=np.float64).ravel()
    if e.shape != (n,) or np.any(np.isnan(e)) or np.any(e == np.inf):
        raise InvalidParameter(f"log_evidence must be {n} numbers, finite or -inf")
    return e


@dataclass(frozen=True)
class Tree:
    """Root summary of a simulated aggregation tree, and its shape."""

    root: Summary
    fanout: int
    leaf_size: int
    leaves: int
    depth: int

    def trimmed_mean(self, f: int) -> Bounded:
        """Trimmed mean (``f`` dropped per side) read at the root, with its error bound."""
        return sketch_trimmed_mean(self.root.sketch, f)

    def median(self) -> Bounded:
        """Median read at the root, within relative ``a``."""
        return sketch_median(self.root.sketch)

    def bma_weights(self, log_evidence: ArrayLike) -> FloatArray:
        """Each agent's BMA weight ``exp(x_i - log Z)`` with the root's ``log Z``."""
        log_z = self.root.log_normalizer
        if not np.isfinite(log_z):
            raise InvalidParameter("the tree holds no finite log-evidence to normalize by")
        e = np.asarray(log_evidence, dtype=np.float64)
        return np.asarray(np.exp(e - log_z), dtype=np.float64)


def _reduce_level(
    counts: NDArray[np.int64], sums: FloatArray, scalars: FloatArray, fanout: int
) -> tuple[NDArray[np.int64], FloatArray, FloatArray]:
    """Merge groups of ``fanout`` consecutive nodes (rows) into one parent each."""
    nodes = counts.shape[0]
    pad = (-nodes) % fanout
    if pad:
        identity = np.array([0.0, math.inf, -math.inf, -math.inf, 0.0])
        counts = np.vstack([counts, np.zeros((pad, counts.shape[1]), dtype=np.int64)])
        sums = np.vstack([sums, np.zeros((pad, sums.shape[1]))])
        scalars = np.vstack([scalars, np.tile(identity, (pad, 1))])
    g = counts.shape[0] // fanout
    counts = counts.reshape(g, fanout, -1).sum(axis=1)
    sums = sums.reshape(g, fanout, -1).sum(axis=1)
    sc = scalars.reshape(g, fanout, 5)
    m = sc[:, :, 3].max(axis=1)
    safe_m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        scaled = np.where(sc[:, :, 4] > 0, sc[:, :, 4] * np.exp(sc[:, :, 3] - safe_m[:, None]), 0.0)
    merged = np.column_stack(
        [
            sc[:, :, 0].sum(axis=1),
            sc[:, :, 1].min(axis=1),
            sc[:, :, 2].max(axis=1),
            m,
            scaled.sum(axis=1),
        ]
    )
    return counts, sums, merged


def _block_extremes(x: FloatArray, leaf_size: int) -> tuple[FloatArray, FloatArray]:
    """Per-leaf minimum and maximum, shapes ``(leaves,)``."""
    n = x.size
    full = n // leaf_size
    cut = full * leaf_size
    blocks = x[:cut].reshape(full, leaf_size)
    lows, highs = blocks.min(axis=1), blocks.max(axis=1)
    if cut < n:
        lows = np.append(lows, x[cut:].min())
        highs = np.append(highs, x[cut:].max())
    return lows, highs


def _bucket_tables(
    x: FloatArray, slot: NDArray[np.int64], bias: int, width: int, leaf_size: int
) -> tuple[NDArray[np.int64], FloatArray]:
    """Per-leaf bucket counts and sums, shapes ``(leaves, width)``.

    Leaf ``j`` holds ``x[j * leaf_size : (j + 1) * leaf_size]``; value ``i`` is in
    bucket column ``slot[i] - bias``. ``slot`` is overwritten (it becomes the
    flat cell index, saving a pass over a million values).
    """
    n = x.size
    full = n // leaf_size
    cut = full * leaf_size
    leaves = full + (cut < n)
    offsets = np.arange(full, dtype=np.int64) * width - bias
    grid = slot[:cut].reshape(full, leaf_size)
    np.add(grid, offsets[:, None], out=grid)
    slot[cut:] += full * width - bias
    counts = np.bincount(slot, minlength=leaves * width).reshape(leaves, width)
    sums = np.bincount(slot, weights=x, minlength=leaves * width).reshape(leaves, width)
    return counts.astype(np.int64, copy=False), sums.astype(np.float64, copy=False)


def aggregate_tree(
    values: ArrayLike,
    log_evidence: ArrayLike | None = None,
    *,
    fanout: int = 8,
    leaf_size: int = 4096,
    relative_accuracy: float = DEFAULT_ACCURACY,
    min_value: float = DEFAULT_MIN_VALUE,
) -> Tree:
    """Aggregate ``n`` estimates up a tree of fan-out ``fanout``; return the root.

    Parameters
    ----------
    values : array_like, shape (n,)
        One estimate per agent (e.g. VaR, positive losses), finite.
    log_evidence : array_like, shape (n,), optional
        Per-agent log model evidence for BMA weights (finite or -inf).
    fanout : int
        Children per inner node (>= 2).
    leaf_size : int
        Estimates per leaf; raised if needed so that a level's bucket table
        stays under ``MAX_LEVEL_CELLS`` cells (reported in the result).
    relative_accuracy : float
        The sketch's ``a``.
    """
    check_accuracy(relative_accuracy, min_value)
    if fanout < 2 or leaf_size < 1:
        raise InvalidParameter(f"fanout must be >= 2 and leaf_size >= 1, got {fanout}, {leaf_size}")
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    if n == 0:
        raise InvalidParameter("aggregate_tree needs at least one value")
    precision = precision_bits(relative_accuracy)
    lows, highs = _block_extremes(x, leaf_size)
    # min/max propagate NaN and expose inf, so this checks every value without another pass
    if not (np.isfinite(lows).all() and np.isfinite(highs).all()):
        raise InvalidParameter("aggregate_tree needs finite values (no NaN or inf)")
    k_lo, k_hi = (
        int(k) for k in bucket_keys(np.array([lows.min(), highs.max()]), precision, min_value)
    )
    keys = bucket_keys(x, precision, min_value, all_above=float(lows.min()) > min_value)
    span = k_hi - k_lo + 1
    if math.ceil(n / leaf_size) * span <= MAX_LEVEL_CELLS:
        slot, bias, column_keys = keys, k_lo, np.arange(k_lo, k_hi + 1, dtype=np.int64)
    else:  # far-apart values (e.g. 1e300 outliers): number only the buckets in use
        keys -= k_lo
        present = np.bincount(keys) > 0
        column_keys = np.flatnonzero(present).astype(np.int64) + k_lo
        slot, bias = (np.cumsum(present) - 1)[keys], 0
    width = column_keys.size
    wide_leaf = max(leaf_size, math.ceil(n * width / MAX_LEVEL_CELLS))
    if wide_leaf != leaf_size:
        leaf_size = wide_leaf
        lows, highs = _block_extremes(x, leaf_size)
    counts, sums = _bucket_tables(x, slot, bias, width, leaf_size)
    scalars = np.empty((counts.shape[0], 5))
    scalars[:, 0] = sums.sum(axis=1)
    scalars[:, 1], scalars[:, 2] = lows, highs
    scalars[:, 3], scalars[:, 4] = -math.inf, 0.0
    leaves = counts.shape[0]
    if log_evidence is not None:
        e = _log_evidence(log_evidence, n)
        pad = leaves * leaf_size - n
        eb = np.concatenate([e, np.full(pad, -math.inf)]).reshape(leaves, leaf_size)
        m = eb.max(axis=1)
        safe = np.where(np.isfinite(m), m, 0.0)
        scalars[:, 3] = m
        scalars[:, 4] = np.exp(eb - safe[:, None]).sum(axis=1)
    depth = 1
    while counts.shape[0] > 1:
        counts, sums, scalars = _reduce_level(counts, sums, scalars, fanout)
        depth += 1
    nonzero = counts[0] > 0
    root_sketch = QuantileSketch(
        precision,
        min_value,
        column_keys[nonzero],
        counts[0][nonzero],
        sums[0][nonzero],
    )
    total, lo, hi, m, s = (float(v) for v in scalars[0])
    root = Summary(n, total, lo, hi, root_sketch, m, s)
    return Tree(root=root, fanout=fanout, leaf_size=leaf_size, leaves=leaves, depth=depth)
