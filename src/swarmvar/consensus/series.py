"""The consensus as a forecaster: robust VaR/ES paths from agents' forecast paths.

For backtests: given every agent's VaR and ES forecast for each day (made
before that day's return), their credible intervals, and the realized
returns, produce the consensus forecast for each day with the same robust
rule, weighting and interval rule ``combine`` uses
(:func:`~.combine.aggregate_rows`). Track-record and BMA weights at day ``t``
use only days before ``t``, so the consensus path is a genuine out-of-sample
forecaster. Signing and staleness do not apply: every agent's forecast of
day ``t`` is fresh and in-process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .combine import Policy, Weighting, aggregate_rows
from .robust import check_tolerance
from .weights import bma_weights, track_record_weights

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


def _day_weights(
    t: int,
    policy: Policy,
    returns: FloatArray,
    var: FloatArray,
    es: FloatArray,
    alpha: float,
    log_scores: FloatArray | None,
) -> FloatArray | None:
    if policy.weighting is Weighting.EQUAL or t == 0:
        return None
    start = 0 if policy.window is None else max(0, t - policy.window)
    if policy.weighting is Weighting.BMA:
        if log_scores is None:
            raise InvalidParameter("BMA weighting needs log_scores (T, n)")
        return bma_weights(log_scores[start:t])
    return track_record_weights(
        returns[start:t], var[start:t], alpha, es=es[start:t], loss=policy.loss, eta=policy.eta
    ).weights


def _matrix(name: str, value: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    x = np.asarray(value, dtype=np.float64)
    if x.shape != shape:
        raise InvalidParameter(f"{name} must have shape {shape}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidParameter(f"{name} must be finite")
    return x


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
    """Consensus VaR/ES forecast for each day from ``n`` agents' forecasts.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Realized returns (fractions); day ``t``'s return is used only for
        weights from day ``t + 1`` on.
    var, es : array_like, shape (T, n)
        Each agent's forecast for day ``t`` (positive losses), made before it.
    alpha : float
        Confidence level of the forecasts.
    policy : Policy
        Aggregator, ``f``, weighting and interval mass (staleness and signing
        do not apply to a backtest path).
    log_scores : array_like, shape (T, n), optional
        ``log p_i(r_t | past)`` for BMA weighting.
    var_interval, es_interval : array_like, shape (T, n, 2), optional
        Each agent's credible interval (lower, upper); without them each
        agent's interval is its point and the consensus interval comes from
        the agents' disagreement alone.
    """
    r = np.asarray(returns, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    e = np.asarray(es, dtype=np.float64)
    if v.ndim != 2 or v.shape != e.shape or r.shape != (v.shape[0],):
        raise InvalidParameter(
            f"need returns (T,), var and es (T, n); got {r.shape}, {v.shape}, {e.shape}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(v)) and np.all(np.isfinite(e))):
        raise InvalidParameter("returns and forecasts must be finite")
    ls = None if log_scores is None else _matrix("log_scores", log_scores, v.shape)
    vi = (np.stack([v, v], axis=-1) if var_interval is None
          else _matrix("var_interval", var_interval, (*v.shape, 2)))
    ei = (np.stack([e, e], axis=-1) if es_interval is None
          else _matrix("es_interval", es_interval, (*v.shape, 2)))
    days, n = v.shape
    check_tolerance(policy.aggregator, n, policy.f)
    rows = np.stack([v, e, vi[..., 0], vi[..., 1], ei[..., 0], ei[..., 1]], axis=-1)
    out_var, out_es = np.empty(days), np.empty(days)
    out_vi, out_ei = np.empty((days, 2)), np.empty((days, 2))
    weights = np.empty((days, n))
    for t in range(days):
        w = _day_weights(t, policy, r, v, e, alpha, ls)
        out_var[t], out_es[t], out_vi[t], out_ei[t], weights[t] = aggregate_rows(
            rows[t], policy, w
        )
    return ConsensusPath(
        var=out_var, es=out_es, var_interval=out_vi, es_interval=out_ei, weights=weights
    )


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
