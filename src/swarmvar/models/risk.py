"""From a posterior predictive distribution to VaR, ES and their credible intervals.

Every agent describes its next-period return distribution as a *family*: one
conditional distribution per posterior draw ``s`` with posterior weight
``w_s``. This module is the one shared function that turns a family into
:class:`~swarmvar.types.RiskMeasure` values, so that every agent reports VaR
and ES the same way:

* the point VaR is the ``alpha`` quantile of the loss ``L = -r`` under the
  posterior predictive, the mixture ``sum_s w_s P_s``, found by root-finding
  ``sum_s w_s P_s(L > v) = 1 - alpha``;
* the point ES follows from the Rockafellar–Uryasev identity
  ``ES = VaR + E[(L - VaR)^+] / (1 - alpha)``, exact for continuous and
  discrete distributions alike;
* the credible intervals are weighted equal-tailed quantiles, across draws,
  of the conditional ``VaR_s`` and ``ES_s``.

Losses are positive numbers in return units (0.01 = 1%).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from ..errors import InvalidParameter
from ..types import RiskMeasure

FloatArray = NDArray[np.float64]


class Family(Protocol):
    """A weighted set of conditional loss distributions, one per posterior draw."""

    @property
    def weights(self) -> FloatArray:
        """Posterior weights ``(S,)``, summing to one."""
        ...

    def var(self, alpha: float) -> FloatArray:
        """Conditional VaR per draw ``(S,)``: the ``alpha`` quantile of the loss."""
        ...

    def tail(self, v: float) -> FloatArray:
        """``P_s(L > v)`` per draw ``(S,)``."""
        ...

    def excess(self, v: float | FloatArray) -> FloatArray:
        """``E_s[(L - v)^+]`` per draw ``(S,)`` (``v`` scalar or ``(S,)``)."""
        ...


class LevelMeasures(NamedTuple):
    """One confidence level of a family: the point VaR and ES and the per-draw ones ``(S,)``.

    A family may compute these for several levels at once, faster than the
    generic route through ``var``, ``excess`` and :func:`mixture_var`, by
    offering ``level_measures(alphas) -> tuple[LevelMeasures, ...]`` (e.g.
    GarchT's cached Student-t family, GarchEVT's GPD family);
    :func:`risk_measures` then uses it.
    """

    var: float
    es: float
    cond_var: FloatArray
    cond_es: FloatArray


#: Bytes of values sorted together by :func:`risk_measures_block` (see there).
CHUNK_BYTES = 100_000


class BlockMeasures(NamedTuple):
    """The level measures of ``D`` families (days) at once, for :func:`risk_measures_block`.

    ``var``, ``es`` ``(D, L)``; ``cond_var``, ``cond_es`` ``(D, L, S)``;
    ``redo`` lists the days whose rows are not filled in, to be solved one
    family at a time (cases the batched solver leaves to the family's own).
    """

    var: FloatArray
    es: FloatArray
    cond_var: FloatArray
    cond_es: FloatArray
    redo: list[int]


def day_dots(x: FloatArray, w: FloatArray, days: NDArray[np.intp]) -> FloatArray:
    """``x[i] @ w[days[i]]`` ``(M,)``, each day's rows of ``x`` ``(M, S)`` in one product.

    ``days`` is sorted. A day's rows are multiplied together, as one
    ``(k, S) @ (S,)`` product, which is what a single family computes (numpy
    picks its BLAS routine by the shapes, and a stacked product makes the same
    call per day): the sums are the same, bit for bit.
    """
    cut = np.flatnonzero(np.diff(days)) + 1
    runs = cut.size + 1
    k = days.size // runs
    if k * runs == days.size and np.array_equal(cut, np.arange(1, runs) * k):
        # every day has k rows: one stacked product
        return (x.reshape(runs, k, x.shape[1]) @ w[days[::k]][:, :, None]).reshape(-1)
    out = np.empty(days.size)
    for a, b in zip([0, *cut.tolist()], [*cut.tolist(), int(days.size)], strict=True):
        out[a:b] = x[a:b] @ w[days[a]]
    return out


def _normalized(weights: ArrayLike | None, size: int) -> FloatArray:
    if weights is None:
        even: FloatArray = np.full(size, 1.0 / size)
        return even
    w = np.asarray(weights, dtype=float)
    if w.shape != (size,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InvalidParameter(f"posterior weights must be {size} finite non-negative numbers")
    out: FloatArray = w / w.sum()
    return out


def t_log_norm(nu: ArrayLike) -> FloatArray:
    """``log Gamma((nu+1)/2) - log Gamma(nu/2) - log(pi nu)/2``: the standard t's log
    normalizing constant, elementwise (the array form the particle models and the ES tests
    share)."""
    nu = np.asarray(nu, dtype=float)
    out: FloatArray = (special.gammaln(0.5 * (nu + 1.0)) - special.gammaln(0.5 * nu)
                       - 0.5 * np.log(np.pi * nu))
    return out


class StudentTFamily:
    """Returns ``r = loc_s + scale_s * T`` with ``T`` Student-t(``df_s``) per draw.

    ``df = inf`` gives the normal distribution. ``df`` must exceed 1 so that
    ES exists. All arguments broadcast to a common shape ``(S,)``.
    """

    def __init__(
        self,
        loc: ArrayLike,
        scale: ArrayLike,
        df: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> None:
        loc_a, scale_a, df_a = np.broadcast_arrays(
            np.atleast_1d(np.asarray(loc, dtype=float)),
            np.atleast_1d(np.asarray(scale, dtype=float)),
            np.atleast_1d(np.asarray(df, dtype=float)),
        )
        if np.any(~(scale_a > 0)) or np.any(~(df_a > 1)) or not np.all(np.isfinite(loc_a)):
            raise InvalidParameter("Student-t family needs finite loc, scale > 0 and df > 1")
        self.loc, self.scale, self.df = loc_a.copy(), scale_a.copy(), df_a.copy()
        self._normal = np.isinf(self.df)
        self._weights = _normalized(weights, self.loc.size)

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def _cdf(self, z: FloatArray) -> FloatArray:
        out: FloatArray = np.where(self._normal, special.ndtr(z), special.stdtr(self.df, z))
        return out

    def var(self, alpha: float) -> FloatArray:
        q = np.where(
            self._normal,
            special.ndtri(1.0 - alpha),
            special.stdtrit(np.where(self._normal, 2.0, self.df), 1.0 - alpha),
        )
        out: FloatArray = -(self.loc + self.scale * q)
        return out

    def tail(self, v: float) -> FloatArray:
        return self._cdf((-v - self.loc) / self.scale)

    def excess(self, v: float | FloatArray) -> FloatArray:
        z = (-np.asarray(v, dtype=float) - self.loc) / self.scale
        df = np.where(self._normal, 3.0, self.df)
        log_pdf_t = t_log_norm(df) - (df + 1) / 2 * np.log1p(z * z / df)
        t_part = np.exp(log_pdf_t) * (df + z * z) / (df - 1)
        n_part = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
        result: FloatArray = self.scale * (
            z * self._cdf(z) + np.where(self._normal, n_part, t_part)
        )
        return np.maximum(result, 0.0)


class EmpiricalFamily:
    """Weighted samples of the return per draw.

    Parameters
    ----------
    samples : array ``(S, N)`` or ``(N,)``
        Returns (not losses); a 1-D array is shared by every draw.
    sample_weights : array ``(S, N)`` or None
        Weights of the samples within each draw (rows normalized here);
        ``None`` means equal weights.
    weights : array ``(S,)`` or None
        Posterior weights of the draws.
    """

    def __init__(
        self,
        samples: ArrayLike,
        sample_weights: ArrayLike | None = None,
        weights: ArrayLike | None = None,
    ) -> None:
        x = np.asarray(samples, dtype=float)
        if not np.all(np.isfinite(x)) or x.size == 0:
            raise InvalidParameter("empirical family needs finite samples")
        sw = None if sample_weights is None else np.atleast_2d(np.asarray(sample_weights, float))
        if x.ndim == 1:
            # Shared support: sort once, permute every row's weights the same way.
            order = np.argsort(-x, kind="stable")
            rows = 1 if sw is None else sw.shape[0]
            self.losses = np.broadcast_to(-x[order], (rows, x.size))
            w = np.ones((1, x.size)) if sw is None else sw[:, order]
            self._shared = True
        elif sw is None:  # equal sample weights: the rows' values in stable order suffice
            self.losses = np.sort(-x, axis=1, kind="stable")
            w = np.ones_like(x)
            self._shared = False
        else:
            order = np.argsort(-x, axis=1, kind="stable")
            self.losses = np.take_along_axis(-x, order, axis=1)
            w = np.take_along_axis(sw, order, axis=1)
            self._shared = False
        #: every sample of every draw weighs the same (no sample or draw weights given)
        self._even = sw is None and weights is None
        if w.shape != self.losses.shape:
            raise InvalidParameter(f"sample weights {w.shape} do not match samples {x.shape}")
        if np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
            raise InvalidParameter("sample weights must be non-negative with positive sums")
        self.sample_weights = w / w.sum(axis=1, keepdims=True)
        self._cum = np.cumsum(self.sample_weights, axis=1)
        self._weights = _normalized(weights, self.losses.shape[0])
        self._pooled: tuple[FloatArray, FloatArray] | None = None

    def mixture_var(self, alpha: float) -> float:
        """Exact mixture quantile: the smallest loss whose pooled cumulative weight reaches alpha.

        With one shared support the draws' weights are mixed on it; otherwise
        the losses of every draw are pooled (weight: the draw's times the
        sample's) and sorted once - what a root search on :meth:`tail` would
        converge to, without its hundred passes over every sample.
        """
        if self._shared:
            mixed = self._weights @ self.sample_weights
            cum = np.cumsum(mixed)
            idx = min(int(np.searchsorted(cum, alpha - 1e-12, side="left")), cum.size - 1)
            return float(self.losses[0, idx])
        if self._even:
            # Every pooled sample has the same weight (the same float product), so the
            # cumulative weights do not depend on the order: the quantile is the idx-th
            # smallest loss, found by a partition (O(n)) instead of a sort. A zero there
            # could be -0.0 or 0.0 depending on the order: the sorted path decides.
            pooled = self.losses.ravel()
            cum = np.cumsum((self._weights[:, None] * self.sample_weights).ravel())
            idx = min(int(np.searchsorted(cum, alpha - 1e-12, side="left")), cum.size - 1)
            value = float(np.partition(pooled, idx)[idx])
            if value != 0.0:
                return value
        if self._pooled is None:  # sorted once, for every level
            pooled = self.losses.ravel()
            order = np.argsort(pooled, kind="stable")
            cum = np.cumsum((self._weights[:, None] * self.sample_weights).ravel()[order])
            self._pooled = (pooled[order], cum)
        losses, cum = self._pooled
        idx = min(int(np.searchsorted(cum, alpha - 1e-12, side="left")), cum.size - 1)
        return float(losses[idx])

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def var(self, alpha: float) -> FloatArray:
        # smallest loss whose cumulative weight reaches alpha (the left-continuous quantile)
        idx = (self._cum < alpha - 1e-12).sum(axis=1)
        idx = np.minimum(idx, self.losses.shape[1] - 1)
        out: FloatArray = self.losses[np.arange(self.losses.shape[0]), idx]
        return out

    def tail(self, v: float) -> FloatArray:
        return np.asarray((self.sample_weights * (self.losses > v)).sum(axis=1))

    def excess(self, v: float | FloatArray) -> FloatArray:
        vv = np.asarray(v, dtype=float)
        if vv.ndim == 1:
            vv = vv[:, None]
        return np.asarray((self.sample_weights * np.maximum(self.losses - vv, 0.0)).sum(axis=1))


def weighted_quantile(values: ArrayLike, weights: ArrayLike, probs: ArrayLike) -> FloatArray:
    """Quantiles of a weighted sample (inverse of the weighted empirical CDF).

    Uses the left-continuous inverse: the smallest value whose cumulative
    weight reaches ``p``. Equal weights reproduce ``numpy.quantile(...,
    method="inverted_cdf")``.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    order = np.argsort(x, kind="stable")
    return _sorted_quantiles(x[order], w[order], probs)


def _sorted_quantiles(xs: FloatArray, ws: FloatArray, probs: ArrayLike) -> FloatArray:
    """:func:`weighted_quantile` of values ``xs`` already in stable sorted order, weights ``ws``."""
    cum = np.cumsum(ws)
    cum /= cum[-1]
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    idx = np.searchsorted(cum, p - 1e-12, side="left")
    return np.asarray(xs[np.minimum(idx, xs.size - 1)])


def _sort_keys(values: FloatArray, bits: int) -> NDArray[np.int64]:
    """Integer keys of ``values`` ``(R, S)`` in the values' order, column in the last ``bits``.

    A float's bit pattern, read as a signed integer with the magnitude bits of
    negative numbers flipped, orders as the float does (``-0.0`` is made
    ``0.0`` first, as ``==`` has it); replacing its last ``bits`` bits by the
    column orders equal values by column. Values that differ only in those
    bits (~1e-13 relative) may come out in either order.
    """
    keys = (values + 0.0).view(np.int64)  # a fresh array; + 0.0 turns -0.0 into 0.0
    flip = keys >> 63
    flip &= np.int64(0x7FFF_FFFF_FFFF_FFFF)
    keys ^= flip
    keys &= np.int64(-(1 << bits))
    keys |= np.arange(values.shape[1], dtype=np.int64)
    return keys


def _interval_quantiles(values: FloatArray, weights: FloatArray,
                        probs: tuple[float, float]) -> FloatArray:
    """:func:`weighted_quantile` of each row of ``values`` ``(R, S)``, bit for bit, ``(R, 2)``.

    ``weights`` are shared ``(S,)`` or one row per row of values ``(R, S)``.

    The rows are sorted as integer keys (:func:`_sort_keys`), which numpy
    sorts ~2-3x faster than it argsorts the floats, and which put equal
    values in column order, as the stable sort does. A weighted quantile
    depends on the sort only through the sequence of (value, weight) pairs
    it yields: where a row's values come out non-decreasing, that sequence
    is the stable sort's (the one ordering with ties in column order), and
    so are its cumulative weights and quantiles. A row that holds NaN, or two
    values that share a key and came out in the wrong order, is left to
    :func:`weighted_quantile`.
    """
    rows, size = values.shape
    bits = max(1, (size - 1).bit_length())
    keys = _sort_keys(values, bits)
    keys.sort(axis=1)
    keys &= (1 << bits) - 1  # the columns in sorted order
    flat = keys + np.arange(0, rows * size, size)[:, None]
    xs = values.reshape(-1)[flat]
    ws = weights[keys] if weights.ndim == 1 else weights.reshape(-1)[flat]
    # NaN sorts first (sign bit set) or last: a row holds NaN iff an end of it is NaN
    bad = np.isnan(xs[:, 0]) | np.isnan(xs[:, -1]) | (xs[:, 1:] < xs[:, :-1]).any(axis=1)
    cum = np.cumsum(ws, axis=1)
    cum /= cum[:, -1:]
    # searchsorted(cum, p - 1e-12, side="left") is the count of cumulative weights below it
    below = np.stack([(cum < probs[0] - 1e-12).sum(axis=1), (cum < probs[1] - 1e-12).sum(axis=1)],
                     axis=1)
    out = xs[np.arange(rows)[:, None], np.minimum(below, size - 1)]
    for r in np.flatnonzero(bad):
        out[r] = weighted_quantile(values[r], weights if weights.ndim == 1 else weights[r], probs)
    return np.asarray(out)


def mixture_var(family: Family, alpha: float, conditional: FloatArray | None = None) -> float:
    """``alpha`` quantile of the loss under the weighted mixture of the family."""
    w = family.weights
    shortcut = getattr(family, "mixture_var", None)
    if shortcut is not None:
        exact = shortcut(alpha)
        if exact is not None:
            return float(exact)
    cond = family.var(alpha) if conditional is None else conditional
    lo, hi = float(cond.min()), float(cond.max())
    if hi - lo <= 1e-15 * max(1.0, abs(hi)):
        return hi
    target = 1.0 - alpha

    def excess_tail(v: float) -> float:
        return float(w @ family.tail(v)) - target

    # The mixture quantile lies between the smallest and largest component quantile.
    span = hi - lo
    a, b = lo - 1e-9 * span, hi + 1e-9 * span
    if excess_tail(a) <= 0:
        return a
    if excess_tail(b) > 0:
        return b
    return float(optimize.brentq(excess_tail, a, b, xtol=1e-12 * max(1.0, abs(hi)), rtol=1e-12))


def level_measures(family: Family, alpha: float) -> LevelMeasures:
    """Point and per-draw VaR and ES of ``family`` at ``alpha``, through its ``Family`` methods."""
    w = family.weights
    cond_var = family.var(alpha)
    cond_es = cond_var + family.excess(cond_var) / (1.0 - alpha)
    v = mixture_var(family, alpha, cond_var)
    es = v + float(w @ family.excess(v)) / (1.0 - alpha)
    return LevelMeasures(float(v), float(es), cond_var, cond_es)


def risk_measures(
    family: Family,
    alphas: Sequence[float],
    interval_mass: float = 0.90,
) -> tuple[RiskMeasure, ...]:
    """VaR, ES and credible intervals at each confidence level.

    Parameters
    ----------
    family : Family
        Conditional loss distributions per posterior draw, with weights. A
        family with a ``level_measures(alphas)`` method (see
        :class:`LevelMeasures`) computes the point and per-draw measures
        itself.
    alphas : sequence of float
        Confidence levels in (0, 1), e.g. ``(0.99, 0.975)``.
    interval_mass : float
        Posterior mass of the equal-tailed credible intervals.
    """
    w = family.weights
    levels = check_alphas(alphas)
    batched = getattr(family, "level_measures", None)
    rows: tuple[LevelMeasures, ...] = (
        batched(levels) if batched is not None
        else tuple(level_measures(family, alpha) for alpha in levels)
    )
    probs = ((1 - interval_mass) / 2, (1 + interval_mass) / 2)
    bounds = _interval_quantiles(
        np.stack([c for m in rows for c in (m.cond_var, m.cond_es)]), w, probs)
    out = []
    for i, (alpha, m) in enumerate(zip(levels, rows, strict=True)):
        var_ci, es_ci = bounds[2 * i], bounds[2 * i + 1]
        out.append(
            RiskMeasure(
                alpha=float(alpha),
                var=float(m.var),
                es=float(m.es),
                var_interval=(float(var_ci[0]), float(var_ci[1])),
                es_interval=(float(es_ci[0]), float(es_ci[1])),
            )
        )
    return tuple(out)


def risk_measures_block(
    alphas: tuple[float, ...],
    var: FloatArray,
    es: FloatArray,
    cond_var: FloatArray,
    cond_es: FloatArray,
    weights: FloatArray,
    interval_mass: float = 0.90,
) -> list[tuple[RiskMeasure, ...]]:
    """:func:`risk_measures` of ``D`` families at once, from their level measures.

    For a family with ``level_measures``, ``risk_measures(family, alphas)`` is
    this function of its point ``var``, ``es`` ``(L,)``, per-draw
    ``cond_var``, ``cond_es`` ``(L, S)`` and weights ``(S,)``: here each has a
    leading day axis (``(D, L)``, ``(D, L, S)``, ``(D, S)``), the credible
    intervals of several days' rows are found in one sort, and the result is
    the same, bit for bit, as day by day. ``alphas`` must be checked
    (:func:`check_alphas`).
    """
    days, levels, size = cond_var.shape
    probs = ((1 - interval_mass) / 2, (1 + interval_mass) / 2)
    # a few days per sort: arrays of more than ~128 KiB cost a fresh mapping of memory
    # each (glibc's default), which made the sort of 8 days' rows ~2x slower per row
    step = max(1, CHUNK_BYTES // (2 * levels * size * 8))
    bounds: list[Any] = []
    for first in range(0, days, step):
        part = slice(first, first + step)
        values = np.stack([cond_var[part], cond_es[part]], axis=2).reshape(-1, size)
        rows = np.repeat(weights[part], 2 * levels, axis=0)
        bounds += _interval_quantiles(values, rows, probs).reshape(-1, levels, 4).tolist()
    points = np.stack([var, es], axis=2).tolist()
    return [
        tuple(
            RiskMeasure(alpha=float(alpha), var=p[0], es=p[1], var_interval=(b[0], b[1]),
                        es_interval=(b[2], b[3]))
            for alpha, p, b in zip(alphas, day_points, day_bounds, strict=True)
        )
        for day_points, day_bounds in zip(points, bounds, strict=True)
    ]


#: Most confidence levels one forecast computes.
MAX_LEVELS = 100


def check_alphas(alphas: Sequence[float] | float) -> tuple[float, ...]:
    """Validate confidence levels: each strictly between 0.5 and 1."""
    if type(alphas) is tuple and all(type(a) is float and 0.5 < a < 1.0 for a in alphas) and alphas:
        return alphas  # the common case, checked without copying
    if isinstance(alphas, np.ndarray) and alphas.ndim == 0:  # np.array(0.99): one level
        alphas = alphas[()]
    if isinstance(alphas, (int, float, np.integer, np.floating)):
        values: tuple[Any, ...] = (alphas,)
    elif isinstance(alphas, (str, bytes, dict)) or not isinstance(alphas, Iterable):
        raise InvalidParameter(
            f"confidence levels are a number or a sequence of numbers (e.g. (0.99, 0.975)), "
            f"not {alphas!r}")
    else:
        values = tuple(alphas)
    if not values:
        raise InvalidParameter("give at least one confidence level, e.g. alphas=(0.99,)")
    if len(values) > MAX_LEVELS:
        raise InvalidParameter(f"{len(values)} confidence levels; at most {MAX_LEVELS} at once")
    for a in values:
        if isinstance(a, (bool, np.bool_)) or not isinstance(
                a, (int, float, np.integer, np.floating)) or not 0.5 < float(a) < 1.0:
            raise InvalidParameter(
                f"confidence level {a!r} must be a number strictly between 0.5 and 1 (e.g. 0.99)"
            )
    return tuple(float(a) for a in values)
