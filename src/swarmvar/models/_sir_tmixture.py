"""Fast VaR/ES of a weighted Student-t mixture whose components change rarely.

A particle agent's one-step predictive is the mixture ``sum_s w_s t(mu_s,
sigma_s, nu_s)``. Between rejuvenations only the weights ``w_s`` move, and
with them the mixture VaR, by a small fraction of a component scale. So per
confidence level a :class:`MixtureLevel` keeps what depends on the
components alone:

* each component's VaR and ES (for the credible intervals);
* the component tail probabilities, densities and expected excesses at a few
  loss nodes around the mixture VaR (``LOCAL_NODES`` consecutive points of
  the lattice ``min VaR_s + i * MAX_STEP * min scale_s``), a window moved
  by exact Newton steps on the mixture tail until it brackets the root when
  the level is built, and again whenever a forecast's root leaves it; each
  lattice point's columns are computed once per level, and only for the
  points the root search looks at (an adjacent pair bracketing the root, or
  a window end the root lies beyond; zeros elsewhere mix to the same bits).
  The VaR is
  interpolated between the two lattice points around it whatever nodes were
  cached, so a forecast does not depend on the forecasts before it.

A forecast then costs a few ``(S,) @ (S, K)`` products and a root of a cubic
Hermite interpolant of the mixture tail (exact values and slopes at the
nodes; error ``O((h / scale)^4)``, below 1e-8 relative), instead of ~10 Brent
iterations of ``S`` incomplete-beta calls; a rebuild costs a few such calls
(two or three lattice points, and one more per point the root drifts to)
instead of one per node across every component VaR.
:func:`risk_measures_block` makes the forecasts of several days on the same
components, bit for bit as many :func:`risk_measure` calls. The excess needs
no incomplete-beta call of its own: ``E[(L - v)^+] = s (z F(z) + f(z) (nu +
z^2) / (nu - 1))`` reuses the tail ``F`` and density ``f`` at ``z = (-v -
mu) / s``. The result is the same :class:`~swarmvar.types.RiskMeasure` that
:func:`~swarmvar.models.risk.risk_measures` gives for a
:class:`~swarmvar.models.risk.StudentTFamily`; the tests check it to 1e-8,
with hypothesis-generated mixtures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

from ..types import RiskMeasure
from .risk import StudentTFamily, t_log_norm

FloatArray = NDArray[np.float64]

#: Loss nodes kept around the mixture VaR.
LOCAL_NODES = 5
#: Largest node spacing, in units of the smallest component scale, for which the
#: cubic Hermite interpolant is trusted (error ~ (h / scale)^4 / 384 ~ 2e-9).
MAX_STEP = 0.03
#: Newton steps allowed to place the nodes before falling back to Brent's method.
_NEWTON_STEPS = 40


class _Nodes:
    """Component tail, density and excess at loss nodes ``points (K,)``: one block ``(S, 3K)``.

    ``known[k]`` says whether node ``k``'s columns are in the block. A lattice
    window (``first``: its first lattice index) fills them only as a root
    search needs them and holds zeros elsewhere. That mixes to the same bits
    as a full block: BLAS sums each output over the particles on its own, by
    a code path that depends on the output's position in the block (the last
    ``3K mod 4`` positions take a scalar path), not on the other columns.
    """

    def __init__(self, points: list[float], size: int, first: int | None = None) -> None:
        self.points, self.first = points, first
        self.stacked = np.zeros((size, 3 * len(points)))
        self.known = [False] * len(points)

    @classmethod
    def full(cls, grid: FloatArray, tail: FloatArray, density: FloatArray,
             excess: FloatArray) -> _Nodes:
        """Nodes ``grid (K,)`` with every column given (arrays ``(S, K)``)."""
        nodes = cls(grid.tolist(), tail.shape[0])
        nodes.stacked = np.hstack([tail, density, excess])
        nodes.known = [True] * grid.size
        return nodes

    def put(self, k: int, tail: FloatArray, density: FloatArray, excess: FloatArray) -> None:
        """Fill node ``k``'s columns (arrays ``(S,)``)."""
        n = len(self.points)
        self.stacked[:, k], self.stacked[:, n + k], self.stacked[:, 2 * n + k] = (tail, density,
                                                                                   excess)
        self.known[k] = True

    def mix(self, weights: FloatArray) -> tuple[list[float], list[float], list[float]]:
        """Mixture tail, density and excess at the ``K`` nodes (Python floats: scalar work).

        Values at nodes not yet filled are meaningless (zeros).
        """
        k = len(self.points)
        mixed = (weights @ self.stacked).tolist()
        return mixed[:k], mixed[k:2 * k], mixed[2 * k:]


#: Where the mixture root lies against a set of nodes, as the dense search saw it:
#: (tail at the first node <= 1 - alpha, tail at the last node > 1 - alpha,
#: the nodes bracket the root, the bracketing interval's first node).
Side = tuple[bool, bool, bool, int]


class MixtureLevel:
    """Weight-free pieces of the mixture's risk at one confidence level.

    Built by :func:`mixture_level`; :func:`risk_measure` reads it and, when
    the weights have carried the mixture VaR off the nodes, moves the nodes
    (the only state that changes; the components never do).

    Attributes
    ----------
    alpha : float
        Confidence level.
    cond_var, cond_es : array ``(S,)``
        Each component's VaR and ES (positive losses).
    var_order, es_order : array ``(S,)``
        Sort orders of ``cond_var`` and ``cond_es`` (for the credible intervals).
    family : StudentTFamily
        The components.
    """

    def __init__(self, family: StudentTFamily, alpha: float) -> None:
        self.alpha, self.family = alpha, family
        df = family.df
        self._log_norm = t_log_norm(df)
        self._finite = bool(np.all(np.isfinite(family.df)))
        self.cond_var = family.var(alpha)
        self.cond_es = self.cond_var + family.excess(self.cond_var) / (1.0 - alpha)
        self.var_order = np.argsort(self.cond_var, kind="stable")
        self.es_order = np.argsort(self.cond_es, kind="stable")
        self.lo, self.hi = float(self.cond_var.min()), float(self.cond_var.max())
        self.step = MAX_STEP * float(family.scale.min())
        self.nodes: _Nodes | None = None
        #: exact component columns at lattice points already visited, by lattice index
        self._columns: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}

    def at(self, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Exact component tail, density and excess at losses ``v (K,)``: arrays ``(S, K)``."""
        f = self.family
        z = (-v[None, :] - f.loc[:, None]) / f.scale[:, None]
        if not self._finite:  # normal components: the shared family's formulas
            tail = np.column_stack([f.tail(float(x)) for x in v])
            dens = np.column_stack([np.exp(-0.5 * ((-x - f.loc) / f.scale) ** 2)
                                    / (np.sqrt(2 * np.pi) * f.scale) for x in v])
            exc = np.column_stack([f.excess(float(x)) for x in v])
            return tail, dens, exc
        df = f.df[:, None]
        tail = special.stdtr(df, z)
        pdf = np.exp(self._log_norm[:, None] - 0.5 * (df + 1.0) * np.log1p(z * z / df))
        exc = np.maximum(f.scale[:, None] * (z * tail + pdf * (df + z * z) / (df - 1.0)), 0.0)
        return tail, pdf / f.scale[:, None], exc

    def place(self, weights: FloatArray, start: float) -> _Nodes:
        """Nodes bracketing the mixture VaR under ``weights``, found from ``start``.

        Nodes are ``LOCAL_NODES`` consecutive points of the lattice ``lo + i *
        step`` (the window around ``start``, then around exact Newton steps
        on the mixture tail from the window's nearer end) until they bracket
        the root; which lattice points hold the root depends on the weights
        alone, not on where the search started, so a forecast is a function
        of the particles and weights, not of the forecasts made before it.
        Lattice columns are computed once per level, and only those the
        search looks at (:meth:`locate`).
        """
        target = 1.0 - self.alpha
        half = 0.5 * (LOCAL_NODES - 1) * self.step
        if self.hi - self.lo <= 2 * half:  # narrow mixture: nodes across every component VaR
            count = max(2, int(np.ceil((self.hi - self.lo) / self.step)) + 1)
            grid = np.linspace(self.lo, self.hi, count) if self.hi > self.lo else np.array(
                [self.hi])
            return _Nodes.full(grid, *self.at(grid))
        v = min(max(start, self.lo), self.hi)
        for _ in range(_NEWTON_STEPS):
            nodes = self._window(v)
            tail, dens, _, (lo_side, hi_side, inside, _) = self.locate(nodes, weights, v)
            if (inside or (lo_side and nodes.points[0] <= self.lo)
                    or (hi_side and nodes.points[-1] >= self.hi)):
                return nodes
            j = 0 if lo_side else -1
            if not dens[j] > 0 or not np.isfinite(tail[j]):
                break
            v = min(max(nodes.points[j] + (tail[j] - target) / dens[j], self.lo), self.hi)
        return self._window(self._brent(weights))

    def locate(self, nodes: _Nodes, weights: FloatArray, start: float | None = None
               ) -> tuple[list[float], list[float], list[float], Side]:
        """The mixture at ``nodes`` and where its root lies, filling only the columns needed.

        With every column filled: the tail at the first and last node against
        ``1 - alpha``, and the bracketing interval as the first node whose tail
        is at most ``1 - alpha``. Otherwise, as the mixture tail decreases along
        the nodes, the same answer follows from an adjacent pair that brackets
        the root (inside), or from the first (last) node alone when its tail is
        already below (above) ``1 - alpha``; nodes are filled one or two at a
        time around a Newton estimate of the root (``start`` when none is
        filled) until such a pair or end is known. Any non-finite or
        non-monotone value fills every node and answers as above.
        """
        target, k = 1.0 - self.alpha, len(nodes.points)
        while True:
            tail, dens, exc = nodes.mix(weights)
            if all(nodes.known):
                lo_side, hi_side = tail[0] <= target, tail[-1] > target
                j = 0 if lo_side or hi_side else next(
                    i for i, x in enumerate(tail) if x <= target) - 1
                return tail, dens, exc, (lo_side, hi_side, tail[0] > target >= tail[-1],
                                         min(max(j, 0), k - 2))
            known = [p for p in range(k) if nodes.known[p]]
            if not all(math.isfinite(tail[p]) and math.isfinite(dens[p]) for p in known):
                self._fill(nodes, range(k))
                continue
            a = max((p for p in known if tail[p] > target), default=-1)
            b = min((p for p in known if tail[p] <= target), default=k)
            if b == a + 1:
                return tail, dens, exc, (a < 0, b >= k, 0 <= a and b < k, max(a, 0))
            if b < a:  # not decreasing: look at every node
                self._fill(nodes, range(k))
                continue
            self._fill(nodes, self._probes(nodes, tail, dens, a, b, start))

    def _probes(self, nodes: _Nodes, tail: list[float], dens: list[float], a: int, b: int,
                start: float | None) -> list[int]:
        """One or two unfilled nodes strictly between ``a`` and ``b`` near the estimated root."""
        target, first = 1.0 - self.alpha, nodes.first
        assert first is not None  # only lattice windows are filled lazily
        guess = start
        for p in (a, b):
            if 0 <= p < len(tail) and dens[p] > 0:
                guess = nodes.points[p] + (tail[p] - target) / dens[p]
                break
        q = 0.5 * (a + b) if guess is None else (guess - self.lo) / self.step - first
        low = int(math.floor(min(max(q, a - 1.0), b + 1.0)))
        near = [p for p in (low, low + 1) if a < p < b]  # the two around the estimate
        return near or [a + 1 if q < a + 1 else b - 1]

    def _fill(self, nodes: _Nodes, positions: Sequence[int]) -> None:
        """Fill ``nodes`` (a lattice window) at ``positions`` from the cached columns."""
        first = nodes.first
        assert first is not None
        wanted = [first + p for p in positions if not nodes.known[p]]
        missing = [i for i in wanted if i not in self._columns]
        if missing:
            if len(self._columns) > 16 * LOCAL_NODES:  # the root wandered far: start afresh
                self._columns.clear()
                missing = wanted
            tail, dens, exc = self.at(np.asarray(
                self.lo + np.asarray(missing, dtype=np.float64) * self.step, dtype=np.float64))
            for c, i in enumerate(missing):
                self._columns[i] = (tail[:, c], dens[:, c], exc[:, c])
        for i in wanted:
            nodes.put(i - first, *self._columns[i])

    def _window(self, v: float) -> _Nodes:
        """The ``LOCAL_NODES`` lattice points around loss ``v``, with their cached columns."""
        last = int(np.ceil((self.hi - self.lo) / self.step))
        first = int(round((v - self.lo) / self.step)) - (LOCAL_NODES - 1) // 2
        first = min(max(first, 0), last - (LOCAL_NODES - 1))
        index = np.arange(first, first + LOCAL_NODES, dtype=np.float64)
        nodes = _Nodes(np.asarray(self.lo + index * self.step, dtype=np.float64).tolist(),
                       self.family.loc.size, first)
        for p in range(LOCAL_NODES):
            cols = self._columns.get(first + p)
            if cols is not None:
                nodes.put(p, *cols)
        return nodes

    def _brent(self, weights: FloatArray) -> float:
        target = 1.0 - self.alpha

        def g(v: float) -> float:
            return float(weights @ self.family.tail(v)) - target

        if g(self.lo) <= 0 or g(self.hi) >= 0:
            return self.lo if g(self.lo) <= 0 else self.hi
        return float(optimize.brentq(g, self.lo, self.hi, xtol=1e-15, rtol=1e-13))


#: Sorted weights are summed in chunks of this many to find the quantiles' crossings.
_CHUNK = 64


def _quantile_rows(values: FloatArray, order: NDArray[np.intp], weights: FloatArray,
                   probs: tuple[float, float]) -> FloatArray:
    """Weighted quantiles of ``values (S,)`` under each row of ``weights (D, S)``: ``(D, 2)``.

    :func:`~swarmvar.models.risk.weighted_quantile` (the smallest value whose
    cumulative weight reaches ``p``) with the sort order precomputed, without
    a sequential cumulative sum over all ``S`` (a chain of dependent adds, the
    slow part): chunk sums locate each crossing's chunk, and only that chunk
    is summed in order. The cumulative weights round differently from one
    running sum (by ~``S * 1e-16``), which moves a quantile to a neighbouring
    particle only when a cumulative weight lies that close to ``p - 1e-12``.
    A row's result does not depend on the other rows.
    """
    days, size = weights.shape
    chunks = -(-size // _CHUNK)
    w = np.zeros((days, chunks * _CHUNK))
    w[:, :size] = weights[:, order]
    w3 = w.reshape(days, chunks, _CHUNK)
    ends = np.cumsum(w3.sum(axis=2), axis=1)  # cumulative weight at each chunk's end
    total = ends[:, -1:]
    rows = np.arange(days)
    out = np.empty((days, len(probs)), dtype=np.intp)
    for i, p in enumerate(probs):
        q = p - 1e-12
        k = np.minimum((ends / total < q).sum(axis=1), chunks - 1)
        before = np.where(k > 0, ends[rows, k - 1], 0.0)
        within = before[:, None] + np.cumsum(w3[rows, k], axis=1)
        j = np.minimum((within / total < q).sum(axis=1), _CHUNK - 1)
        out[:, i] = k * _CHUNK + j
    return np.asarray(values[order[np.minimum(out, size - 1)]])


def mixture_level(loc: FloatArray, scale: FloatArray, df: FloatArray,
                  alpha: float, weights: FloatArray | None = None,
                  start: float | None = None) -> MixtureLevel:
    """Precompute :class:`MixtureLevel` for components ``t(loc, scale, df)`` ``(S,)``.

    ``weights`` (default equal) place the first nodes, by Newton steps from
    ``start`` (default the weighted mean component VaR; a previous mixture VaR
    saves steps); any weights work later.
    """
    level = MixtureLevel(StudentTFamily(loc, scale, df), alpha)
    w = np.full(loc.size, 1.0 / loc.size) if weights is None else weights / weights.sum()
    level.nodes = level.place(w, float(w @ level.cond_var) if start is None else start)
    return level


def _hermite(t: float, h: float, f0: float, f1: float, d0: float, d1: float) -> tuple[float,
                                                                                        float]:
    """Cubic Hermite value and slope at ``t`` in ``[0, 1]`` of a node interval of width ``h``."""
    t2, t3 = t * t, t * t * t
    value = ((2 * t3 - 3 * t2 + 1) * f0 + (t3 - 2 * t2 + t) * h * d0
             + (-2 * t3 + 3 * t2) * f1 + (t3 - t2) * h * d1)
    slope = ((6 * t2 - 6 * t) * f0 + (3 * t2 - 4 * t + 1) * h * d0
             + (-6 * t2 + 6 * t) * f1 + (3 * t2 - 2 * t) * h * d1) / h
    return value, slope


def _solve(level: MixtureLevel, weights: FloatArray) -> tuple[float, float]:
    """Mixture VaR and ES: the root of the Hermite interpolant of the tail between nodes.

    Scalar work on Python floats (the same IEEE arithmetic as numpy scalars,
    several times faster).
    """
    target = 1.0 - level.alpha
    nodes = level.nodes
    assert nodes is not None
    for attempt in range(3):
        grid = nodes.points
        if len(grid) == 1:
            _, _, exc = nodes.mix(weights)
            return grid[0], grid[0] + exc[0] / target
        tail, dens, exc, (lo_side, hi_side, inside, j) = level.locate(nodes, weights)
        at_lo = lo_side and grid[0] <= level.lo
        at_hi = hi_side and grid[-1] >= level.hi
        if inside or at_lo or at_hi or attempt == 2:
            break
        # the weights moved the VaR off the nodes: exact Newton from the nearer end node
        j = 0 if lo_side else -1
        if attempt == 0 and dens[j] > 0:
            guess = grid[j] + (tail[j] - target) / dens[j]
        else:  # Newton did not settle: bracket the root exactly
            guess = level._brent(weights)
        nodes = level.nodes = level.place(weights, guess)
    if not inside and not all(nodes.known):  # an end of the lattice (rare): every node
        level._fill(nodes, range(len(grid)))
        tail, dens, exc, (lo_side, hi_side, inside, j) = level.locate(nodes, weights)
    # dens = -d tail / dv, d exc / dv = -tail
    if lo_side:
        j, t = 0, 0.0
    elif hi_side:
        j, t = len(tail) - 2, 1.0
    else:  # j: the bracketing interval
        h = grid[j + 1] - grid[j]
        a, b = 0.0, 1.0
        t = (tail[j] - target) / (tail[j] - tail[j + 1])
        for _ in range(60):  # safeguarded Newton on the cubic
            f, slope = _hermite(t, h, tail[j], tail[j + 1], -dens[j], -dens[j + 1])
            f -= target
            if f > 0:
                a = t
            else:
                b = t
            step = f / (slope * h) if slope < 0 else math.inf
            t_new = t - step
            if not a < t_new < b:
                t_new = 0.5 * (a + b)
            if abs(t_new - t) < 1e-11:  # 1e-11 of a node spacing: far below 1e-8 of the VaR
                t = t_new
                break
            t = t_new
    h = grid[j + 1] - grid[j]
    v = grid[j] + t * h
    ex, _ = _hermite(t, h, exc[j], exc[j + 1], -tail[j], -tail[j + 1])
    return v, v + ex / target


def risk_measure(level: MixtureLevel, weights: FloatArray,
                 interval_mass: float = 0.90) -> RiskMeasure:
    """VaR, ES and credible intervals of the mixture with posterior ``weights`` ``(S,)``."""
    lo_p, hi_p = (1 - interval_mass) / 2, (1 + interval_mass) / 2
    var_ci = _quantile_rows(level.cond_var, level.var_order, weights[None, :], (lo_p, hi_p))[0]
    es_ci = _quantile_rows(level.cond_es, level.es_order, weights[None, :], (lo_p, hi_p))[0]
    v, es = _solve(level, weights)
    return RiskMeasure(
        alpha=float(level.alpha),
        var=v,
        es=float(es),
        var_interval=(float(var_ci[0]), float(var_ci[1])),
        es_interval=(float(es_ci[0]), float(es_ci[1])),
    )


def risk_measures_block(level: MixtureLevel, weights: Sequence[FloatArray],
                        interval_mass: float = 0.90) -> list[RiskMeasure]:
    """:func:`risk_measure` for each of ``weights`` (``D`` arrays ``(S,)``) in turn, bit for bit.

    The days' credible intervals come from one pass over all of them; the
    VaR/ES roots are solved day by day, so the nodes move exactly as ``D``
    calls of :func:`risk_measure` would move them.
    """
    lo_p, hi_p = (1 - interval_mass) / 2, (1 + interval_mass) / 2
    stacked = np.vstack(weights)
    var_ci = _quantile_rows(level.cond_var, level.var_order, stacked, (lo_p, hi_p)).tolist()
    es_ci = _quantile_rows(level.cond_es, level.es_order, stacked, (lo_p, hi_p)).tolist()
    alpha = float(level.alpha)
    out = []
    for w, (var_lo, var_hi), (es_lo, es_hi) in zip(weights, var_ci, es_ci, strict=True):
        v, es = _solve(level, w)
        out.append(RiskMeasure(alpha=alpha, var=v, es=es, var_interval=(var_lo, var_hi),
                               es_interval=(es_lo, es_hi)))
    return out
