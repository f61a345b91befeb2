"""Simulation designs: the stated VaR is the true quantile; change-point detection on breaks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.emergence import (
    Design,
    normal_mixture_var_es,
    regime_filter,
    simulate,
    volatility_breaks,
)
from swarmvar.emergence.simulate import REGIME_SD, REGIME_STAY
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


def _path_enumeration(r: np.ndarray, sd: tuple[float, ...], stay: tuple[float, ...],
                      ) -> np.ndarray:
    """P(s_t | r_0..r_{t-1}) by summing over every state path s_0..s_t (2^(t+1) paths)."""
    import itertools

    dens = stats.norm.pdf(r[:, None], scale=np.array(sd)[None, :])  # (T, 2)
    out = np.empty((r.size, 2))
    for t in range(r.size):
        mass = np.zeros(2)
        for path in itertools.product((0, 1), repeat=t + 1):
            if path[0] != 0:  # day 0 is calm
                continue
            p = 1.0
            for u in range(1, t + 1):
                p *= stay[path[u - 1]] if path[u] == path[u - 1] else 1 - stay[path[u - 1]]
            for u in range(t):  # the returns seen before day t
                p *= dens[u, path[u]]
            mass[path[t]] += p
        out[t] = mass / mass.sum()
    return out


def test_regime_filter_equals_the_sum_over_state_paths() -> None:
    s = simulate(Design.REGIME_SWITCH, 10, seed=3)
    r = s.returns.copy()
    r[4] = 0.06  # a 3-sd day of the turbulent state: the probabilities must move
    got = regime_filter(r)
    want = _path_enumeration(r, REGIME_SD, REGIME_STAY)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    assert got[5, 1] > 0.9
    np.testing.assert_allclose(simulate(Design.REGIME_SWITCH, 10, seed=3).high_state_prob,
                               _path_enumeration(s.returns, REGIME_SD, REGIME_STAY)[:, 1],
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("alpha", [0.99, 0.975])
@pytest.mark.parametrize("p_high", [0.0, 0.07, 0.6])
def test_mixture_var_es_against_monte_carlo(alpha: float, p_high: float) -> None:
    """r_t drawn state-first from the predicted probabilities: its loss quantile and tail mean."""
    rng = np.random.default_rng(11)
    n = 1_000_000
    state = rng.random(n) < p_high
    loss = np.where(state, REGIME_SD[1], REGIME_SD[0]) * rng.standard_normal(n)
    var, es = normal_mixture_var_es(np.array([[1 - p_high, p_high]]), REGIME_SD, alpha)
    tail = 1 - alpha
    # the MC quantile's sd is sqrt(a(1-a)/n)/density: compare the exceedance rate instead
    assert abs(np.mean(loss > var[0]) - tail) < 4 * np.sqrt(tail * alpha / n)
    q = np.quantile(loss, alpha)
    assert es[0] == pytest.approx(np.mean(loss[loss > q]), rel=0.02)
    mix_cdf = (1 - p_high) * stats.norm.cdf(var[0] / REGIME_SD[0]) + p_high * stats.norm.cdf(
        var[0] / REGIME_SD[1])
    assert mix_cdf == pytest.approx(alpha, abs=1e-13)


def test_regime_switch_keeps_the_state_oracle() -> None:
    s = simulate(Design.REGIME_SWITCH, 300, seed=2)
    z = stats.norm.ppf(0.99)
    assert set(np.round(s.oracle_var[0.99] / z, 12)) <= {0.007, 0.02}
    assert s.high_state_prob is not None and s.high_state_prob[0] == 0.0
    # the conditional VaR lies between the two states' and differs from the oracle's
    assert np.all((s.var[0.99] >= 0.007 * z - 1e-15) & (s.var[0.99] <= 0.02 * z + 1e-15))
    assert not np.allclose(s.var[0.99], s.oracle_var[0.99])
    g = simulate(Design.GJR_T, 50, seed=0)
    assert g.oracle_var is g.var and g.high_state_prob is None


def test_mixture_var_below_the_median_and_a_filter_on_an_impossible_day() -> None:
    """Review: alpha < 0.5 inverted the bisection's bracket; a return no state that is still
    possible could produce made the filter divide 0 by 0."""
    import numpy as np
    from scipy import stats

    from swarmvar.emergence.simulate import normal_mixture_var_es, regime_filter

    probs = np.array([[0.3, 0.7]])
    for alpha in (0.2, 0.5, 0.8):
        v, _ = normal_mixture_var_es(probs, (0.01, 0.02), alpha)
        cdf = 0.3 * stats.norm.cdf(v[0] / 0.01) + 0.7 * stats.norm.cdf(v[0] / 0.02)
        assert abs(cdf - alpha) < 1e-12
    # state 0 absorbing and certain; a 60-sd return makes its relative likelihood underflow
    pred = regime_filter(np.array([0.0, 0.6, 0.0]), (0.01, 0.02), (1.0, 0.5), (1.0, 0.0))
    assert np.all(np.isfinite(pred)) and np.allclose(pred, [[1.0, 0.0]] * 3)
