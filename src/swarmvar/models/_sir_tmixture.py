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
  lattice point's columns are computed once per level. The VaR is
  interpolated between the two lattice points around it whatever nodes were
  cached, so a forecast does not depend on the forecasts before it.

A forecast then costs a few ``(S,) @ (S, K)`` products and a root of a cubic
Hermite interpolant of the mixture tail (exact values and slopes at the
nodes; error ``O((h / scale)^4)``, below 1e-8 relative), instead of ~10 Brent
iterations of ``S`` incomplete-beta calls; a rebuild costs ``K + 1`` such
calls instead of one per node across every component VaR.
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
from .risk import StudentTFamily

FloatArray = NDArray[np.float64]

#: Loss nodes kept around the mixture VaR.
LOCAL_NODES = 5
#: Largest node spacing, in units of the smallest component scale, for which the
#: cubic Hermite interpolant is trusted (error ~ (h / scale)^4 / 384 ~ 2e-9).
MAX_STEP = 0.03
#: Newton steps allowed to place the nodes before falling back to Brent's method.
_NEWTON_STEPS = 40


class _Nodes:
    """Component tail, density and excess at loss nodes ``grid (K,)``: arrays ``(S, K)``."""

    def __init__(self, grid: FloatArray, tail: FloatArray, density: FloatArray,
                 excess: FloatArray) -> None:
        self.grid, self.tail, self.density, self.excess = grid, tail, density, excess
        self.points: list[float] = grid.tolist()
        # one (S, 3K) block so that a forecast mixes all three in one product
        self.stacked = np.hstack([tail, density, excess])

    def mix(self, weights: FloatArray) -> tuple[list[float], list[float], list[float]]:
        """Mixture tail, density and excess at the ``K`` nodes (Python floats: scalar work)."""
        k = self.grid.size
        mixed = (weights @ self.stacked).tolist()
        return mixed[:k], mixed[k:2 * k], mixed[2 * k:]


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
        self._log_norm = (special.gammaln(0.5 * (df + 1.0)) - special.gammaln(0.5 * df)
                          - 0.5 * np.log(df * np.pi))
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

    def at(self, v: FloatArray) -> _Nodes:
        """Exact component tail, density and excess at losses ``v (K,)``."""
        f = self.family
        z = (-v[None, :] - f.loc[:, None]) / f.scale[:, None]
        if not self._finite:  # normal components: the shared family's formulas
            tail = np.column_stack([f.tail(float(x)) for x in v])
            dens = np.column_stack([np.exp(-0.5 * ((-x - f.loc) / f.scale) ** 2)
                                    / (np.sqrt(2 * np.pi) * f.scale) for x in v])
            exc = np.column_stack([f.excess(float(x)) for x in v])
            return _Nodes(v, tail, dens, exc)
        df = f.df[:, None]
        tail = special.stdtr(df, z)
        pdf = np.exp(self._log_norm[:, None] - 0.5 * (df + 1.0) * np.log1p(z * z / df))
        exc = np.maximum(f.scale[:, None] * (z * tail + pdf * (df + z * z) / (df - 1.0)), 0.0)
        return _Nodes(v, tail, pdf / f.scale[:, None], exc)

    def place(self, weights: FloatArray, start: float) -> _Nodes:
        """Nodes bracketing the mixture VaR under ``weights``, found from ``start``.

        Nodes are ``LOCAL_NODES`` consecutive points of the lattice ``lo + i *
        step`` (the window around ``start``, then around exact Newton steps
        on the mixture tail from the window's nearer end) until they bracket
        the root; which lattice points hold the root depends on the weights
        alone, not on where the search started, so a forecast is a function
        of the particles and weights, not of the forecasts made before it.
        Lattice columns are computed once per level and reused when the
        window moves.
        """
        target = 1.0 - self.alpha
        half = 0.5 * (LOCAL_NODES - 1) * self.step
        if self.hi - self.lo <= 2 * half:  # narrow mixture: nodes across every component VaR
            count = max(2, int(np.ceil((self.hi - self.lo) / self.step)) + 1)
            if self.hi > self.lo:
                return self.at(np.linspace(self.lo, self.hi, count))
            return self.at(np.array([self.hi]))
        v = min(max(start, self.lo), self.hi)
        for _ in range(_NEWTON_STEPS):
            nodes = self._window(v)
            tail, dens, _ = nodes.mix(weights)  # tail decreasing in v
            if (tail[0] > target >= tail[-1] or (tail[0] <= target and nodes.points[0] <= self.lo)
                    or (tail[-1] > target and nodes.points[-1] >= self.hi)):
                return nodes
            j = 0 if tail[0] <= target else -1
            if not dens[j] > 0 or not np.isfinite(tail[j]):
                break
            v = min(max(nodes.points[j] + (tail[j] - target) / dens[j], self.lo), self.hi)
        return self._window(self._brent(weights))

    def _window(self, v: float) -> _Nodes:
        """The ``LOCAL_NODES`` lattice points around loss ``v``, from cached columns."""
        last = int(np.ceil((self.hi - self.lo) / self.step))
        first = int(round((v - self.lo) / self.step)) - (LOCAL_NODES - 1) // 2
        first = min(max(first, 0), last - (LOCAL_NODES - 1))
        wanted = range(first, first + LOCAL_NODES)
        missing = [i for i in wanted if i not in self._columns]
        if missing:
            if len(self._columns) > 16 * LOCAL_NODES:  # the root wandered far: start afresh
                self._columns.clear()
                missing = list(wanted)
            new = self.at(np.asarray(self.lo + np.asarray(missing, dtype=np.float64) * self.step,
                                     dtype=np.float64))
            for c, i in enumerate(missing):
                self._columns[i] = (new.tail[:, c], new.density[:, c], new.excess[:, c])
        cols = [self._columns[i] for i in wanted]
        index = np.arange(first, first + LOCAL_NODES, dtype=np.float64)
        return _Nodes(np.asarray(self.lo + index * self.step, dtype=np.float64),
                      np.column_stack([c[0] for c in cols]), np.column_stack([c[1] for c in cols]),
                      np.column_stack([c[2] for c in cols]))

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
        tail, dens, exc = nodes.mix(weights)  # tail decreasing in v
        grid = nodes.points
        if len(grid) == 1:
            return grid[0], grid[0] + exc[0] / target
        at_lo = tail[0] <= target and grid[0] <= level.lo
        at_hi = tail[-1] > target and grid[-1] >= level.hi
        if (tail[0] > target >= tail[-1]) or at_lo or at_hi or attempt == 2:
            break
        # the weights moved the VaR off the nodes: exact Newton from the nearer end node
        j = 0 if tail[0] <= target else -1
        if attempt == 0 and dens[j] > 0:
            guess = grid[j] + (tail[j] - target) / dens[j]
        else:  # Newton did not settle: bracket the root exactly
            guess = level._brent(weights)
        nodes = level.nodes = level.place(weights, guess)
    # dens = -d tail / dv, d exc / dv = -tail
    if tail[0] <= target:
        j, t = 0, 0.0
    elif tail[-1] > target:
        j, t = len(tail) - 2, 1.0
    else:
        j = next(i for i, x in enumerate(tail) if x <= target) - 1  # the bracketing interval
        j = min(max(j, 0), len(tail) - 2)
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
