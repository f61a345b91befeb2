"""The consensus as a forecaster: robust VaR/ES paths from agents' forecast paths.

For backtests: given every agent's VaR and ES forecast for each day and level
(made before that day's return), their credible intervals, and the realized
returns, produce the consensus forecast for each day with the same robust
rule, weighting and interval rule ``combine`` uses
(:func:`~.combine.aggregate_rows`); track-record weights are joint over the
levels, and the levels are kept from crossing (:func:`rearrange_levels`).
Track-record and BMA weights at day ``t`` use only days before ``t``, so the
consensus path is a genuine out-of-sample forecaster. Signing and staleness
do not apply: every agent's forecast of day ``t`` is fresh and in-process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .combine import Policy, Weighting, aggregate_rows
from .robust import check_tolerance
from .weights import bma_weights, joint_weights, track_record_weights

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ConsensusPath:
    """Consensus forecasts per day.

    ``var (T,)``, ``es (T,)``; ``var_interval`` and ``es_interval`` ``(T, 2)``
    (lower, upper); agent ``weights (T, n)`` (each agent's weight in the VaR,
    0 when trimmed).
    """

    var: FloatArray
    es: FloatArray
    var_interval: FloatArray
    es_interval: FloatArray
    weights: FloatArray


@dataclass(frozen=True)
class LevelForecasts:
    """The agents' forecasts at one level: ``var``, ``es`` ``(T, n)``; intervals ``(T, n, 2)``."""

    var: ArrayLike
    es: ArrayLike
    var_interval: ArrayLike | None = None
    es_interval: ArrayLike | None = None


def _day_weights(
    t: int,
    policy: Policy,
    returns: FloatArray,
    levels: dict[float, tuple[FloatArray, FloatArray]],
    log_scores: FloatArray | None,
) -> FloatArray | None:
    """Day ``t``'s agent weights from days before ``t`` only (joint over the levels)."""
    if policy.weighting is Weighting.EQUAL or t == 0:
        return None
    start = 0 if policy.window is None else max(0, t - policy.window)
    if policy.weighting is Weighting.BMA:
        if log_scores is None:
            raise InvalidParameter("BMA weighting needs log_scores (T, n)")
        return bma_weights(log_scores[start:t])
    return joint_weights([
        track_record_weights(returns[start:t], v[start:t], alpha, es=e[start:t],
                             loss=policy.loss, eta=policy.eta)
        for alpha, (v, e) in levels.items()
    ])


def _matrix(name: str, value: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    x = np.asarray(value, dtype=np.float64)
    if x.shape != shape:
        raise InvalidParameter(f"{name} must have shape {shape}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidParameter(f"{name} must be finite")
    return x


def consensus_levels(
    returns: ArrayLike,
    levels: Mapping[float, LevelForecasts],
    policy: Policy,
    *,
    log_scores: ArrayLike | None = None,
) -> dict[float, ConsensusPath]:
    """Consensus VaR/ES forecast for each day and level from ``n`` agents' forecasts.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Realized returns (fractions); day ``t``'s return is used only for
        weights from day ``t + 1`` on.
    levels : mapping alpha -> LevelForecasts
        Each agent's VaR and ES (positive losses) for day ``t``, made before
        it, and their credible intervals (lower, upper). Without intervals
        each agent's interval is its point and the consensus interval comes
        from the agents' disagreement alone.
    policy : Policy
        Aggregator, ``f``, weighting and interval mass (staleness and signing
        do not apply to a backtest path).
    log_scores : array_like, shape (T, n), optional
        ``log p_i(r_t | past)`` for BMA weighting.

    Track-record weights on day ``t`` are joint over the levels
    (:func:`~.weights.joint_weights`), the same for every level; with
    several levels the result is made monotone in alpha
    (:func:`rearrange_levels`).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise InvalidParameter(f"returns must be a finite (T,) array, got shape {r.shape}")
    if not levels:
        raise InvalidParameter("consensus_levels needs at least one level")
    points: dict[float, tuple[FloatArray, FloatArray]] = {}
    rows: dict[float, FloatArray] = {}
    shape: tuple[int, ...] | None = None
    for alpha, lv in levels.items():
        v = np.asarray(lv.var, dtype=np.float64)
        e = np.asarray(lv.es, dtype=np.float64)
        if v.ndim != 2 or v.shape != e.shape or r.shape != (v.shape[0],):
            raise InvalidParameter(
                f"need returns (T,), var and es (T, n); got {r.shape}, {v.shape}, {e.shape}"
            )
        if shape is not None and v.shape != shape:
            raise InvalidParameter(f"every level needs forecasts of shape {shape}, got {v.shape}")
        shape = v.shape
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(e))):
            raise InvalidParameter("returns and forecasts must be finite")
        vi = (np.stack([v, v], axis=-1) if lv.var_interval is None
              else _matrix("var_interval", lv.var_interval, (*v.shape, 2)))
        ei = (np.stack([e, e], axis=-1) if lv.es_interval is None
              else _matrix("es_interval", lv.es_interval, (*v.shape, 2)))
        points[float(alpha)] = (v, e)
        rows[float(alpha)] = np.stack([v, e, vi[..., 0], vi[..., 1], ei[..., 0], ei[..., 1]],
                                      axis=-1)
    assert shape is not None
    days, n = shape
    ls = None if log_scores is None else _matrix("log_scores", log_scores, shape)
    check_tolerance(policy.aggregator, n, policy.f)
    out = {a: (np.empty(days), np.empty(days), np.empty((days, 2)), np.empty((days, 2)),
               np.empty((days, n))) for a in rows}
    for t in range(days):
        w = _day_weights(t, policy, r, points, ls)
        for alpha, x in rows.items():
            o = out[alpha]
            o[0][t], o[1][t], o[2][t], o[3][t], o[4][t] = aggregate_rows(x[t], policy, w)
    alphas = list(out)
    if len(alphas) > 1:
        v, e, vi, ei = rearrange_levels(
            alphas, np.stack([out[a][0] for a in alphas]), np.stack([out[a][1] for a in alphas]),
            np.stack([out[a][2] for a in alphas]), np.stack([out[a][3] for a in alphas]))
        for k, a in enumerate(alphas):
            out[a] = (v[k], e[k], vi[k], ei[k], out[a][4])
    return {a: ConsensusPath(var=o[0], es=o[1], var_interval=o[2], es_interval=o[3],
                             weights=o[4]) for a, o in out.items()}


def consensus_series(
    returns: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float,
    policy: Policy,
    *,
    log_scores: ArrayLike | None = None,
    var_interval: ArrayLike | None = None,
    es_interval: ArrayLike | None = None,
) -> ConsensusPath:
    """Consensus VaR/ES forecast for each day at one level (see :func:`consensus_levels`).

    ``var``, ``es`` are ``(T, n)``; ``var_interval``, ``es_interval``
    ``(T, n, 2)`` (optional); ``log_scores`` ``(T, n)`` for BMA.
    """
    level = LevelForecasts(var, es, var_interval, es_interval)
    return consensus_levels(returns, {alpha: level}, policy, log_scores=log_scores)[
        float(alpha)]


def rearrange_levels(
    alphas: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    var_interval: ArrayLike,
    es_interval: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Make consensus VaR and ES non-decreasing in the confidence level (rearrangement).

    Each level is combined on its own, so with track-record weights a level
    may lean on another agent than its neighbour and the consensus can
    cross (97.5% VaR above 99% VaR). Sorting the values across levels — the
    monotone rearrangement of Chernozhukov, Fernández-Val & Galichon (2010),
    which never moves an estimate further from a monotone truth — restores
    the order; each interval moves with its point. Then ``ES >= VaR`` at each
    level, the ES interval widened to contain the ES.

    Shapes: ``alphas (L,)``; ``var``, ``es`` ``(L, T)``; intervals ``(L, T, 2)``.
    Returns the four arrays rearranged (copies).
    """
    a = np.asarray(alphas, dtype=np.float64)
    v, e = np.array(var, dtype=np.float64), np.array(es, dtype=np.float64)
    vi, ei = np.array(var_interval, dtype=np.float64), np.array(es_interval, dtype=np.float64)
    level = np.argsort(a)
    for x, xi in ((v, vi), (e, ei)):
        order = np.argsort(x[level], axis=0, kind="stable")  # (L, T): ranks within each day
        x[level] = np.take_along_axis(x[level], order, axis=0)
        xi[level] = np.take_along_axis(xi[level], order[..., None], axis=0)
    e = np.maximum(e, v)
    ei[..., 0] = np.minimum(ei[..., 0], e)
    ei[..., 1] = np.maximum(ei[..., 1], e)
    return v, e, vi, ei
