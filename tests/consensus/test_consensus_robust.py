"""Robust aggregators: brute-force references, tolerance bounds, Byzantine property tests."""

from __future__ import annotations

import itertools
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from swarmvar.consensus import (
    Aggregator,
    geometric_median,
    krum,
    krum_scores,
    median,
    multi_krum,
    robust_aggregate,
    trimmed_mean,
)
from swarmvar.errors import InvalidParameter, NotEnoughAgents

# --- brute-force references on small cases --------------------------------------


def brute_trimmed_mean(x: list[float], f: int) -> float:
    """Mean of the n - 2f values left when some f lowest and f highest are removed (by search)."""
    n = len(x)
    best = None
    for low in itertools.combinations(range(n), f):
        rest = [i for i in range(n) if i not in low]
        for high in itertools.combinations(rest, f):
            kept = [i for i in rest if i not in high]
            if all(x[i] <= x[j] for i in low for j in kept) and all(
                x[j] >= x[k] for j in high for k in kept
            ):
                best = statistics.fmean(x[i] for i in kept)
    assert best is not None
    return best


def brute_krum(x: np.ndarray, f: int) -> int:
    """Krum by definition: min over points of min over (n-f-2)-subsets of neighbours of the sum."""
    n = x.shape[0]
    scores = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        scores.append(
            min(
                sum(float(np.sum((x[i] - x[j]) ** 2)) for j in subset)
                for subset in itertools.combinations(others, n - f - 2)
            )
        )
    return int(np.argmin(scores))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8), st.integers(0, 3))
def test_median_and_trimmed_mean_match_brute_force(x, f):
    if len(x) < 2 * f + 1:
        with pytest.raises(NotEnoughAgents):
            trimmed_mean(x, f)
        return
    assert median(x, f) == pytest.approx(statistics.median(x), rel=1e-12, abs=1e-9)
    assert trimmed_mean(x, f) == pytest.approx(brute_trimmed_mean(x, f), rel=1e-12, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(5, 8).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.lists(st.floats(-100, 100), min_size=2, max_size=2), min_size=n, max_size=n
            ),
            st.integers(0, (n - 3) // 2),
        )
    )
)
def test_krum_matches_brute_force(case):
    rows, f = case
    x = np.array(rows)
    scores = krum_scores(x, f)
    # ties: the brute force picks the first minimum too, but scores may tie to rounding
    assert scores[brute_krum(x, f)] == pytest.approx(scores.min(), rel=1e-12, abs=1e-12)
    assert scores[krum(x, f)] == scores.min()


def test_krum_known_case():
    x = np.array([[0.0], [1.0], [2.0], [4.0], [100.0]])
    # f = 1: score over n - f - 2 = 2 nearest neighbours (squared distances)
    assert krum_scores(x, 1).tolist() == [5.0, 2.0, 5.0, 13.0, 96.0**2 + 98.0**2]
    assert krum(x, 1) == 1
    assert multi_krum(x, 1).tolist() == [1, 0, 2, 3]
    assert multi_krum(x, 1, m=2).tolist() == [1, 0]


def test_geometric_median_against_scipy_minimizer():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(15, 3))
    gm = geometric_median(x)
    ref = optimize.minimize(
        lambda y: np.linalg.norm(x - y, axis=1).sum(),
        x.mean(axis=0),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    ).x
    np.testing.assert_allclose(gm, ref, atol=1e-6)
    # on a line the geometric median is the median
    assert geometric_median([[1.0], [2.0], [10.0]])[0] == pytest.approx(2.0)


def test_tolerance_bounds():
    with pytest.raises(NotEnoughAgents, match="n >= 5"):
        median([1.0, 2.0, 3.0, 4.0], 2)
    with pytest.raises(NotEnoughAgents, match="n >= 7"):
        krum(np.zeros((6, 1)), 2)
    with pytest.raises(NotEnoughAgents):
        geometric_median(np.zeros((4, 2)), 2)
    with pytest.raises(InvalidParameter):
        robust_aggregate(np.zeros((4, 1)), Aggregator.MEAN, 1)
    with pytest.raises(InvalidParameter):
        median([1.0, float("nan"), 2.0])
    assert Aggregator.KRUM.min_agents(2) == 7 and Aggregator.TRIMMED_MEAN.min_agents(2) == 5


def test_weights_apply_to_trimmed_mean_survivors():
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    w = [1.0, 1.0, 3.0, 0.0, 1.0]
    # drop 1.0 and 100.0; survivors 2, 3, 4 with weights 1, 3, 0
    assert trimmed_mean(x, 1, w) == pytest.approx((2 + 9) / 4)
    agg = robust_aggregate(np.array(x)[:, None], Aggregator.TRIMMED_MEAN, 1, w)
    np.testing.assert_allclose(agg.weights[:, 0], [0, 0.25, 0.75, 0, 0])


# --- Byzantine properties ------------------------------------------------------------

honest_values = st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=12)


@st.composite
def byzantine_case(draw):
    honest = draw(honest_values)
    h = len(honest)
    f_max = (h - 1) // 2  # n = h + f >= 3f + 1  <=>  f <= (h - 1) / 2
    f = draw(st.integers(0, f_max))
    lo, hi = min(honest), max(honest)
    width = hi - lo
    attack = draw(st.sampled_from(["extreme", "cluster", "just_outside", "sign_flip", "mixed"]))
    if attack == "extreme":
        bad = [draw(st.sampled_from([1e300, -1e300])) for _ in range(f)]
    elif attack == "cluster":
        bad = [draw(st.sampled_from([hi + 10.0 * (width + 1), lo - 10.0 * (width + 1)]))] * f
    elif attack == "just_outside":
        eps = max(abs(hi), abs(lo), 1.0) * 1e-9
        bad = [hi + eps if i % 2 else lo - eps for i in range(f)]
    elif attack == "sign_flip":
        bad = [-v for v in draw(st.lists(st.sampled_from(honest), min_size=f, max_size=f))]
    else:
        bad = draw(st.lists(st.floats(-1e300, 1e300), min_size=f, max_size=f))
    order = draw(st.permutations(list(range(h + f))))
    values = [(honest + bad)[i] for i in order]
    return honest, values, f


@settings(max_examples=300, deadline=None)
@given(byzantine_case())
def test_median_and_trimmed_mean_stay_in_honest_range(case):
    honest, values, f = case
    lo, hi = min(honest), max(honest)
    assert lo <= median(values, f) <= hi
    assert lo <= trimmed_mean(values, f) <= hi


@settings(max_examples=100, deadline=None)
@given(byzantine_case())
def test_geometric_median_within_its_breakdown_bound(case):
    honest, values, f = case
    z = float(np.mean(honest))
    r = max(abs(v - z) for v in honest)
    n = len(values)
    gm = float(geometric_median(np.array(values)[:, None], f)[0])
    assert abs(gm - z) <= 2 * (n - f) / (n - 2 * f) * r + 1e-9 * max(1.0, abs(z), r)


@settings(max_examples=100, deadline=None)
@given(byzantine_case())
def test_krum_picks_inside_honest_hull_when_adversaries_are_far(case):
    honest, values, f = case
    n = len(values)
    if n < 2 * f + 3 or f == 0:
        return
    lo, hi = min(honest), max(honest)
    far = [v for v in values if v > hi + 1e6 * (hi - lo + 1) or v < lo - 1e6 * (hi - lo + 1)]
    if len(far) != f:  # property stated only for far-away adversaries
        return
    pick = values[krum(np.array(values)[:, None], f)]
    assert lo <= pick <= hi


@settings(max_examples=200, deadline=None)
@given(st.integers(3, 16), st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_small_python_path_equals_numpy_bit_for_bit(n, seed, ties, zero_weight):
    """robust_aggregate's Python path for a beat's few agents is the numpy path's bits."""
    from swarmvar.consensus.robust import _combine, _trimmed_weights

    rng = np.random.default_rng(seed)
    x = rng.lognormal(-4, 1.0, (n, 6))
    if ties:
        x = np.round(x, 3)
    w = rng.dirichlet(np.ones(n))
    if zero_weight:
        w[rng.integers(n)] = 0.0
    for aggregator, f in ((Aggregator.TRIMMED_MEAN, (n - 1) // 2), (Aggregator.TRIMMED_MEAN, 1),
                          (Aggregator.MEAN, 0)):
        got = robust_aggregate(x, aggregator, f, w)
        trim = f if aggregator is Aggregator.TRIMMED_MEAN else 0
        ref = _trimmed_weights(x, trim, w)
        np.testing.assert_array_equal(got.weights, ref)
        np.testing.assert_array_equal(got.value, _combine(x, ref))


# --- intervals: the agents' disagreement by the law of total variance ------------------------

Z90 = 1.6448536269514722


def test_disagreement_bounds_is_the_law_of_total_variance():
    from swarmvar.consensus.robust import disagreement_bounds

    # two agents at -1 and +1 around the point 0, each with posterior sd s: total sd sqrt(s^2 + 1)
    s = 0.5
    lo, hi = disagreement_bounds(0.0, -Z90 * s, Z90 * s, [-1.0, 1.0], [1.0, 1.0], 0, Z90)
    assert hi == pytest.approx(Z90 * np.sqrt(s * s + 1.0), rel=1e-14)
    assert lo == pytest.approx(-hi, rel=1e-14)
    # weights 3:1 around their weighted mean 0.5: B = 0.75 * 0.25 + 0.25 * 2.25 = 0.75
    lo, hi = disagreement_bounds(0.5, 0.5, 0.5, [0.0, 2.0], [3.0, 1.0], 0, Z90)
    assert hi - 0.5 == pytest.approx(Z90 * np.sqrt(0.75), rel=1e-14)
    # agents that agree leave the interval as it was; a lower bound >= 0 stays >= 0
    assert disagreement_bounds(0.02, 0.015, 0.03, [0.02] * 5, [0.2] * 5, 1, Z90) == (0.015, 0.03)
    assert disagreement_bounds(0.001, 0.0, 0.002, [0.001, 0.05, 0.0], [1.0] * 3, 0, Z90)[0] == 0.0
    # zero weights everywhere: equal weights
    assert (disagreement_bounds(0.5, 0.5, 0.5, [0.0, 1.0], [0.0, 0.0], 0, Z90)
            == disagreement_bounds(0.5, 0.5, 0.5, [0.0, 1.0], [1.0, 1.0], 0, Z90))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.lists(st.floats(-1e12, 1e12), min_size=3, max_size=3),
       st.lists(st.floats(0, 1e6), min_size=3, max_size=3))
def test_disagreement_bounds_byzantine_rows_widen_by_at_most_z_times_the_honest_range(
        f, seed, bad_values, bad_weights):
    """f bad rows, any values and any weight: each side grows by at most z x (honest range)."""
    from swarmvar.consensus.robust import disagreement_bounds

    rng = np.random.default_rng(seed)
    honest = rng.lognormal(-3.8, 0.4, 2 * f + 1 + int(rng.integers(0, 3))).tolist()
    points = honest + bad_values[:f]
    weights = rng.random(len(honest)).tolist() + bad_weights[:f]
    point = float(rng.uniform(min(honest), max(honest)))  # a robust rule's point: honest range
    side = float(rng.uniform(0, 0.01))
    lo, hi = disagreement_bounds(point, point - side, point + side, points, weights, f, Z90)
    reach = Z90 * (max(honest) - min(honest))
    assert hi <= point + side + reach * (1 + 1e-12) + 1e-300
    assert lo >= point - side - reach * (1 + 1e-12) - 1e-300
    assert lo <= point - side * (1 - 1e-12) or lo == 0.0
    assert hi >= point + side * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 9), st.integers(0, 2**32 - 1), st.booleans())
def test_disagreement_bounds_of_many_days_equal_each_day_bit_for_bit(m, seed, extreme):
    from swarmvar.consensus.robust import disagreement_bounds, disagreement_bounds_days

    rng = np.random.default_rng(seed)
    days, f = 50, (m - 1) // 2
    pts = rng.lognormal(-3.8, 0.5, (days, m))
    if extreme:
        pts[::3, 0] = 1e150
        pts[::4] = pts[::4, :1]  # all agree
    w = rng.random((days, m))
    w[::5] = 0.0
    p = np.median(pts, axis=1)
    lo, hi = p - rng.uniform(0, 0.01, days), p + rng.uniform(0, 0.01, days)
    lo[::7] = -0.001
    low, high = disagreement_bounds_days(p, lo, hi, pts, w, f, Z90)
    for t in range(days):
        assert disagreement_bounds(float(p[t]), float(lo[t]), float(hi[t]), pts[t].tolist(),
                                   w[t].tolist(), f, Z90) == (low[t], high[t])


def test_disagreement_bounds_refuses_an_overflowing_interval():
    from swarmvar.consensus.robust import disagreement_bounds, disagreement_bounds_days

    with pytest.raises(InvalidParameter, match="overflows"):
        disagreement_bounds(0.0, 0.0, 0.0, [0.0, 1.7e308, 1.7e308], [1.0] * 3, 1, Z90)
    with pytest.raises(InvalidParameter, match="overflows"):
        disagreement_bounds_days(np.zeros(1), np.zeros(1), np.zeros(1),
                                 np.array([[0.0, 1.7e308, 1.7e308]]), np.ones((1, 3)), 1, Z90)


# --- weight-trimmed mean: trims f/n of the weight mass per tail, clipped to the order stats ---


def wtm(values, f, weights=None):
    """The weight-trimmed mean as an Aggregate (value and each row's weight)."""
    from swarmvar.consensus.robust import Aggregate, _combine, weight_trimmed_weights

    x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    out = weight_trimmed_weights(x, f, weights)
    return Aggregate(value=_combine(x, out), weights=out)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_weight_trimmed_mean_with_equal_weights_is_the_trimmed_mean(f, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 2 * f + 1 + int(rng.integers(0, 5)))
    agg = wtm(x, f)
    assert agg.value[0] == pytest.approx(trimmed_mean(x, f), rel=1e-12, abs=1e-12)
    assert np.sum(agg.weights[:, 0] > 0) == x.size - 2 * f  # the same rows trimmed


def test_weight_trimmed_mean_keeps_a_heavy_edge_agent_up_to_the_clip():
    x, w = [1.0, 2.0, 3.0, 4.0, 4.5], [0.1, 0.1, 0.1, 0.1, 0.6]
    # the count rule drops the heavy agent at 4.5; the weight rule keeps 0.6 - 0.2 of it:
    # (3 * 0.1 + 4 * 0.1 + 4.5 * 0.4) / 0.6 = 4.17, clipped to the 2nd largest value, 4
    agg = wtm(x, 1, w)
    assert trimmed_mean(x, 1, w) == pytest.approx(3.0)
    assert agg.value[0] == 4.0 and agg.weights[3, 0] == 1.0
    # unclipped: a heavy agent inside the order statistics keeps weight 0.6 - 0.2 at the top
    agg = wtm([1.0, 2.0, 3.0, 3.2, 3.3], 1, [0.1, 0.1, 0.1, 0.5, 0.2])
    assert agg.weights[:, 0] == pytest.approx([0.0, 0.0, 0.1 / 0.6, 0.5 / 0.6, 0.0])
    assert agg.value[0] == pytest.approx((0.3 + 1.6) / 0.6)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.lists(st.floats(-1e12, 1e12), min_size=3, max_size=3),
       st.lists(st.floats(0, 1e6), min_size=3, max_size=3), st.integers(1, 3))
def test_weight_trimmed_mean_stays_in_the_honest_range_whatever_the_bad_weights(
        f, seed, bad_values, bad_weights, d):
    """f Byzantine rows, any values, any weights: every coordinate inside the honest range."""
    rng = np.random.default_rng(seed)
    honest = rng.lognormal(-3.8, 0.4, (2 * f + 1 + int(rng.integers(0, 3)), d))
    x = np.vstack([honest, np.array(bad_values[:f])[:, None].repeat(d, axis=1)])
    w = np.concatenate([rng.random(honest.shape[0]), bad_weights[:f]])
    agg = wtm(x, f, w)
    assert np.all(agg.value >= honest.min(axis=0)) and np.all(agg.value <= honest.max(axis=0))
    np.testing.assert_allclose(agg.weights.sum(axis=0), 1.0)
    np.testing.assert_allclose(agg.value, np.sum(agg.weights * np.where(agg.weights > 0, x, 0),
                                                 axis=0), rtol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1), st.booleans())
def test_weight_trimmed_mean_drops_outlying_bad_rows_lighter_than_the_trim_mass(f, seed, up):
    """Bad rows beyond the honest range with total weight <= f/n get no weight at all."""
    rng = np.random.default_rng(seed)
    honest = rng.lognormal(-3.8, 0.4, 2 * f + 1 + int(rng.integers(0, 4)))
    n = honest.size + f
    bad = np.full(f, 1e6 if up else -1e6) * rng.uniform(1, 2, f)
    share = rng.uniform(0, f / n)  # the bad rows' total weight, at most the trim mass
    w = np.concatenate([rng.dirichlet(np.ones(honest.size)) * (1 - share),
                        rng.dirichlet(np.ones(f)) * share])
    agg = wtm(np.concatenate([honest, bad]), f, w)
    assert np.all(agg.weights[honest.size:, 0] == 0.0)
    assert honest.min() <= agg.value[0] <= honest.max()


def test_weight_trimmed_mean_needs_2f_plus_1_agents():
    with pytest.raises(NotEnoughAgents):
        wtm([1.0, 2.0, 3.0, 4.0], 2)
