"""Simulated return series with a known conditional VaR, to score agents and the consensus.

Three designs (``docs/emergence.md``):

* ``GJR_T`` — GJR-GARCH(1,1) with standardized Student-t(6) innovations
  (omega 2e-6, alpha 0.03, gamma 0.10, beta 0.90): the conditional VaR is
  ``sigma_t`` times the innovation's quantile;
* ``REGIME_SWITCH`` — a two-state Markov volatility switch (daily sd 0.7% and
  2.0%, staying probabilities 0.99 and 0.97) with Gaussian innovations; the
  "true" VaR is the one given the current state (an oracle that knows the
  regime, the target a regime-aware forecaster aims at);
* ``IID_T4`` — iid Student-t(4) returns with daily sd 1.2%: the VaR is constant.

Every loss quantile is of ``L = -r``; VaR and ES are positive fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from ..errors import InvalidParameter

FloatArray = NDArray[np.float64]


class Design(Enum):
    """A simulation design with a known conditional VaR."""

    GJR_T = "gjr-t"
    REGIME_SWITCH = "regime-switch"
    IID_T4 = "iid-t4"


@dataclass(frozen=True)
class SimulatedSeries:
    """``returns (T,)``; ``var``, ``es``: level -> ``(T,)`` true conditional VaR/ES of day t."""

    design: Design
    returns: FloatArray
    var: dict[float, FloatArray]
    es: dict[float, FloatArray]


def _t_unit(df: float, alpha: float) -> tuple[float, float]:
    """VaR and ES of the loss of a unit-variance Student-t(df) return."""
    s = math.sqrt((df - 2.0) / df)
    q = float(stats.t.ppf(alpha, df))
    es = (df + q * q) / (df - 1.0) * float(stats.t.pdf(q, df)) / (1.0 - alpha)
    return q * s, es * s


def _normal_unit(alpha: float) -> tuple[float, float]:
    q = float(stats.norm.ppf(alpha))
    return q, float(stats.norm.pdf(q)) / (1.0 - alpha)


def simulate(design: Design, days: int, seed: int,
             alphas: Sequence[float] = (0.99, 0.975)) -> SimulatedSeries:
    """Draw ``days`` returns of a design and their true conditional VaR/ES per level."""
    if not isinstance(design, Design):
        raise InvalidParameter(f"design must be a Design, got {design!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 10 <= days <= 1_000_000:
        raise InvalidParameter(f"days must be an int in [10, 1000000], got {days!r}")
    rng = np.random.default_rng(seed)
    if design is Design.GJR_T:
        df, omega, a, g, b = 6.0, 2e-6, 0.03, 0.10, 0.90
        z = rng.standard_t(df, days + 500) / math.sqrt(df / (df - 2.0))
        sig2 = np.empty(days + 500)
        r = np.empty(days + 500)
        sig2[0] = omega / (1.0 - a - g / 2.0 - b)
        for t in range(days + 500):
            if t:
                sig2[t] = omega + (a + g * (r[t - 1] < 0)) * r[t - 1] ** 2 + b * sig2[t - 1]
            r[t] = math.sqrt(sig2[t]) * z[t]
        sd, ret = np.sqrt(sig2[500:]), r[500:]  # burn-in dropped
        unit = {al: _t_unit(df, al) for al in alphas}
    elif design is Design.REGIME_SWITCH:
        levels, stay = np.array([0.007, 0.020]), np.array([0.99, 0.97])
        state = np.empty(days, dtype=np.int64)
        state[0] = 0
        u = rng.random(days)
        for t in range(1, days):
            state[t] = state[t - 1] if u[t] < stay[state[t - 1]] else 1 - state[t - 1]
        sd = levels[state]
        ret = sd * rng.standard_normal(days)
        unit = {al: _normal_unit(al) for al in alphas}
    else:
        sd = np.full(days, 0.012)
        ret = sd * rng.standard_t(4.0, days) / math.sqrt(2.0)
        unit = {al: _t_unit(4.0, al) for al in alphas}
    return SimulatedSeries(design=design, returns=np.asarray(ret, dtype=np.float64),
                           var={al: sd * unit[al][0] for al in alphas},
                           es={al: sd * unit[al][1] for al in alphas})


@dataclass(frozen=True)
class BreakStudy:
    """Detection of one simulated volatility break, over replications.

    ``delays`` ``(detected,)`` days from the break to the first detection
    within ``horizon`` days after it; ``missed`` replications with none;
    ``false_alarms_per_1000`` detections before the break per 1,000 days.
    """

    factor: float
    df: float | None
    delays: NDArray[np.int64]
    missed: int
    reps: int
    false_alarms_per_1000: float

    @property
    def median_delay(self) -> float:
        """Median detection delay in days (NaN if nothing was detected)."""
        return float(np.median(self.delays)) if self.delays.size else float("nan")


def volatility_breaks(factor: float, *, df: float | None = None, reps: int = 20,
                      before: int = 500, horizon: int = 150, seed: int = 0,
                      **detector: float | int) -> BreakStudy:
    """Run the change-point detector on ``reps`` series whose sd jumps by ``factor``.

    Each series has ``before`` unit-variance returns (Gaussian, or Student-t
    with ``df`` degrees of freedom scaled to unit variance), then ``horizon``
    returns with sd ``factor``; it is standardized by the sd of the first
    ``before`` returns. ``detector`` goes to
    :func:`~swarmvar.emergence.regimes.run_length_posterior`.
    """
    from .regimes import run_length_posterior

    if not (isinstance(factor, (int, float)) and factor > 0) or reps < 1:
        raise InvalidParameter("factor must be > 0 and reps >= 1")
    rng = np.random.default_rng(seed)
    delays, missed, alarms = [], 0, 0
    for _ in range(reps):
        n = before + horizon
        z = (rng.standard_normal(n) if df is None
             else rng.standard_t(df, n) / math.sqrt(df / (df - 2.0)))
        z[before:] *= factor
        res = run_length_posterior(z / z[:before].std(), **detector)  # type: ignore[arg-type]
        hit = res.detections()
        alarms += int(np.sum(hit < before))
        after = hit[hit >= before]
        if after.size:
            delays.append(int(after[0] - before))
        else:
            missed += 1
    return BreakStudy(factor=float(factor), df=df, delays=np.asarray(delays, dtype=np.int64),
                      missed=missed, reps=reps,
                      false_alarms_per_1000=1000.0 * alarms / (reps * before))
