"""Consensus statistics against outside references.

* The between-agent spread (scaled MAD) against scipy's
  ``median_abs_deviation(scale="normal")`` and its constant
  ``1 / Phi^-1(3/4)``; the interval's normal quantile against scipy.
* The trimmed mean and median against scipy's ``trim_mean`` and numpy's
  ``median``.
* The widening rule for missing agents, ``tau^2 (1/m - 1/n)``, is the exact
  variance of (mean of all ``n`` agents) - (mean of the ``m`` present) for
  agents drawn i.i.d. with spread ``tau``: simulation with a known truth
  checks the widened interval covers the full-swarm consensus with its mass.
* The agents' scores: FZ0 against Patton, Ziegel & Chen's (2019) published
  return-convention formula, written out here, and the pinball loss against
  the textbook check function, for ``(T,)`` and ``(T, n)`` forecasts.
* The staleness term ``(kappa VaR)^2 d`` is the delta-method variance of a
  VaR whose log moves as a random walk of volatility ``kappa`` per
  square-root day; against the lognormal's exact coverage (closed form).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from swarmvar.consensus import fz0_loss, median, pinball_loss, trimmed_mean, widen_interval
from swarmvar.consensus.intervals import MAD_TO_SD, _spread
from swarmvar.consensus.partition import z_value


def test_mad_constant_and_z_value_are_scipys() -> None:
    assert MAD_TO_SD == pytest.approx(1.0 / stats.norm.ppf(0.75), rel=1e-15)
    for mass in (0.5, 0.8, 0.9, 0.95, 0.99):
        assert z_value(mass) == pytest.approx(stats.norm.ppf(0.5 + mass / 2), rel=1e-12)


@pytest.mark.parametrize("m", [3, 4, 5, 6, 7, 10, 21])
def test_spread_is_scipys_normal_scaled_mad(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(20):
        points = (0.02 + 0.003 * rng.standard_t(3, m)).tolist()
        want = stats.median_abs_deviation(points, scale="normal")
        assert _spread(points, [0.001] * m, 1.645) == pytest.approx(want, rel=1e-13)


def test_spread_of_normal_points_estimates_their_sd() -> None:
    # known truth: many agents' points N(0.02, 0.004^2); the scaled MAD is consistent
    points = (0.02 + 0.004 * np.random.default_rng(1).standard_normal(20_001)).tolist()
    assert _spread(points, [0.0] * len(points), 1.645) == pytest.approx(0.004, rel=0.03)
    # fewer than 3 agents: the mean posterior sd, half-width / z
    assert _spread([0.02, 0.03], [0.00329, 0.00658], 1.645) == pytest.approx(0.003, rel=1e-3)


@pytest.mark.parametrize(("n", "f"), [(5, 1), (7, 2), (9, 3), (10, 2), (31, 7)])
def test_trimmed_mean_and_median_are_scipys_and_numpys(n: int, f: int) -> None:
    rng = np.random.default_rng(n + f)
    for _ in range(10):
        x = rng.lognormal(-4, 0.5, n)
        # trim_mean cuts int(proportion * n) per side: (f + 1/2) / n cuts exactly f
        assert trimmed_mean(x, f) == pytest.approx(stats.trim_mean(x, (f + 0.5) / n), rel=1e-13)
        assert median(x, f) == pytest.approx(float(np.median(x)), rel=1e-15)


@pytest.mark.parametrize(("m", "n"), [(3, 7), (5, 7), (2, 10), (9, 10)])
def test_widening_covers_the_full_swarm_consensus_with_its_mass(m: int, n: int) -> None:
    rng = np.random.default_rng(10 * m + n)
    tau, mass, reps = 0.004, 0.90, 4000
    points = 0.03 + tau * rng.standard_normal((reps, n))
    covered = 0
    for row in points:
        present = float(row[:m].mean())
        lo, hi = widen_interval(present, (present, present), available=m, total=n,
                                spread=tau, mass=mass)
        covered += lo <= float(row.mean()) <= hi
    # Var(mean_n - mean_m) = tau^2 (1/m - 1/n) exactly: the coverage is the mass
    assert covered / reps == pytest.approx(mass, abs=3.3 * math.sqrt(mass * (1 - mass) / reps))


@pytest.mark.parametrize(("kappa", "days"), [(0.02, 1.0), (0.05, 4.0), (0.03, 10.0)])
def test_staleness_widening_matches_a_lognormal_random_walk(kappa: float, days: float) -> None:
    point, mass = 0.025, 0.90
    lo, hi = widen_interval(point, (point, point), available=5, total=5, spread=0.0,
                            staleness_days=days, drift=kappa, mass=mass)
    s = kappa * math.sqrt(days)  # sd of log VaR after `days`
    # the widening is the first-order (delta-method) band: z sd of VaR * exp(s Z) ~ VaR s Z
    assert hi - point == pytest.approx(stats.norm.ppf(0.95) * kappa * point * math.sqrt(days))
    # exact coverage of VaR * exp(s Z) by the interval: near the mass for small s
    exact = stats.norm.cdf(math.log(hi / point) / s) - stats.norm.cdf(math.log(lo / point) / s)
    assert exact == pytest.approx(mass, abs=0.01 * s)  # second order in s


def fz0_published(y: float, v: float, e: float, tau: float) -> float:
    """Patton, Ziegel & Chen (2019): return ``y``, quantile ``v``, ES ``e < 0`` at level tau."""
    return -1.0 / (tau * e) * (1.0 if y <= v else 0.0) * (v - y) + v / e + math.log(-e) - 1.0


def test_agent_scores_are_the_published_fz0_and_the_check_function() -> None:
    rng = np.random.default_rng(12)
    days, n, alpha = 300, 3, 0.975
    r = 0.012 * rng.standard_t(4, days)
    var = (0.02 + 0.01 * rng.random((days, n))) * np.array([0.8, 1.0, 1.3])
    es = var * (1.1 + 0.4 * rng.random((days, n)))
    got = fz0_loss(r, var, es, alpha)
    pin = pinball_loss(r, var, alpha)
    assert got.shape == pin.shape == (days, n)
    for t in range(days):
        for i in range(n):
            want = fz0_published(r[t], -var[t, i], -es[t, i], 1 - alpha)
            assert got[t, i] == pytest.approx(want, rel=1e-13, abs=1e-13)
            u = -r[t] - var[t, i]  # loss minus VaR
            assert pin[t, i] == pytest.approx(u * (alpha - (1.0 if u < 0 else 0.0)), abs=1e-15)
    np.testing.assert_array_equal(fz0_loss(r, var[:, 0], es[:, 0], alpha), got[:, 0])
