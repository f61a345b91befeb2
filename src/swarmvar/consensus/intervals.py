"""Step 6 of :func:`~.combine.combine`: the consensus intervals after the robust rule.

:func:`_intervals` takes the rule's value ``(VaR, ES, VaR lo, VaR hi, ES lo,
ES hi)`` and the rows it came from, keeps ``ES >= VaR``, adds the agents'
disagreement to each interval (:func:`~.robust.disagreement_bounds`: total
variance with the rule's prior weights), then widens it for missing agents and
staleness (:func:`_widened`, with the between-agent spread of :func:`_spread`,
through :func:`~.partition.widen_interval`'s rule). :func:`_fresh_interval` is
the same last step over many days with every agent present and fresh (a
backtest's :func:`~.rows.aggregate_many`: nothing to widen).

Called by :mod:`.rows` (``aggregate_rows``, ``_aggregate_list``,
``aggregate_many``). Pure functions of their arguments and the
:class:`~.policy.Policy`'s ``interval_mass``, ``drift`` and ``f``; no state.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .partition import SECONDS_PER_DAY, _widen, z_value
from .policy import Policy
from .robust import disagreement_bounds

FloatArray = NDArray[np.float64]
MAD_TO_SD = 1.482602218505602  # 1 / Phi^-1(3/4)


def _intervals(
    value: Sequence[float],
    rows: Sequence[Sequence[float]],
    weights: list[float],
    n: int,
    staleness: float,
    policy: Policy,
) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    """Step 6 after the rule's ``value`` ``(VaR, ES, VaR lo, VaR hi, ES lo, ES hi)``: ES kept
    >= VaR, the agents' disagreement added to the intervals (total variance, with the
    rule's prior ``weights``), then the widening for missing agents and staleness."""
    var, es, var_lo, var_hi, es_lo, es_hi = value
    es = max(es, var)
    z = z_value(policy.interval_mass)
    f = policy.f_for(len(rows))
    var_lo, var_hi = disagreement_bounds(var, var_lo, var_hi, [r[0] for r in rows], weights,
                                         f, z)
    es_lo, es_hi = disagreement_bounds(es, es_lo, es_hi, [r[1] for r in rows], weights, f, z)
    var_interval = _widened(var, var_lo, var_hi, [(r[0], r[2], r[3]) for r in rows], n,
                            staleness, policy, z)
    es_interval = _widened(es, es_lo, es_hi, [(r[1], r[4], r[5]) for r in rows], n,
                           staleness, policy, z)
    return var, es, var_interval, es_interval


def _widened(
    point: float,
    lower: float,
    upper: float,
    columns: Sequence[tuple[float, float, float]],
    n: int,
    staleness: float,
    policy: Policy,
    z: float,
) -> tuple[float, float]:
    """Credible interval around ``point``, widened for missing agents and staleness.

    ``columns`` holds each used agent's (point, lower, upper); ``z`` is
    ``z_value(policy.interval_mass)``.
    """
    points = [c[0] for c in columns]
    spread = _spread(points, [(c[2] - c[1]) / 2 for c in columns], z)
    return _widen(point, (min(lower, point), max(upper, point)), len(columns), n, spread,
                  staleness / SECONDS_PER_DAY, policy.drift, z)


def _spread(points: list[float], half_widths: list[float], z: float) -> float:
    """Between-agent sd: scaled MAD of the points (>= 3 agents), else mean posterior sd."""
    if len(points) >= 3:
        centre = _median(points)
        return MAD_TO_SD * _median([abs(p - centre) for p in points])
    return statistics.fmean(half_widths) / z


def _median(values: list[float]) -> float:
    """``statistics.median`` of a short list (the same value, less overhead)."""
    s = sorted(values)
    k = len(s) // 2
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def _fresh_interval(point: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """:func:`_widened` with every agent present and fresh data (nothing to widen), ``(T, 2)``."""
    low, high = np.minimum(lower, point), np.maximum(upper, point)
    new_lower = point - np.maximum(point - low, 0.0)  # sqrt(side^2 + 0): no square to overflow
    new_upper = point + np.maximum(high - point, 0.0)
    return np.stack([np.where(low >= 0, np.maximum(new_lower, 0.0), new_lower), new_upper],
                    axis=1)
