"""Euler, marginal and incremental VaR/ES from scenarios, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.errors import InvalidParameter
from swarmvar.models.attribution import euler, incremental, tail_stats
from swarmvar.models.joint_base import Scenarios

SIGMA = np.array([[4.0, 1.2, -0.6], [1.2, 2.25, 0.3], [-0.6, 0.3, 1.0]]) * 1e-4
P = np.array([6e5, -4e5, 3e5])


def _normal_scenarios(draws: int = 20, paths: int = 20000, seed: int = 0) -> Scenarios:
    """Scenarios whose book loss is exactly linear normal: returns log1p(x), x ~ N(0, SIGMA)."""
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(np.zeros(3), SIGMA, size=(draws, paths))
    return Scenarios(np.log1p(x), np.full(draws, 1 / draws), None, 1)


def _analytic(alpha: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    sd = float(np.sqrt(P @ SIGMA @ P))
    z = stats.norm.ppf(alpha)
    esf = stats.norm.pdf(z) / (1 - alpha)
    beta = P * (SIGMA @ P) / sd
    return z * sd, esf * sd, z * beta, esf * beta


@pytest.mark.parametrize("alpha", [0.99, 0.975])
def test_euler_matches_the_multivariate_normal_closed_form(alpha: float) -> None:
    scen = _normal_scenarios()
    (att,) = euler(scen, P, (alpha,), assets=("A", "B", "C"))
    var, es, cvar, ces = _analytic(alpha)
    assert att.var == pytest.approx(var, rel=0.02)
    assert att.es == pytest.approx(es, rel=0.02)
    # components within 4 stated standard errors (and 3% of the total)
    assert np.all(np.abs(att.component_es - ces) <= 4 * att.component_es_se + 0.03 * es)
    assert np.all(np.abs(att.component_var - cvar) <= 4 * att.component_var_se + 0.03 * var)
    # the stated error is honest: same order as the observed error, not 10x smaller
    assert np.all(att.component_es_se > 0) and np.all(att.component_es_se < 0.05 * es)
    # contributions sum to the totals exactly
    assert att.component_var.sum() == pytest.approx(att.var, rel=1e-10)
    assert att.component_es.sum() == pytest.approx(att.es, rel=1e-10)
    np.testing.assert_allclose(att.component_es, P * att.marginal_es)
    assert [name for name, _ in att.top(3)] == list(np.array(["A", "B", "C"])[np.argsort(-ces)])


def test_credible_intervals_cover_the_draws_and_flip_for_shorts() -> None:
    (att,) = euler(_normal_scenarios(draws=40, paths=4000), P, 0.99)
    lo, hi = att.component_es_interval[:, 0], att.component_es_interval[:, 1]
    assert np.all(lo <= hi)
    assert np.all((lo <= att.component_es + 3 * att.component_es_se)
                  & (att.component_es - 3 * att.component_es_se <= hi))


def test_dollar_neutral_book_of_two_identical_assets_has_zero_risk() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(0, 0.02, (10, 500, 1))
    scen = Scenarios(np.concatenate([r, r], axis=2), np.full(10, 0.1), None, 1)
    (att,) = euler(scen, np.array([1e6, -1e6]), 0.99)
    # zero up to the rounding of the product (1e6 x 2% moves, opposite signs)
    assert abs(att.var) < 1e-6 and abs(att.es) < 1e-6
    np.testing.assert_allclose(att.component_es, [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(att.component_var, [0.0, 0.0], atol=1e-6)
    # while either leg alone carries risk
    (leg,) = euler(scen, np.array([1e6, 0.0]), 0.99)
    assert leg.var > 3e4


def test_weighted_scenarios_match_repeated_ones() -> None:
    """A scenario with weight 2/K is the same as that scenario twice."""
    rng = np.random.default_rng(2)
    loss = rng.normal(size=(1, 7))
    unit = rng.normal(size=(1, 7, 2))
    w = np.array([[2, 1, 1, 1, 1, 1, 1]], float) / 8
    (a,) = tail_stats(loss, unit, w, (0.75,), (0.0,))
    (b,) = tail_stats(np.concatenate([loss[:, :1], loss], 1),
                      np.concatenate([unit[:, :1], unit], 1), None, (0.75,), (0.0,))
    np.testing.assert_allclose([a.var, a.es], [b.var, b.es])
    np.testing.assert_allclose(a.mes, b.mes)


def test_es_is_the_rockafellar_uryasev_value_with_atoms() -> None:
    loss = np.array([[3.0, 1.0, 2.0, 5.0, 4.0]])
    (s,) = tail_stats(loss, loss[:, :, None], None, (0.7,), (0.0,))
    # VaR = 4 (left-continuous 70% quantile of 1..5: F(3) = 0.6 < 0.7 <= F(4) = 0.8);
    # ES = VaR + E[(L - VaR)+] / (1 - alpha), the atom at 4 counted for 0.1 of its 0.2
    assert s.var[0] == 4.0
    assert s.es[0] == pytest.approx(4.0 + (1 / 5) / 0.3)
    assert s.es[0] == pytest.approx((5 * 0.2 + 4 * 0.1) / 0.3)
    assert s.mes[0, 0] == pytest.approx(s.es[0])


def test_incremental_of_a_trade_against_direct_recomputation() -> None:
    scen = _normal_scenarios(draws=10, paths=5000)
    d = np.array([1e5, 0.0, 0.0])
    (inc,) = incremental(scen, P, d, 0.99)
    (before,) = euler(scen, P, 0.99)
    (after,) = euler(scen, P + d, 0.99)
    assert inc.var == pytest.approx(after.var - before.var, rel=1e-9)
    assert inc.es == pytest.approx(after.es - before.es, rel=1e-9)
    var0, es0, _, _ = _analytic(0.99)
    sd1 = float(np.sqrt((P + d) @ SIGMA @ (P + d)))
    assert inc.es == pytest.approx(stats.norm.pdf(stats.norm.ppf(0.99)) / 0.01 * sd1 - es0,
                                   abs=4 * inc.es_se + 0.05 * abs(inc.es))
    (zero,) = incremental(scen, P, np.zeros(3), 0.99)
    assert zero.var == 0 and zero.es == 0


def test_bad_positions_are_refused() -> None:
    scen = _normal_scenarios(draws=2, paths=100)
    with pytest.raises(InvalidParameter):
        euler(scen, np.array([1.0, np.nan, 2.0]), 0.99)
    with pytest.raises(InvalidParameter):
        euler(scen, np.ones(2), 0.99)
    with pytest.raises(InvalidParameter):
        incremental(scen, P, np.ones(4), 0.99)
