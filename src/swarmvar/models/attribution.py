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


def tail_stats(loss: FloatArray, unit: FloatArray, weights: FloatArray | None, alpha: float,
               band: float) -> TailStats:
    """:class:`TailStats` of each row of ``loss`` ``(R, K)`` with unit losses ``(R, K, N)``.

    ``weights`` ``(R, K)`` (rows sum to one) or None (equal). VaR is the
    left-continuous ``alpha`` quantile (as :class:`~swarmvar.models.risk.EmpiricalFamily`),
    ES the tail mean with the atom at the VaR counted fractionally.
    """
    rows, k = loss.shape
    w = np.full((rows, k), 1.0 / k) if weights is None else weights
    order = np.argsort(-loss, axis=1, kind="stable")
    ls = np.take_along_axis(loss, order, axis=1)
    ws = np.take_along_axis(w, order, axis=1)
    above = np.cumsum(ws, axis=1) - ws  # weight strictly before each, from the top
    tail = 1.0 - alpha
    tw = np.clip(tail - above, 0.0, ws)  # ES tail weights, summing to 1 - alpha
    idx = np.minimum((above <= tail + 1e-12).sum(axis=1) - 1, k - 1)
    var = ls[np.arange(rows), idx]
    # columns that can matter: the tail and the band around the VaR
    reach = int(min(k, np.max((above <= tail + band + 1e-12).sum(axis=1)) + 1))
    cols = order[:, :reach]
    ys = np.take_along_axis(unit, cols[:, :, None], axis=1)  # (R, reach, N)
    es = (tw[:, :reach] * ls[:, :reach]).sum(axis=1) / tail
    mes = np.einsum("rk,rkn->rn", tw[:, :reach], ys) / tail
    # local linear regression of Y on L in the probability band around alpha
    mid = above[:, :reach] + 0.5 * ws[:, :reach]
    inband = np.abs(mid - tail) <= band
    inband[np.arange(rows), np.minimum(idx, reach - 1)] = True  # at least the VaR scenario
    bw = np.where(inband, ws[:, :reach], 0.0)
    bw /= bw.sum(axis=1, keepdims=True)
    lb = ls[:, :reach]
    lbar = (bw * lb).sum(axis=1)
    ybar = np.einsum("rk,rkn->rn", bw, ys)
    dl = lb - lbar[:, None]
    sll = (bw * dl * dl).sum(axis=1)
    sly = np.einsum("rk,rkn->rn", bw * dl, ys)
    slope = np.where(sll[:, None] > 0, sly / np.where(sll > 0, sll, 1.0)[:, None], 0.0)
    mvar = ybar + slope * (var - lbar)[:, None]
    return TailStats(var, es, mvar, mes)


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


def _slices(scen: Scenarios, loss: FloatArray, unit: FloatArray, groups: int
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The scenarios regrouped into ``groups`` disjoint slices over the scenario axis, pooled."""
    s, m, n = unit.shape
    g = min(groups, m)
    keep = (m // g) * g
    sw = (np.full((s, m), 1.0 / m) if scen.sample_weights is None else scen.sample_weights)
    pooled = sw[:, :keep] * scen.weights[:, None]
    lr = loss[:, :keep].reshape(s, keep // g, g).transpose(2, 0, 1).reshape(g, -1)
    ur = unit[:, :keep].reshape(s, keep // g, g, n).transpose(2, 0, 1, 3).reshape(g, -1, n)
    wr = pooled.reshape(s, keep // g, g).transpose(2, 0, 1).reshape(g, -1)
    wr = wr / wr.sum(axis=1, keepdims=True)
    return lr, ur, wr


def _pooled(scen: Scenarios, loss: FloatArray, unit: FloatArray
            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    s, m, n = unit.shape
    sw = (np.full((s, m), 1.0 / m) if scen.sample_weights is None else scen.sample_weights)
    w = (sw * scen.weights[:, None]).reshape(1, -1)
    return loss.reshape(1, -1), unit.reshape(1, -1, n), w / w.sum()


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
    out = []
    for alpha in levels:
        h = _band(alpha, band)
        pool = tail_stats(*_pooled(scen, loss, unit), alpha, h)
        draw = tail_stats(loss, unit, scen.sample_weights, alpha, max(h, 2.0 / m))
        lr, ur, wr = _slices(scen, loss, unit, groups)
        sl = tail_stats(lr, ur, wr, alpha, h)
        g = lr.shape[0]

        def se(x: FloatArray, g: int = g) -> FloatArray:
            out_se: FloatArray = np.std(x, axis=0, ddof=1) / np.sqrt(g) if g > 1 else np.full(
                np.shape(x)[1:], np.nan)
            return out_se

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
    none = np.zeros((s, m, 1))
    out = []
    for alpha in levels:
        res = []
        for loss in (before, after):
            pool = tail_stats(*_pooled(scen, loss, none[:, :, :1] * 0), alpha, 0.0)
            draw = tail_stats(loss, none, scen.sample_weights, alpha, 0.0)
            lr, ur, wr = _slices(scen, loss, none, groups)
            sl = tail_stats(lr, ur, wr, alpha, 0.0)
            res.append((pool, draw, sl))
        (p0, d0, s0), (p1, d1, s1) = res
        g = s0.var.size
        dv, de = d1.var - d0.var, d1.es - d0.es
        out.append(Incremental(
            alpha=alpha, trade=d,
            var=float(p1.var[0] - p0.var[0]), es=float(p1.es[0] - p0.es[0]),
            var_se=float(np.std(s1.var - s0.var, ddof=1) / np.sqrt(g)) if g > 1 else np.nan,
            es_se=float(np.std(s1.es - s0.es, ddof=1) / np.sqrt(g)) if g > 1 else np.nan,
            var_interval=tuple(map(float, weighted_quantile(dv, scen.weights, probs))),  # type: ignore[arg-type]
            es_interval=tuple(map(float, weighted_quantile(de, scen.weights, probs))),  # type: ignore[arg-type]
        ))
    return tuple(out)
