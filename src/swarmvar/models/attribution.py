"""Risk attribution of a book from predictive scenarios: Euler, marginal and incremental VaR/ES.

With the book's loss ``L = sum_i p_i Y_i`` (``Y_i = 1 - exp(R_i)``, the loss
per unit of currency held in asset ``i``), VaR and ES are positively
homogeneous in the positions, and Euler's theorem splits them exactly
(Tasche 1999):

* marginal ES ``dES/dp_i = E[Y_i | L >= VaR]`` and component ES
  ``p_i E[Y_i | L >= VaR]`` (the tail weights are those of the ES itself, the
  atom at the VaR counted fractionally, so the components sum to the ES
  exactly);
* marginal VaR ``dVaR/dp_i = E[Y_i | L = VaR]``, estimated by a local linear
  regression of ``Y_i`` on ``L`` over the scenarios whose probability rank is
  within ``band`` of ``alpha`` (a linear smoother: the components sum to the
  VaR exactly, and the estimate has no first-order bias from the band);
* incremental VaR/ES of a trade ``d``: ``VaR(p + d) - VaR(p)`` on the same
  scenarios (common random numbers: the difference is estimated far more
  precisely than either term).

Point values come from the posterior predictive (all draws' scenarios
pooled); credible intervals are equal-tailed quantiles across posterior
draws of the per-draw (conditional) values; the stated Monte Carlo error is
the standard error across ``groups`` disjoint slices of the scenarios
(batch means: honest under common random numbers, where scenarios of
different draws share their base draws).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .joint_base import Scenarios
from .risk import check_alphas, weighted_quantile

FloatArray = NDArray[np.float64]

#: Disjoint scenario slices behind the stated Monte Carlo error.
GROUPS = 10


@dataclass(frozen=True)
class TailStats:
    """VaR, ES and their marginals per row (a draw, the pool, or a slice).

    ``var``, ``es`` ``(R,)``; ``mvar``, ``mes`` ``(R, N)`` (loss per unit of
    currency in each asset, at the VaR / in the ES tail).
    """

    var: FloatArray
    es: FloatArray
    mvar: FloatArray
    mes: FloatArray


def _top(loss: FloatArray, w: FloatArray, need: float
         ) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Each row's largest losses in decreasing order, enough of them to hold weight ``need``.

    Returns ``(columns, losses, weights)``, each ``(R, K')``. A partial sort
    (``argpartition``) finds the candidates; rows whose candidates hold too
    little weight (weighted scenarios) get more, up to a full sort.
    """
    rows, k = loss.shape
    kk = min(k, max(8, int(np.ceil(need * k * 1.25)) + 2))
    while True:
        if kk >= k:
            order = np.argsort(-loss, axis=1, kind="stable")
        else:
            part = np.argpartition(-loss, kk - 1, axis=1)[:, :kk]
            sub = np.take_along_axis(loss, part, axis=1)
            order = np.take_along_axis(part, np.argsort(-sub, axis=1, kind="stable"), axis=1)
        ws = np.take_along_axis(w, order, axis=1)
        if kk >= k or bool((ws.sum(axis=1) > need + 1e-9).all()):
            return order, np.take_along_axis(loss, order, axis=1), ws
        kk = min(k, 2 * kk)


def tail_stats(loss: FloatArray, unit: FloatArray | None, weights: FloatArray | None,
               alphas: tuple[float, ...], bands: tuple[float, ...],
               cols: NDArray[np.intp] | None = None) -> list[TailStats]:
    """:class:`TailStats` of each row of ``loss`` ``(R, K)`` at each level, one sort for all.

    ``unit`` the unit losses: ``(R, K, N)``, or ``(P, N)`` rows picked by
    ``cols`` ``(R, K)`` (scenario ``[r, k]`` is ``unit[cols[r, k]]``: no
    copy of the scenarios for a regrouping); None: VaR and ES only,
    marginals empty; ``weights`` ``(R, K)`` (rows sum to one) or None (equal);
    ``bands`` the VaR regression half-width per level. VaR is the
    left-continuous ``alpha`` quantile (as :class:`~swarmvar.models.risk.EmpiricalFamily`),
    ES the tail mean with the atom at the VaR counted fractionally.
    """
    rows, k = loss.shape
    w = np.broadcast_to(1.0 / k, (rows, k)) if weights is None else weights
    need = max(1.0 - a + b for a, b in zip(alphas, bands, strict=True))
    order, ls, ws = _top(loss, w, min(1.0, need))
    above = np.cumsum(ws, axis=1) - ws  # weight strictly before each, from the top
    reach = ls.shape[1]
    if unit is None:
        ys = None
    elif cols is None:
        ys = np.take_along_axis(unit, order[:, :, None], axis=1)
    else:
        ys = unit[np.take_along_axis(cols, order, axis=1)]
    out = []
    for alpha, band in zip(alphas, bands, strict=True):
        tail = 1.0 - alpha
        tw = np.clip(tail - above, 0.0, ws)  # ES tail weights, summing to 1 - alpha
        idx = np.minimum((above <= tail + 1e-12).sum(axis=1) - 1, reach - 1)
        var = ls[np.arange(rows), idx]
        es = (tw * ls).sum(axis=1) / tail
        if ys is None:
            out.append(TailStats(var, es, np.empty((rows, 0)), np.empty((rows, 0))))
            continue
        mes = np.einsum("rk,rkn->rn", tw, ys) / tail
        # local linear regression of Y on L in the probability band around alpha
        mid = above + 0.5 * ws
        inband = np.abs(mid - tail) <= band
        inband[np.arange(rows), idx] = True  # at least the VaR scenario
        bw = np.where(inband, ws, 0.0)
        bw /= bw.sum(axis=1, keepdims=True)
        lbar = (bw * ls).sum(axis=1)
        ybar = np.einsum("rk,rkn->rn", bw, ys)
        dl = ls - lbar[:, None]
        sll = (bw * dl * dl).sum(axis=1)
        sly = np.einsum("rk,rkn->rn", bw * dl, ys)
        slope = np.where(sll[:, None] > 0, sly / np.where(sll > 0, sll, 1.0)[:, None], 0.0)
        mvar = ybar + slope * (var - lbar)[:, None]
        out.append(TailStats(var, es, mvar, mes))
    return out


class ScenarioFamily:
    """A book's P&L scenarios as a :class:`~swarmvar.models.risk.Family` for ``risk_measures``.

    ``level_measures`` gives the exact VaR/ES of the pooled scenarios (the
    posterior predictive) and of each draw's, from one partial sort
    (:func:`tail_stats`); the ``Family`` methods go through an
    :class:`~swarmvar.models.risk.EmpiricalFamily` of the same scenarios.
    """

    def __init__(self, pnl: FloatArray, sample_weights: FloatArray | None,
                 weights: FloatArray) -> None:
        self.loss = -np.asarray(pnl, dtype=float)
        if not np.all(np.isfinite(self.loss)):
            raise InvalidParameter("book P&L scenarios must be finite")
        self.sample_weights = sample_weights
        self._weights = np.asarray(weights, dtype=float)

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def _empirical(self) -> Any:
        from .risk import EmpiricalFamily

        return EmpiricalFamily(-self.loss, self.sample_weights, self._weights)

    def var(self, alpha: float) -> FloatArray:
        out: FloatArray = self._empirical().var(alpha)
        return out

    def tail(self, v: float) -> FloatArray:
        out: FloatArray = self._empirical().tail(v)
        return out

    def excess(self, v: float | FloatArray) -> FloatArray:
        out: FloatArray = self._empirical().excess(v)
        return out

    def level_measures(self, alphas: tuple[float, ...]) -> tuple[Any, ...]:
        from .risk import LevelMeasures

        s, m = self.loss.shape
        sw = (np.full((s, m), 1.0 / m) if self.sample_weights is None
              else self.sample_weights)
        pooled = (sw * self._weights[:, None]).reshape(1, -1)
        zeros = tuple(0.0 for _ in alphas)
        pool = tail_stats(self.loss.reshape(1, -1), None, pooled / pooled.sum(), alphas, zeros)
        draw = tail_stats(self.loss, None, self.sample_weights, alphas, zeros)
        return tuple(LevelMeasures(float(p.var[0]), float(p.es[0]), d.var, d.es)
                     for p, d in zip(pool, draw, strict=True))


@dataclass(frozen=True)
class Attribution:
    """A book's VaR/ES at one level split over its assets (currency; see the module docstring).

    Arrays are ``(N,)`` over ``assets`` unless said; ``*_interval`` are
    ``(N, 2)`` credible intervals across posterior draws; ``*_se`` the Monte
    Carlo standard errors of the point values.
    """

    alpha: float
    assets: tuple[str, ...]
    positions: FloatArray
    var: float
    es: float
    var_se: float
    es_se: float
    component_var: FloatArray
    component_es: FloatArray
    component_var_se: FloatArray
    component_es_se: FloatArray
    component_var_interval: FloatArray
    component_es_interval: FloatArray
    marginal_var: FloatArray
    marginal_es: FloatArray
    marginal_var_interval: FloatArray
    marginal_es_interval: FloatArray

    def top(self, k: int = 5, *, by: str = "es") -> list[tuple[str, float]]:
        """The ``k`` largest component contributions (``by="es"`` or ``"var"``)."""
        values = self.component_es if by == "es" else self.component_var
        order = np.argsort(-values, kind="stable")[:k]
        return [(self.assets[i], float(values[i])) for i in order]


@dataclass(frozen=True)
class Incremental:
    """What a trade does to the book's VaR/ES at one level: new minus old, in currency."""

    alpha: float
    trade: FloatArray
    var: float
    es: float
    var_se: float
    es_se: float
    var_interval: tuple[float, float]
    es_interval: tuple[float, float]


def _slices(scen: Scenarios, loss: FloatArray, groups: int
            ) -> tuple[FloatArray, NDArray[np.intp], FloatArray]:
    """The scenarios regrouped into ``groups`` disjoint slices of the scenario axis, pooled.

    Returns the slices' losses and weights ``(G, S * M / G)`` and each one's
    row in the flat ``(S * M, N)`` scenarios.
    """
    s, m = loss.shape
    g = min(groups, m)
    keep = (m // g) * g
    sw = (np.full((s, m), 1.0 / m) if scen.sample_weights is None else scen.sample_weights)
    pooled = sw[:, :keep] * scen.weights[:, None]
    flat = np.arange(s * m).reshape(s, m)[:, :keep]

    def regroup(a: NDArray[Any]) -> NDArray[Any]:
        return a.reshape(s, keep // g, g).transpose(2, 0, 1).reshape(g, -1)

    wr = regroup(pooled)
    return regroup(loss[:, :keep]), regroup(flat), wr / wr.sum(axis=1, keepdims=True)


def _pooled(scen: Scenarios, loss: FloatArray) -> tuple[FloatArray, FloatArray]:
    s, m = loss.shape
    sw = (np.full((s, m), 1.0 / m) if scen.sample_weights is None else scen.sample_weights)
    w = (sw * scen.weights[:, None]).reshape(1, -1)
    return loss.reshape(1, -1), w / w.sum()


def _band(alpha: float, band: float | None) -> float:
    tail = 1.0 - alpha
    return 0.5 * tail if band is None else float(band)


def _intervals(values: FloatArray, weights: FloatArray, mass: float) -> FloatArray:
    """Equal-tailed weighted quantiles across draws: ``values`` ``(S, N)`` -> ``(N, 2)``."""
    probs = ((1 - mass) / 2, (1 + mass) / 2)
    return np.stack([weighted_quantile(values[:, j], weights, probs)
                     for j in range(values.shape[1])])


def _scale_interval(iv: FloatArray, p: FloatArray) -> FloatArray:
    """``p * [lo, hi]`` as an ordered interval (a short flips it)."""
    a, b = iv[:, 0] * p, iv[:, 1] * p
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def _check_positions(positions: ArrayLike, n: int, what: str) -> FloatArray:
    p = np.asarray(positions, dtype=float)
    if p.shape != (n,) or not np.all(np.isfinite(p)):
        raise InvalidParameter(f"{what} must be {n} finite currency amounts, got {p!r}")
    return p


def _degenerate(loss: FloatArray, unit: FloatArray, p: FloatArray) -> bool:
    """Whether the book's loss is constant up to rounding (e.g. offsetting identical legs)."""
    scale = float(np.abs(p).sum() * np.abs(unit).max()) if unit.size else 0.0
    return bool(np.ptp(loss) <= 1e-9 * scale)


def _zero(alpha: float, names: tuple[str, ...], p: FloatArray) -> Attribution:
    """The attribution of a riskless book: zero VaR/ES, zero contributions."""
    z, z2 = np.zeros(p.size), np.zeros((p.size, 2))
    return Attribution(alpha, names, p, 0.0, 0.0, 0.0, 0.0, z, z, z, z, z2, z2, z, z, z2, z2)


def euler(scen: Scenarios, positions: ArrayLike, alphas: tuple[float, ...] | float = (0.99,),
          *, assets: tuple[str, ...] | None = None, interval_mass: float = 0.90,
          band: float | None = None, groups: int = GROUPS) -> tuple[Attribution, ...]:
    """Euler (component), marginal VaR/ES of ``positions`` from ``scen``, one per level.

    Parameters
    ----------
    scen : Scenarios
        ``(S, M, N)`` predictive scenarios.
    positions : array ``(N,)``
        Currency per asset.
    alphas : confidence levels.
    assets : names of the ``N`` assets (default ``"0"``, ``"1"``, ...).
    interval_mass : posterior mass of the credible intervals.
    band : half-width, in probability, of the VaR regression band (default ``(1-alpha)/2``).
    groups : slices behind the Monte Carlo standard errors.
    """
    levels = check_alphas(alphas)
    s, m, n = scen.shape
    p = _check_positions(positions, n, "positions")
    names = tuple(assets) if assets is not None else tuple(str(i) for i in range(n))
    unit = -np.expm1(scen.returns)  # (S, M, N) loss per unit position
    loss = unit @ p
    if _degenerate(loss, unit, p):
        return tuple(_zero(alpha, names, p) for alpha in levels)
    bands = tuple(_band(alpha, band) for alpha in levels)
    flat = unit.reshape(-1, n)
    pl, pw = _pooled(scen, loss)
    pools = tail_stats(pl, flat, pw, levels, bands, np.arange(s * m)[None])
    draws = tail_stats(loss, unit, scen.sample_weights, levels,
                       tuple(max(h, 2.0 / m) for h in bands))
    lr, lc, wr = _slices(scen, loss, groups)
    slices = tail_stats(lr, flat, wr, levels, bands, lc)
    g = lr.shape[0]

    def se(x: FloatArray) -> FloatArray:
        out_se: FloatArray = (np.std(x, axis=0, ddof=1) / np.sqrt(g) if g > 1
                              else np.full(np.shape(x)[1:], np.nan))
        return out_se

    out = []
    for alpha, pool, draw, sl in zip(levels, pools, draws, slices, strict=True):
        mvar_iv = _intervals(draw.mvar, scen.weights, interval_mass)
        mes_iv = _intervals(draw.mes, scen.weights, interval_mass)
        out.append(Attribution(
            alpha=alpha, assets=names, positions=p,
            var=float(pool.var[0]), es=float(pool.es[0]),
            var_se=float(se(sl.var[:, None])[0]), es_se=float(se(sl.es[:, None])[0]),
            component_var=p * pool.mvar[0], component_es=p * pool.mes[0],
            component_var_se=np.abs(p) * se(sl.mvar), component_es_se=np.abs(p) * se(sl.mes),
            component_var_interval=_scale_interval(mvar_iv, p),
            component_es_interval=_scale_interval(mes_iv, p),
            marginal_var=pool.mvar[0], marginal_es=pool.mes[0],
            marginal_var_interval=mvar_iv, marginal_es_interval=mes_iv,
        ))
    return tuple(out)


def incremental(scen: Scenarios, positions: ArrayLike, trade: ArrayLike,
                alphas: tuple[float, ...] | float = (0.99,), *, interval_mass: float = 0.90,
                groups: int = GROUPS) -> tuple[Incremental, ...]:
    """Incremental VaR/ES of adding ``trade`` ``(N,)`` to ``positions``, one per level."""
    levels = check_alphas(alphas)
    s, m, n = scen.shape
    p = _check_positions(positions, n, "positions")
    d = _check_positions(trade, n, "the trade")
    unit = -np.expm1(scen.returns)
    before, after = unit @ p, unit @ (p + d)
    probs = ((1 - interval_mass) / 2, (1 + interval_mass) / 2)
    zeros = tuple(0.0 for _ in levels)
    res = []
    for loss in (before, after):
        pool = tail_stats(*_pooled(scen, loss)[:1], None, _pooled(scen, loss)[1], levels, zeros)
        draw = tail_stats(loss, None, scen.sample_weights, levels, zeros)
        lr, _, wr = _slices(scen, loss, groups)
        res.append((pool, draw, tail_stats(lr, None, wr, levels, zeros)))
    out = []
    for k, alpha in enumerate(levels):
        (p0, d0, s0), (p1, d1, s1) = ((r[0][k], r[1][k], r[2][k]) for r in res)
        g = s0.var.size
        dv, de = d1.var - d0.var, d1.es - d0.es
        var_iv = weighted_quantile(dv, scen.weights, probs)
        es_iv = weighted_quantile(de, scen.weights, probs)
        out.append(Incremental(
            alpha=alpha, trade=d,
            var=float(p1.var[0] - p0.var[0]), es=float(p1.es[0] - p0.es[0]),
            var_se=float(np.std(s1.var - s0.var, ddof=1) / np.sqrt(g)) if g > 1 else np.nan,
            es_se=float(np.std(s1.es - s0.es, ddof=1) / np.sqrt(g)) if g > 1 else np.nan,
            var_interval=(float(var_iv[0]), float(var_iv[1])),
            es_interval=(float(es_iv[0]), float(es_iv[1])),
        ))
    return tuple(out)
