"""GarchT's predictive family with per-particle Student-t constants cached.

The one-step predictive is a weighted mixture of ``loc_s + scale_s * t(nu_s)``
over particles. ``loc`` and ``scale`` change every tick, ``nu`` only when
the particles are moved, so the standard-t quantiles ``q_s(alpha)`` and the
partial-moment factors needed for the conditional ES are computed once per
particle set and level (:class:`TQuantileCache`), not once per forecast.

The Student-t CDF itself (``stdtr``, ~0.3 us a value) would dominate a
forecast, so :func:`_log_cdf_table` tabulates ``log F(-|z|; nu)`` once per
process on a grid in ``tau = 1/nu`` (0 is the normal limit) and
``s = log(1 + |z|)``; each particle set interpolates its own rows in
``tau`` once (cubic Lagrange), and every CDF evaluation is then a
Catmull-Rom interpolation in ``s`` (absolute error of ``F`` below 1e-7,
relative below 2e-6 where ``F > 1e-4``, checked against
``scipy.special.stdtr`` in the tests; |z| beyond the grid falls back to
``stdtr``). :meth:`CachedTFamily.level_measures` gives
:func:`~swarmvar.models.risk.risk_measures` every level's point and
per-draw VaR and ES at once: the mixture VaRs of all levels by safeguarded
Halley steps on one ``(levels, particles)`` batch of table lookups per step
(two steps as a rule), since a forecast is a few dozen numpy operations on
``particles``-sized arrays (500 by default) and their count, not their arithmetic, sets its cost.
:func:`level_measures_block` does the same for several days on one particle
set (``GarchT.forecast_block``), bit for bit each day's; its lookups take the
interpolation's coefficients that do not depend on the position from
:meth:`TQuantileCache.spline` (formed once per particle set, the same values)
and write into arrays they already hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from ._garch_lik import Theta
from ._mixture_block import halley_block
from .risk import BlockMeasures, LevelMeasures, StudentTFamily, t_log_norm

FloatArray = NDArray[np.float64]


def _t_log_pdf(z: FloatArray, df: FloatArray, log_norm: FloatArray) -> FloatArray:
    result: FloatArray = log_norm - 0.5 * (df + 1.0) * np.log1p(z * z / df)
    return result


TAU_STEP = 0.0025
TAU_MAX = 0.5
S_STEP = 0.01
S_MAX = 4.2  # |z| up to e^4.2 - 1 = 65


@functools.lru_cache(maxsize=1)
def _log_cdf_table() -> FloatArray:
    """``log F(-(e^s - 1); 1/tau)`` on the ``(tau, s)`` grid (one ghost node below s = 0)."""
    tau = np.arange(0, round(TAU_MAX / TAU_STEP) + 3) * TAU_STEP
    s = np.arange(-1, round(S_MAX / S_STEP) + 2) * S_STEP
    z = -np.expm1(s)
    with np.errstate(divide="ignore"):
        df = np.where(tau[:, None] > 0, 1.0 / np.abs(tau[:, None]), np.inf)
    normal = special.log_ndtr(z)[None, :]
    table = np.where(
        tau[:, None] > 0,
        np.log(special.stdtr(np.where(tau[:, None] > 0, df, 1.0), z[None, :])),
        normal,
    )
    table = np.asarray(table, dtype=float)
    table.setflags(write=False)
    return table


def _tau_rows(df: FloatArray, cols: slice = slice(None)) -> FloatArray:
    """Each particle's row of the table at ``tau = 1/df`` by cubic Lagrange, ``(S, K)``.

    ``cols`` restricts the rows to a range of table columns (``s`` nodes).
    """
    table = _log_cdf_table()
    tau = 1.0 / df
    pos = tau / TAU_STEP
    i = np.clip(np.floor(pos).astype(np.intp), 1, table.shape[0] - 3)
    t = (pos - i)[:, None]
    c0 = -t * (t - 1) * (t - 2) / 6
    c1 = (t + 1) * (t - 1) * (t - 2) / 2
    c2 = -(t + 1) * t * (t - 2) / 2
    c3 = (t + 1) * t * (t - 1) / 6
    part = table[:, cols]
    rows: FloatArray = (
        c0 * part[i - 1] + c1 * part[i] + c2 * part[i + 1] + c3 * part[i + 2]
    )
    return rows


def fast_t_cdf(z: FloatArray, df: FloatArray, rows: FloatArray, first: int = 0) -> FloatArray:
    """Standard Student-t CDF at ``z`` ``(S,)`` from per-particle table rows ``(S, K')``.

    ``rows`` hold table columns ``first .. first + K' - 1`` (all of them by
    default); every ``z`` must fall inside them (see :meth:`TQuantileCache.rows_for`).
    """
    return _cdf_at(z, table_position(z), df, rows, first)


def table_position(z: FloatArray) -> FloatArray:
    """Fractional table column of each ``z``: ``log(1 + |z|) / S_STEP + 1``."""
    result: FloatArray = np.log1p(np.abs(z)) * (1.0 / S_STEP) + 1.0
    return result


def _catmull_rom(
    p0: FloatArray, p1: FloatArray, p2: FloatArray, p3: FloatArray, t: NDArray[Any]
) -> FloatArray:
    """Catmull-Rom interpolation between ``p1`` (``t = 0``) and ``p2`` (``t = 1``)."""
    result: FloatArray = p1 + 0.5 * t * (
        p2 - p0 + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + t * (3.0 * (p1 - p2) + p3 - p0))
    )
    return result


def _cdf_at(
    z: FloatArray, pos: FloatArray, df: FloatArray, rows: FloatArray, first: int
) -> FloatArray:
    full = _log_cdf_table().shape[1]
    i = np.minimum(pos.astype(np.intp), full - 3)
    t = pos - i
    k = rows.shape[1]
    flat = rows.reshape(-1)
    # rows_for guarantees columns i - 1 .. i + 2 are held, so no clamping here
    base = np.arange(-first, z.size * k - first, k) + i
    p0, p1, p2, p3 = flat[base - 1], flat[base], flat[base + 1], flat[base + 2]
    lower = np.exp(_catmull_rom(p0, p1, p2, p3, t))
    out = pos >= full - 2
    if out.any():  # beyond the grid: exact
        lower[out] = special.stdtr(df[out], -np.abs(z[out]))
    result: FloatArray = np.where(z <= 0, lower, 1.0 - lower)
    return result


#: Extra table columns kept on each side of the needed ones (0.16 in log(1 + |z|)).
ROW_MARGIN = 16


class TQuantileCache:
    """Standard Student-t quantiles and ES factors for a fixed set of ``df`` ``(S,)``."""

    def __init__(self, df: FloatArray) -> None:
        self.df = np.asarray(df, dtype=float)
        self.log_norm = t_log_norm(self.df)
        # per-particle constants of the density and the partial moment, formed as
        # _t_log_pdf and CachedTFamily.excess form them (so the values are the same)
        self.half_df1 = 0.5 * (self.df + 1.0)
        self.df1 = self.df + 1.0
        self.dfm1 = self.df - 1.0
        self._levels: dict[float, tuple[FloatArray, FloatArray]] = {}
        self._stacked: dict[tuple[float, ...], tuple[FloatArray, FloatArray]] = {}
        self._rows: FloatArray | None = None
        self._first = 0
        self._offsets = np.zeros(0, dtype=np.intp)
        self._spline: tuple[FloatArray, ...] | None = None

    @property
    def rows(self) -> FloatArray:
        """Per-particle log-CDF table rows over all columns ``(S, K)``."""
        return _tau_rows(self.df)

    def rows_for(self, z: FloatArray) -> tuple[FloatArray, int]:
        """Rows covering the table columns that ``z`` ``(S,)`` needs, and the first column.

        Built lazily and widened when a ``z`` falls outside (with a margin):
        a forecast needs a few dozen of the ~420 columns, so interpolating
        only those makes a new particle set ~10x cheaper.
        """
        return self._rows_at(table_position(z))

    def _rows_at(self, pos: FloatArray) -> tuple[FloatArray, int]:
        return self._rows_between(float(pos.min()), float(pos.max()))

    def _rows_between(self, pos_min: float, pos_max: float) -> tuple[FloatArray, int]:
        full = _log_cdf_table().shape[1]
        lo = max(int(pos_min) - 1, 0)
        hi = min(int(pos_max) + 3, full)
        rows, first = self._rows, self._first
        if rows is not None and first <= lo and hi <= first + rows.shape[1]:
            return rows, first
        if rows is not None:
            lo, hi = min(lo, first), max(hi, first + rows.shape[1])
        lo, hi = max(lo - ROW_MARGIN, 0), min(hi + ROW_MARGIN, full)
        self._rows, self._first = _tau_rows(self.df, slice(lo, hi)), lo
        # flat index of each particle's column 0 (minus one) in the rows
        self._offsets = np.arange(-lo - 1, self.df.size * (hi - lo) - lo - 1, hi - lo)
        self._spline = None
        return self._rows, lo

    def spline(self) -> tuple[FloatArray, ...]:
        """The current rows' Catmull-Rom coefficients by flat index ``k`` of column ``i - 1``.

        ``(p1, c1, c2, c3)``, each ``(S * K - 3,)``: with ``p0 .. p3`` the row's
        values at columns ``i - 1 .. i + 2``, ``c1 = p2 - p0``, ``c2 = 2 p0 -
        5 p1 + 4 p2 - p3`` and ``c3 = 3 (p1 - p2) + p3 - p0``, formed as
        :func:`_catmull_rom` forms them (the same values), so that an
        interpolation is ``p1 + 0.5 t (c1 + t (c2 + t c3))``: 7 operations a
        point instead of 16. Entries that straddle two particles' rows are
        never read. Built once per rows (a particle set, or a widening).
        """
        if self._spline is None:
            rows = self._rows if self._rows is not None else self._rows_between(1.0, 1.0)[0]
            flat = rows.reshape(-1)
            p0, p1, p2, p3 = flat[:-3], flat[1:-2], flat[2:-1], flat[3:]
            c1 = p2 - p0
            c2 = 2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3
            c3 = 3.0 * (p1 - p2) + p3 - p0
            self._spline = (p1.copy(), c1, c2, c3)
        return self._spline

    def level(self, alpha: float) -> tuple[FloatArray, FloatArray]:
        """``(q, k)`` ``(S,)``: ``q = F^{-1}(1 - alpha)`` and ``k = E[(q - T)^+]``."""
        hit = self._levels.get(alpha)
        if hit is None:
            q = special.stdtrit(self.df, 1.0 - alpha)
            pdf = np.exp(_t_log_pdf(q, self.df, self.log_norm))
            # E[(q - T)^+] = q F(q) + f(q) (df + q^2) / (df - 1), with F(q) = 1 - alpha
            k = q * (1.0 - alpha) + pdf * (self.df + q * q) / (self.df - 1.0)
            hit = (q, k)
            self._levels[alpha] = hit
        return hit

    def levels(self, alphas: tuple[float, ...]) -> tuple[FloatArray, FloatArray]:
        """:meth:`level`'s ``q`` and ``k`` for several levels, stacked ``(L, S)``."""
        hit = self._stacked.get(alphas)
        if hit is None:
            pairs = [self.level(a) for a in alphas]
            hit = (np.stack([q for q, _ in pairs]), np.stack([k for _, k in pairs]))
            self._stacked[alphas] = hit
        return hit

    def family(self, loc: FloatArray, scale: FloatArray, weights: FloatArray) -> CachedTFamily:
        """The predictive family at the current ``loc``, ``scale`` and ``weights``."""
        return CachedTFamily(loc, scale, weights, self)

    def predictive(self, loc: FloatArray, scale: FloatArray, weights: FloatArray) -> CachedTFamily:
        """:meth:`family` without its checks and copies, for arrays the caller owns and keeps.

        ``scale`` must be positive and finite, ``weights`` non-negative with a
        positive sum (normalized here, as :meth:`family` does); nothing is copied.
        """
        return CachedTFamily._unchecked(loc, scale, weights, self)  # noqa: SLF001


class CachedTFamily(StudentTFamily):
    """A :class:`StudentTFamily` whose per-draw quantiles come from a cache."""

    def __init__(
        self, loc: FloatArray, scale: FloatArray, weights: FloatArray, cache: TQuantileCache
    ) -> None:
        super().__init__(loc, scale, cache.df, weights)
        self._cache = cache
        self._own: dict[int, tuple[FloatArray, FloatArray]] = {}

    @classmethod
    def _unchecked(
        cls, loc: FloatArray, scale: FloatArray, weights: FloatArray, cache: TQuantileCache
    ) -> CachedTFamily:
        family = cls.__new__(cls)
        family.loc, family.scale, family.df = loc, scale, cache.df
        family._normal = np.zeros(loc.shape, dtype=bool)  # df is finite: nu > 2
        family._weights = weights / weights.sum()
        family._cache = cache
        family._own = {}
        return family

    def _cdf(self, z: FloatArray) -> FloatArray:
        zz = np.asarray(z, dtype=float)
        pos = table_position(zz)
        rows, first = self._cache._rows_at(pos)  # noqa: SLF001 - same module
        return _cdf_at(zz, pos, self.df, rows, first)

    def var(self, alpha: float) -> FloatArray:
        q, k = self._cache.level(alpha)
        v: FloatArray = -(self.loc + self.scale * q)
        self._own[id(v)] = (v, self.scale * k)
        return v

    def excess(self, v: float | FloatArray) -> FloatArray:
        own = self._own.get(id(v))
        if own is not None and own[0] is v:
            # E[(L - VaR_s)^+] at each draw's own VaR: scale * E[(q - T)^+]
            return own[1].copy()
        # E[(L - v)^+] = scale * (z F(z) + f(z) (df + z^2) / (df - 1)), z = (-v - loc) / scale
        z = (-np.asarray(v, dtype=float) - self.loc) / self.scale
        df = self.df
        pdf = np.exp(_t_log_pdf(z, df, self._cache.log_norm))
        result: FloatArray = self.scale * (z * self._cdf(z) + pdf * (df + z * z) / (df - 1.0))
        return np.maximum(result, 0.0)

    def mixture_var(self, alpha: float) -> float:
        """The ``alpha`` quantile of the mixture loss (see :meth:`level_measures`)."""
        return self.level_measures((alpha,))[0].var

    def level_measures(self, alphas: Sequence[float]) -> tuple[LevelMeasures, ...]:
        """Point and per-draw VaR and ES at every level, the mixture quantiles solved together.

        The per-draw VaR and ES are closed form (cached quantiles and partial
        moments). The mixture VaRs are the roots of ``sum_s w_s F_s(z_s(v)) =
        1 - alpha``, found by safeguarded Halley steps for all levels at once
        (one batch of ``(L, S)`` table lookups per step; the exact density
        and its derivative give the slope and the curvature), stopped when a
        step is below 1e-6 of ``v`` - usually after two steps, the error left
        then of order 1e-18 relative. The point ES is the Rockafellar-Uryasev
        ``v + E[(L - v)^+] / (1 - alpha)``, its partial moment taken at the
        last point evaluated and carried over the last step by its
        second-order Taylor expansion (derivatives ``-P(L > v)`` and the
        mixture density), which saves a table lookup at no visible cost.
        """
        levels = tuple(float(a) for a in alphas)
        q, k = self._cache.levels(levels)
        keep = np.array([1.0 - a for a in levels])[:, None]
        cond_var = -(self.loc + self.scale * q)
        cond_es = cond_var + self.scale * k / keep
        var, es = self._solve(levels, cond_var)
        return tuple(LevelMeasures(v, e, cond_var[i], cond_es[i])
                     for i, (v, e) in enumerate(zip(var, es, strict=True)))

    def _solve(self, alphas: tuple[float, ...], cond: FloatArray) -> tuple[list[float],
                                                                         list[float]]:
        """Mixture VaR and ES per level given the conditional VaRs ``(L, S)``."""
        cache, w, df, loc, scale = self._cache, self._weights, self.df, self.loc, self.scale
        ws = w / scale
        ws2 = (ws / scale) * cache.df1
        lo, hi = cond.min(axis=1).tolist(), cond.max(axis=1).tolist()
        v = (cond @ w).tolist()
        var, es = list(hi), [0.0] * len(alphas)
        todo = []
        for j, a in enumerate(alphas):
            if hi[j] - lo[j] > 1e-15 * max(1.0, abs(hi[j])):
                todo.append(j)
            else:  # every draw has the same VaR
                es[j] = hi[j] + float(w @ self.excess(hi[j])) / (1.0 - a)
        for _ in range(60):
            if not todo:
                return var, es
            z = (-np.array([v[j] for j in todo]))[:, None] - loc
            z /= scale
            cdf, pdf, zz = self._cdf_pdf(z)
            total = (cdf @ w).tolist()  # P(L > v) per level, decreasing in v
            slope = (pdf @ ws).tolist()  # the mixture density of L at v
            curv = ((pdf * z) / (df + zz) @ ws2).tolist()  # minus its derivative in v
            left, steps = [], []
            for row, j in enumerate(todo):
                at, g = v[j], total[row] - (1.0 - alphas[j])
                if g > 0:
                    lo[j] = at
                else:
                    hi[j] = at
                den = 2.0 * slope[row] * slope[row] + g * curv[row]
                nxt = at + 2.0 * g * slope[row] / den if slope[row] > 0 and den > 0 else np.inf
                if not lo[j] < nxt < hi[j]:
                    nxt = 0.5 * (lo[j] + hi[j])
                v[j] = nxt
                if abs(nxt - at) <= 1e-6 * max(abs(at), 1e-300) or hi[j] - lo[j] <= 1e-14 * abs(
                        hi[j]):
                    steps.append((row, j, nxt - at))
                else:
                    left.append(j)
            if steps:
                # E[(L - v)^+] per draw at the evaluated point, as excess() forms it
                part = np.maximum(scale * (z * cdf + pdf * (df + zz) / cache.dfm1), 0.0) @ w
                for row, j, d in steps:
                    moved = float(part[row]) - d * total[row] + 0.5 * d * d * slope[row]
                    var[j] = v[j]
                    es[j] = v[j] + moved / (1.0 - alphas[j])
            todo = left
        for j in todo:  # no convergence in 60 steps (not seen): the last point, exactly
            var[j] = v[j]
            es[j] = v[j] + float(w @ self.excess(v[j])) / (1.0 - alphas[j])
        return var, es

    def _cdf_pdf(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The t CDF (as :func:`_cdf_at` gives it), density and ``z**2`` at ``z`` ``(L, S)``."""
        return _cdf_pdf(self._cache, z)


def _cdf_pdf(cache: TQuantileCache, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:meth:`CachedTFamily._cdf_pdf` for any rows ``z`` ``(M, S)`` of the cache's particles.

    Elementwise in ``z``: a row's values do not depend on the other rows.
    Each step writes into an array the function already holds (``out=``)
    where it can: the same operations in the same order as the expressions
    in :func:`_catmull_rom` and :func:`_t_log_pdf` (so the same values, bit
    for bit), without a fresh ``(M, S)`` array for each - which made up about
    half the cost of an operation on the backtest's ``(16, 1000)`` rows.
    """
    df = cache.df
    pos = np.abs(z)
    np.log1p(pos, out=pos)
    pos *= 1.0 / S_STEP
    pos += 1.0  # table_position(z)
    pos_max = float(pos.max())
    rows, first = cache._rows_between(float(pos.min()), pos_max)  # noqa: SLF001
    full = _log_cdf_table().shape[1]
    i = pos.astype(np.intp)
    beyond = pos_max >= full - 2
    out = pos >= full - 2 if beyond else None
    if beyond:  # only the positions past the grid change, and they are replaced below
        np.minimum(i, full - 3, out=i)
    t = np.subtract(pos, i, out=pos)
    base = np.add(i, cache._offsets, out=i)  # noqa: SLF001 - flat index of column i - 1
    # _catmull_rom(p0, p1, p2, p3, t) from the rows' coefficients: the same operations
    # on the same values, those that do not involve t done once per rows
    p1, c1, c2, c3 = (np.take(c, base) for c in cache.spline())
    c3 *= t
    c3 += c2
    c3 *= t
    c3 += c1
    cdf = np.multiply(t, 0.5, out=c2)
    cdf *= c3
    cdf += p1
    np.exp(cdf, out=cdf)
    if out is not None:  # beyond the grid: exact
        cdf[out] = special.stdtr(np.broadcast_to(df, z.shape)[out], -np.abs(z[out]))
    if float(z.max()) > 0:
        np.subtract(1.0, cdf, out=cdf, where=z > 0)
    zz = np.multiply(z, z, out=c1)
    pdf = np.divide(zz, df, out=p1)
    np.log1p(pdf, out=pdf)
    pdf *= cache.half_df1
    np.subtract(cache.log_norm, pdf, out=pdf)
    np.exp(pdf, out=pdf)
    return cdf, pdf, zz


class _TLookup:
    """The Student-t :class:`._mixture_block.Lookup` of a cache's particles."""

    def __init__(self, cache: TQuantileCache) -> None:
        self.cache = cache

    def step(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        cdf, pdf, zz = _cdf_pdf(self.cache, z)
        dz = self.cache.df + zz  # shared by the curvature and the partial moment
        bend = pdf * z
        bend /= dz
        return cdf, pdf, bend, dz

    def moment(self, z: FloatArray, cdf: FloatArray, pdf: FloatArray,
               dz: FloatArray) -> FloatArray:
        # z * cdf + pdf * (df + zz) / dfm1, operation by operation as excess() forms it
        moment = np.multiply(pdf, dz, out=dz)
        moment /= self.cache.dfm1
        moment += np.multiply(z, cdf, out=z)
        return moment


def level_measures_block(cache: TQuantileCache, loc: FloatArray, scale: FloatArray,
                         weights: FloatArray, alphas: tuple[float, ...]) -> BlockMeasures:
    """:meth:`CachedTFamily.level_measures` of ``D`` families sharing particles, bit for bit.

    Day ``d``'s family is ``cache.predictive(loc, scale[d], w)`` with
    ``weights[d]`` its normalized weights (``w / w.sum()``) ``(S,)``; ``loc``
    ``(S,)``, ``scale`` ``(D, S)``. Every elementwise step runs once on all
    the days' rows together; the sums over particles stay one matrix product
    per day, of the same rows as the single family's (so the same BLAS call
    and the same rounding), and the Halley steps and their stopping rule are
    the single family's, vectorized (:func:`._mixture_block.halley_block`).
    """
    q, k = cache.levels(alphas)
    return halley_block(_TLookup(cache), q, k, cache.df1, loc, scale, weights, alphas)


def simulate_paths(
    th: Theta,
    h: FloatArray,
    horizon: int,
    paths: int,
    rng: np.random.Generator,
    shocks: Callable[[np.random.Generator, tuple[int, int]], FloatArray] | None = None,
) -> FloatArray:
    """Sums of ``horizon`` future returns, ``(D, paths)``, from ``D`` particles.

    ``th`` and ``h`` (the next conditional variance) are ``(D,)``; the
    (GJR-)GARCH recursion is run forward with fresh unit-variance shocks:
    each particle's own Student-t by default, or ``shocks(rng, (D, paths))``
    (e.g. GarchEVT's body bootstrap with GPD tails).
    """
    d = th.mu.size
    mu, omega, alpha, alpha_neg, beta = (
        np.asarray(p)[:, None] for p in (th.mu, th.omega, th.alpha, th.alpha_neg, th.beta))
    nu = th.nu[:, None]
    unit = np.sqrt((nu - 2.0) / nu)
    hh = np.broadcast_to(h[:, None], (d, paths)).copy()
    total = np.zeros((d, paths))
    for _ in range(horizon):
        if shocks is None:
            z = rng.standard_t(np.broadcast_to(nu, (d, paths))) * unit
        else:
            z = shocks(rng, (d, paths))
        e = np.sqrt(hh) * z
        total += mu + e
        hh = omega + np.where(e < 0, alpha_neg, alpha) * (e * e) + beta * hh
    return total
