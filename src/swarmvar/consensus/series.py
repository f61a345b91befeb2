"""The consensus as a forecaster: robust VaR/ES paths from agents' forecast paths.

For backtests: given every agent's VaR and ES forecast for each day and level
(made before that day's return), their credible intervals, and the realized
returns, produce the consensus forecast for each day with the same robust
rule, weighting and interval rule ``combine`` uses
(:func:`~.combine.aggregate_rows`, all days at once by
:func:`~.combine.aggregate_many`); track-record weights are joint over the
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
from .policy import Policy, Weighting
from .robust import check_tolerance
from .rows import aggregate_many
from .tempered import TEMPERED_ETA, joint_losses, tempered_path
from .weights import Loss, fz0_loss, pinball_loss

FloatArray = NDArray[np.float64]


def bma_horizon_words(horizon: int, *, equal: str) -> str:
    """Why BMA weights cannot weigh ``horizon``-day forecasts (``horizon`` > 1), and what
    to use instead: the one wording of :func:`swarmvar.var`'s and
    :func:`swarmvar.validation.backtest`'s refusals (``equal``: how the caller asks for
    equal weights, e.g. ``"track_days=0"``)."""
    return (f"BMA weighting needs each agent's predictive log score of every day in the "
            f"track record, which it has at horizon 1 only (the agents give no {horizon}-day "
            f"density to score); at horizon {horizon} use Weighting.TEMPERED or "
            f"Weighting.TRACK_RECORD (they score the {horizon}-day VaR and ES), or {equal} "
            f"for equal weights")


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


def _window_sums(x: FloatArray, window: int | None) -> FloatArray:
    """Row ``t`` = sum of ``x[start:t]`` over axis 0, ``start = max(0, t - window)`` ``(T, n)``.

    Each window is summed on its own (no running-sum cancellation), so the
    result equals ``x[start:t].sum(axis=0)`` to rounding.
    """
    days, n = x.shape
    out = np.zeros((days, n))
    prefix = np.cumsum(x, axis=0)
    full = days if window is None else min(window, days)
    out[1 : full + 1] = prefix[: full] if full < days else prefix[: days - 1]
    if window is not None and window < days - 1:
        views = np.lib.stride_tricks.sliding_window_view(x[: days - 1], window, axis=0)
        out[window + 1 :] = views[1:].sum(axis=-1)
    return out


def _softmax_rows(log_w: FloatArray) -> FloatArray:
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    result: FloatArray = w / w.sum(axis=1, keepdims=True)
    return result


def _weight_path(
    policy: Policy,
    returns: FloatArray,
    levels: dict[float, tuple[FloatArray, FloatArray]],
    log_scores: FloatArray | None,
    shape: tuple[int, int],
    horizon: int = 1,
) -> FloatArray | None:
    """Every day's agent weights ``(T, n)`` from losses realized before it only; None for equal.

    Day ``t`` gets what :func:`~.tempered.tempered_weights`,
    :func:`~.weights.bma_weights` or :func:`~.weights.joint_weights` of
    :func:`~.weights.track_record_weights` give on the trailing
    ``policy.window`` forecast days ``<= t - horizon`` (an ``h``-day loss is
    known ``h`` days after its forecast; earlier days: equal), computed for
    all days at once.
    """
    days, n = shape
    if policy.weighting is Weighting.EQUAL or days < 2:
        return None
    if policy.weighting is Weighting.TEMPERED:
        alphas = list(levels)
        joint = joint_losses(returns, np.stack([levels[a][0] for a in alphas]),
                             np.stack([levels[a][1] for a in alphas]), alphas, policy.loss)
        temperature = TEMPERED_ETA if policy.eta is None else policy.eta
        return tempered_path(joint, temperature, policy.window, lag=horizon, loss=policy.loss)
    if policy.weighting is Weighting.BMA:
        if log_scores is None:
            raise InvalidParameter("BMA weighting needs log_scores (T, n): each agent's "
                                   "predictive log density of every day's return")
        log_w = _window_sums(log_scores, policy.window)
    else:
        past = returns[: days - 1]  # the last day's return weighs no forecast
        counts = np.minimum(np.arange(days), days if policy.window is None else policy.window)
        log_w = np.zeros((days, n))
        for alpha, (v, e) in levels.items():
            losses = np.zeros((days, n))  # row T-1 (the last day's return) is never summed
            if policy.loss is Loss.FZ0:
                losses[:-1] = fz0_loss(past, v[: days - 1], e[: days - 1], alpha)
                eta = np.full(days, 1.0)
            else:
                losses[:-1] = pinball_loss(past, v[: days - 1], alpha)
                # default eta: 1 / the window's mean pinball loss (0 if that is 0)
                mean = _window_sums(losses.sum(axis=1, keepdims=True), policy.window)[:, 0]
                mean[1:] /= counts[1:] * n
                with np.errstate(divide="ignore"):
                    eta = np.where(mean > 0, 1.0 / mean, 0.0)
            if policy.eta is not None:
                eta = np.full(days, float(policy.eta))
            if not np.all(np.isfinite(eta[1:])) or np.any(eta < 0):
                raise InvalidParameter(f"eta must be a finite number >= 0, got {policy.eta}")
            log_w -= eta[:, None] * _window_sums(losses, policy.window)
    if horizon > 1:  # day t may use forecast days <= t - horizon only
        log_w = np.concatenate([np.zeros((min(horizon - 1, days), n)),
                                log_w[: max(days - horizon + 1, 0)]])
    weights = _softmax_rows(log_w)
    weights[0] = 1.0 / n
    return weights


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
    horizon: int = 1,
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
    horizon : int
        Days each forecast covers: the loss of day ``t``'s forecast is known
        ``horizon`` days later, so weights of day ``t`` use days ``<= t - horizon``.

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
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InvalidParameter(f"horizon must be a whole number >= 1, got {horizon!r}")
    weights = _weight_path(policy, r, points, ls, (days, n), int(horizon))  # day 0: equal
    out = {alpha: aggregate_many(x, policy, weights) for alpha, x in rows.items()}
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
