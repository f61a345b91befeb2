"""Simulation designs: the stated VaR is the true quantile; change-point detection on breaks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.emergence import Design, simulate, volatility_breaks
from swarmvar.errors import InvalidParameter


@pytest.mark.parametrize("design", list(Design))
def test_true_var_is_the_conditional_quantile(design: Design) -> None:
    s = simulate(design, 20_000, seed=5)
    u = -s.returns / s.var[0.99]  # loss in units of the true VaR: exceeds 1 with prob. 1%
    hits = (u > 1).mean()
    assert abs(hits - 0.01) < 3 * np.sqrt(0.01 * 0.99 / u.size)
    # ES: the mean loss beyond VaR, in units of the true ES
    beyond = -s.returns > s.var[0.975]
    assert np.mean(-s.returns[beyond] / s.es[0.975][beyond]) == pytest.approx(1.0, abs=0.06)
    assert np.all(s.es[0.99] > s.var[0.99])


def test_iid_t4_var_matches_scipy() -> None:
    s = simulate(Design.IID_T4, 50, seed=0)
    assert s.var[0.99][0] == pytest.approx(0.012 * stats.t.ppf(0.99, 4) / np.sqrt(2))


def test_bad_designs_raise() -> None:
    with pytest.raises(InvalidParameter):
        simulate("gjr", 100, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        simulate(Design.GJR_T, 5, seed=0)
    with pytest.raises(InvalidParameter):
        volatility_breaks(-1.0)


def test_a_tripling_of_volatility_is_found_within_days() -> None:
    study = volatility_breaks(3.0, reps=8, seed=1)
    assert study.median_delay <= 5 and study.missed <= 1


@pytest.mark.slow
def test_stated_detection_delays_and_false_alarms() -> None:
    """The figures docs/emergence.md states (40 replications each)."""
    x3 = volatility_breaks(3.0, reps=40, seed=11)
    x2 = volatility_breaks(2.0, reps=40, seed=12)
    t5 = volatility_breaks(3.0, df=5.0, reps=40, seed=13)
    assert x3.median_delay <= 5 and x3.missed <= 4
    assert x2.median_delay <= 10 and x2.missed <= 6
    assert x3.false_alarms_per_1000 <= 3.0 and x2.false_alarms_per_1000 <= 3.0
    assert t5.median_delay <= 6 and t5.false_alarms_per_1000 <= 10.0
