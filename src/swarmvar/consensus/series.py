"""The consensus as a forecaster: robust VaR/ES paths from agents' forecast paths.

For backtests: given every agent's VaR and ES forecast for each day (made
before that day's return) and the realized returns, produce the consensus
forecast for each day with the same robust rule and weighting ``combine``
uses. Track-record and BMA weights at day ``t`` use only days before ``t``,
so the consensus path is a genuine out-of-sample forecaster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from .combine import Policy, Weighting
from .robust import check_tolerance, robust_aggregate
from .weights import bma_weights, track_record_weights

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ConsensusPath:
    """Consensus forecasts per day: ``var (T,)``, ``es (T,)``, agent ``weights (T, n)``."""

    var: FloatArray
    es: FloatArray
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


def consensus_series(
    returns: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float,
    policy: Policy,
    *,
    log_scores: ArrayLike | None = None,
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
        Aggregator, ``f`` and weighting (staleness and signing do not apply
        to a backtest path).
    log_scores : array_like, shape (T, n), optional
        ``log p_i(r_t | past)`` for BMA weighting.
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
    ls = None if log_scores is None else np.asarray(log_scores, dtype=np.float64)
    if ls is not None and ls.shape != v.shape:
        raise InvalidParameter(f"log_scores must have shape {v.shape}, got {ls.shape}")
    days, n = v.shape
    check_tolerance(policy.aggregator, n, policy.f)
    out_var, out_es = np.empty(days), np.empty(days)
    weights = np.empty((days, n))
    for t in range(days):
        w = _day_weights(t, policy, r, v, e, alpha, ls)
        agg = robust_aggregate(
            np.column_stack([v[t], e[t]]),
            policy.aggregator,
            policy.f,
            w,
            multi_krum_m=policy.multi_krum_m,
        )
        out_var[t] = agg.value[0]
        out_es[t] = max(agg.value[1], agg.value[0])
        weights[t] = agg.weights[:, 0]
    return ConsensusPath(var=out_var, es=out_es, weights=weights)
