"""Step 5 of :func:`~.combine.combine` on admitted rows: the robust rule, then the intervals.

A row is one agent's ``(VaR, ES, VaR lo, VaR hi, ES lo, ES hi)``.
:func:`aggregate_rows` runs the policy's rule (:func:`~.robust.robust_aggregate`)
on one beat's rows ``(m, 6)`` and hands the value to :func:`~.intervals._intervals`
(step 6); the runtime's beat and the arbiter's replay call it directly.
:func:`_aggregate_list` is ``combine``'s path on a live beat's few rows as
Python floats (:func:`_trimmed_rows`: the same bits as the numpy rule).
:func:`aggregate_many` is the backtest's path (:func:`~.series.consensus_series`):
every day's rows ``(T, m, 6)`` at once, fresh and complete.

Pure functions of the rows, the prior weights and the
:class:`~.policy.Policy`; no state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .intervals import _fresh_interval, _intervals
from .partition import z_value
from .policy import Policy
from .robust import (
    _SMALL,
    MANY_DAY_RULES,
    Aggregator,
    aggregate_days,
    check_tolerance,
    disagreement_bounds_days,
    robust_aggregate,
)

FloatArray = NDArray[np.float64]


def aggregate_rows(
    rows: FloatArray,
    policy: Policy,
    weights: FloatArray | None = None,
    *,
    total: int | None = None,
    staleness: float = 0.0,
) -> tuple[float, float, tuple[float, float], tuple[float, float], FloatArray]:
    """Steps 5-6 of :func:`combine` on admitted rows: the robust rule, then the intervals.

    ``rows`` is ``(m, 6)``: each used agent's ``(VaR, ES, VaR lo, VaR hi, ES
    lo, ES hi)``; ``weights`` the prior weights ``(m,)`` (equal if None);
    ``total`` the agents expected (``m`` if None); ``staleness`` the data age
    in seconds of the oldest row. Returns ``(var, es, var_interval,
    es_interval, contribution)`` where ``contribution (m,)`` is each row's
    weight in the VaR (0 for trimmed rows). :func:`consensus_series` uses
    this too, so a backtest's consensus row is the same rule as a live one
    (``combine`` runs the same numbers on Python floats: tested bit for bit).
    """
    m = rows.shape[0]
    prior = np.full(m, 1.0 / m) if weights is None else weights
    agg = robust_aggregate(
        rows, policy.aggregator, policy.f_for(m), prior, multi_krum_m=policy.multi_krum_m
    )
    n = m if total is None else max(total, m)
    var, es, var_interval, es_interval = _intervals(
        [float(v) for v in agg.value], rows.tolist(), prior.tolist(), n, staleness, policy)
    return var, es, var_interval, es_interval, agg.weights[:, 0]


def _aggregate_list(
    rows: list[tuple[float, float, float, float, float, float]],
    policy: Policy,
    weights: list[float],
    total: int,
    staleness: float,
) -> tuple[float, float, tuple[float, float], tuple[float, float], list[float]]:
    """:func:`aggregate_rows` on rows of admitted estimates, as Python floats.

    A live beat has a few agents: for the trimmed mean and the mean the rule
    runs on floats (:func:`_trimmed_rows`, the same bits as the numpy rule);
    other rules go through :func:`aggregate_rows`. ``rows`` are finite (every
    admitted estimate is) and ``weights`` finite and ``>= 0``.
    """
    m = len(rows)
    if policy.aggregator not in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN) or m > _SMALL:
        var, es, vi, ei, share = aggregate_rows(np.array(rows, dtype=np.float64), policy,
                                                np.array(weights, dtype=np.float64),
                                                total=total, staleness=staleness)
        return var, es, vi, ei, share.tolist()
    check_tolerance(policy.aggregator, m, policy.f_for(m))
    trim = policy.f_for(m) if policy.aggregator is Aggregator.TRIMMED_MEAN else 0
    value, contribution = _trimmed_rows(rows, trim, weights)
    var, es, var_interval, es_interval = _intervals(value, rows, weights, max(total, m),
                                                    staleness, policy)
    return var, es, var_interval, es_interval, contribution


def _trimmed_rows(
    rows: Sequence[tuple[float, ...]], trim: int, weights: list[float]
) -> tuple[list[float], list[float]]:
    """The weighted trimmed mean of each column, and each row's share in column 0.

    Per column: drop the ``trim`` lowest and highest (stable order), average
    the rest with their weights renormalized (equal if they all underflow),
    clip to the survivors' range. The same sums in the same (row) order as
    :func:`~.robust.robust_aggregate`'s rule, so the same bits (tested); the
    renormalized weights are computed once per distinct set of survivors.
    """
    n = len(rows)
    index = range(n)
    values: list[float] = []
    first: list[tuple[int, float]] = []
    kept_before: list[int] | None = None
    shares: list[tuple[int, float]] = []
    for j, col in enumerate(zip(*rows, strict=True)):
        kept = sorted(sorted(index, key=col.__getitem__)[trim:n - trim]) if trim else list(index)
        if kept != kept_before:
            mass = 0.0
            for i in kept:
                mass += weights[i]
            if mass <= 0:  # all surviving weights underflowed: equal among survivors
                shares = [(i, 1.0 / len(kept)) for i in kept]
            else:
                shares = [(i, weights[i] / mass) for i in kept]
            kept_before = kept
        total, low, high = 0.0, math.inf, -math.inf
        for i, w in shares:
            if w > 0:
                x = col[i]
                total += w * x
                low, high = min(low, x), max(high, x)
        values.append(min(max(total, low), high))
        if j == 0:
            first = shares
    contribution = [0.0] * n
    for i, w in first:
        contribution[i] = w
    return values, contribution


def aggregate_many(
    rows: FloatArray, policy: Policy, weights: FloatArray | None = None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`aggregate_rows` for many days of every agent's rows at once (a backtest path).

    ``rows`` is ``(T, m, 6)``, ``weights`` ``(T, m)`` (equal if None); every
    agent is used every day and the data are fresh (``total = m``,
    ``staleness = 0``: no widening, so the intervals are each day's own
    after the rule, plus the agents' disagreement). Returns ``var``, ``es``
    ``(T,)``, ``var_interval``, ``es_interval`` ``(T, 2)`` and
    ``contribution`` ``(T, m)``: the same numbers as :func:`aggregate_rows`
    day by day (points and contributions bit for bit, intervals to rounding;
    tested), for the median, trimmed mean and mean; other rules are computed
    day by day.
    """
    days, m, _ = rows.shape
    prior = np.full((days, m), 1.0 / m) if weights is None else weights
    if policy.aggregator not in MANY_DAY_RULES:
        out = [aggregate_rows(rows[t], policy, prior[t]) for t in range(days)]
        return (np.array([o[0] for o in out]), np.array([o[1] for o in out]),
                np.array([o[2] for o in out]), np.array([o[3] for o in out]),
                np.array([o[4] for o in out]))
    f = policy.f_for(m)
    check_tolerance(policy.aggregator, m, f)
    value, contribution = aggregate_days(rows, policy.aggregator, f, prior)
    var, es = value[:, 0], np.maximum(value[:, 1], value[:, 0])
    z = z_value(policy.interval_mass)
    var_b = disagreement_bounds_days(var, value[:, 2], value[:, 3], rows[:, :, 0], prior, f, z)
    es_b = disagreement_bounds_days(es, value[:, 4], value[:, 5], rows[:, :, 1], prior, f, z)
    return (var, es, _fresh_interval(var, *var_b), _fresh_interval(es, *es_b),
            contribution[:, :, 0])
