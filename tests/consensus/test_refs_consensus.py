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
* The staleness term ``(kappa VaR)^2 d`` is the delta-method variance of a
  VaR whose log moves as a random walk of volatility ``kappa`` per
  square-root day; against the lognormal's exact coverage (closed form).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from swarmvar.consensus import median, trimmed_mean, widen_interval
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
    assert hi - point == pytest.approx(stats.norm.ppf(0.95) * kappa * point * math.sqrt(days))
    # exact coverage of VaR * exp(s Z) by the interval: near the mass for small s
    exact = stats.norm.cdf(math.log(hi / point) / s) - stats.norm.cdf(math.log(lo / point) / s)
    assert exact == pytest.approx(mass, abs=0.01 * s)  # second order in s
