"""Simulated return series with a known conditional VaR, to score agents and the consensus.

Three designs (``docs/emergence.md``):

* ``GJR_T`` — GJR-GARCH(1,1) with standardized Student-t(6) innovations
  (omega 2e-6, alpha 0.03, gamma 0.10, beta 0.90): the conditional VaR is
  ``sigma_t`` times the innovation's quantile;
* ``REGIME_SWITCH`` — a two-state Markov volatility switch (daily sd 0.7% and
  2.0%, staying probabilities 0.99 and 0.97, day 0 in the calm state) with
  Gaussian innovations. The state is hidden: the true conditional VaR of day
  ``t`` is the quantile of ``r_t`` given ``r_0..r_{t-1}`` (known parameters),
  a two-component normal mixture weighted by the Hamilton filter's predicted
  state probabilities (:func:`regime_filter`, :func:`normal_mixture_var_es`).
  The VaR given the current state (an oracle no forecaster from past returns
  can know) is kept as ``oracle_var``/``oracle_es``, for reference;
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
from ..validation._checks import (
    check_real,
    check_whole,
    float_array,
    level,
    named_alphas,
)

FloatArray = NDArray[np.float64]


class Design(Enum):
    """A simulation design with a known conditional VaR."""

    GJR_T = "gjr-t"
    REGIME_SWITCH = "regime-switch"
    IID_T4 = "iid-t4"


#: The regime-switch design's daily sd per state (calm, turbulent).
REGIME_SD = (0.007, 0.020)
#: Its probabilities of staying in each state from one day to the next.
REGIME_STAY = (0.99, 0.97)


@dataclass(frozen=True)
class SimulatedSeries:
    """A simulated series and its true conditional VaR/ES.

    ``returns (T,)``; ``var``, ``es``: level -> ``(T,)`` the VaR/ES of the loss
    of day ``t`` given the returns before it (known parameters) — what a
    forecaster is scored against. ``oracle_var``, ``oracle_es``: the same
    given the design's hidden state of day ``t`` as well (the regime switch's
    current state); equal to ``var``/``es`` when nothing is hidden.
    ``high_state_prob (T,)``: the regime switch's predicted probability of the
    turbulent state given the past (``None`` for the other designs).
    """

    design: Design
    returns: FloatArray
    var: dict[float, FloatArray]
    es: dict[float, FloatArray]
    oracle_var: dict[float, FloatArray]
    oracle_es: dict[float, FloatArray]
    high_state_prob: FloatArray | None = None


def _t_unit(df: float, alpha: float) -> tuple[float, float]:
    """VaR and ES of the loss of a unit-variance Student-t(df) return."""
    s = math.sqrt((df - 2.0) / df)
    q = float(stats.t.ppf(alpha, df))
    es = (df + q * q) / (df - 1.0) * float(stats.t.pdf(q, df)) / (1.0 - alpha)
    return q * s, es * s


def _normal_unit(alpha: float) -> tuple[float, float]:
    q = float(stats.norm.ppf(alpha))
    return q, float(stats.norm.pdf(q)) / (1.0 - alpha)


def regime_filter(returns: FloatArray, sd: Sequence[float] = REGIME_SD,
                  stay: Sequence[float] = REGIME_STAY,
                  initial: Sequence[float] = (1.0, 0.0)) -> FloatArray:
    """Hamilton filter: predicted state probabilities ``(T, k)`` of a Gaussian Markov switch.

    Row ``t`` is ``P(s_t = j | r_0..r_{t-1})``; row 0 is ``initial``. The
    returns are ``N(0, sd[s_t]^2)`` given the state; a state stays with
    probability ``stay[j]`` and otherwise moves (two states: to the other
    one; ``k`` states: uniformly to the others). Likelihoods are taken
    relative to the largest per day, so no day underflows.
    """
    r = float_array(returns, "returns")
    sds, st = float_array(sd, "sd"), float_array(stay, "stay")
    p0 = float_array(initial, "initial")
    k = sds.size
    if (r.ndim != 1 or sds.ndim != 1 or k < 2 or st.shape != (k,)
            or p0.shape != (k,) or not np.all(sds > 0) or not np.all((st >= 0) & (st <= 1))
            or not np.all(p0 >= 0) or not np.isclose(p0.sum(), 1.0)):
        raise InvalidParameter("regime_filter needs finite returns (T,), k >= 2 positive sds, "
                               "k staying probabilities in [0, 1] and k initial probabilities")
    trans = np.where(np.eye(k, dtype=bool), st[:, None], ((1.0 - st) / (k - 1))[:, None])
    # log density up to the common constant, per day and state
    with np.errstate(over="ignore"):
        logf = -np.log(sds)[None, :] - 0.5 * (r[:, None] / sds[None, :]) ** 2
    if not np.all(np.isfinite(logf)):
        raise InvalidParameter("returns are too large for every state's sd (r / sd overflows); "
                               "give returns and sd in the same units")
    like = np.exp(logf - logf.max(axis=1, keepdims=True))
    out = np.empty((r.size, k))
    pred = p0 / p0.sum()
    for t in range(r.size):
        out[t] = pred
        post = pred * like[t]
        total = post.sum()
        if not total > 0.0:  # every state still possible is far below the day's best one
            live = pred > 0.0
            rel = np.zeros(k)
            rel[live] = np.exp(logf[t][live] - logf[t][live].max())
            post = pred * rel
            total = post.sum()
        pred = post @ trans / total
    return out


def normal_mixture_var_es(probs: FloatArray, sd: Sequence[float],
                          alpha: float) -> tuple[FloatArray, FloatArray]:
    """VaR and ES ``(T,)`` of the loss of a zero-mean normal mixture with weights ``probs (T, k)``.

    The VaR solves ``sum_j p_j Phi(v / sd_j) = alpha`` (bisection between the
    smallest and the largest component VaR, to float resolution); the ES is
    ``sum_j p_j sd_j phi(v / sd_j) / (1 - alpha)`` (a normal's tail mean in
    closed form).
    """
    p = np.atleast_2d(float_array(probs, "probs"))
    s = float_array(sd, "sd")
    alpha = level(alpha)
    if (p.ndim != 2 or s.ndim != 1 or p.shape[1] != s.size or p.size == 0
            or not np.all((s >= 1e-12) & (s <= 1e6)) or not np.all(p >= 0)
            or not np.allclose(p.sum(axis=1), 1.0)):
        raise InvalidParameter(f"probs must be (T, k) probabilities summing to 1 per row, with "
                               f"k = len(sd) sds in [1e-12, 1e6]; got probs {p.shape}, "
                               f"sd {s.shape}")
    z = float(stats.norm.ppf(alpha))
    ends = sorted((s.min() * z, s.max() * z))  # below the median (alpha < 0.5) z < 0
    lo = np.full(p.shape[0], ends[0])
    hi = np.full(p.shape[0], ends[1])
    for _ in range(200):  # the bracket halves each pass; stops when it cannot shrink
        mid = 0.5 * (lo + hi)
        if np.all((mid <= lo) | (mid >= hi)):  # no float left between the ends
            break
        below = (p * stats.norm.cdf(mid[:, None] / s)).sum(axis=1) < alpha
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    v = 0.5 * (lo + hi)
    es = (p * s * stats.norm.pdf(v[:, None] / s)).sum(axis=1) / (1.0 - alpha)
    return v, es


def simulate(design: Design, days: int, seed: int,
             alphas: Sequence[float] | float = (0.99, 0.975)) -> SimulatedSeries:
    """Draw ``days`` returns of a design and their true conditional VaR/ES per level."""
    if not isinstance(design, Design):
        raise InvalidParameter(f"design must be a Design, got {design!r}")
    days = check_whole("days", days, 10, 1_000_000)
    seed = check_whole("seed", seed, 0)
    alphas = named_alphas(alphas)  # in (0.5, 1): VaR as a positive loss
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
        levels, stay = np.array(REGIME_SD), np.array(REGIME_STAY)
        state = np.empty(days, dtype=np.int64)
        state[0] = 0
        u = rng.random(days)
        for t in range(1, days):
            state[t] = state[t - 1] if u[t] < stay[state[t - 1]] else 1 - state[t - 1]
        sd = levels[state]
        ret = sd * rng.standard_normal(days)
        unit = {al: _normal_unit(al) for al in alphas}
        ret = np.asarray(ret, dtype=np.float64)
        prob = regime_filter(ret)  # P(state | past returns): day 0 is known to be calm
        pred = {al: normal_mixture_var_es(prob, REGIME_SD, al) for al in alphas}
        return SimulatedSeries(design=design, returns=ret,
                               var={al: pred[al][0] for al in alphas},
                               es={al: pred[al][1] for al in alphas},
                               oracle_var={al: sd * unit[al][0] for al in alphas},
                               oracle_es={al: sd * unit[al][1] for al in alphas},
                               high_state_prob=prob[:, 1])
    else:
        sd = np.full(days, 0.012)
        ret = sd * rng.standard_t(4.0, days) / math.sqrt(2.0)
        unit = {al: _t_unit(4.0, al) for al in alphas}
    var = {al: sd * unit[al][0] for al in alphas}
    es = {al: sd * unit[al][1] for al in alphas}
    return SimulatedSeries(design=design, returns=np.asarray(ret, dtype=np.float64),
                           var=var, es=es, oracle_var=var, oracle_es=es)


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

    factor = check_real("factor (the volatility jump)", factor, 1e-6, 1e6)
    if df is not None:
        df = check_real("df (Student-t degrees of freedom)", df, 2.0 + 1e-9, 1e6)
    reps = check_whole("reps", reps, 1, 100_000)
    before = check_whole("before (returns before the break)", before, 2, 10_000_000)
    horizon = check_whole("horizon (returns after the break)", horizon, 1, 10_000_000)
    seed = check_whole("seed", seed, 0)
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
