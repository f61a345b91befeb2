"""Coverage tests against likelihood ratios computed a second way (binomial pmfs, loops)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from swarmvar.errors import InvalidParameter, SwarmVarError
from swarmvar.validation import (
    Zone,
    christoffersen,
    conditional_coverage,
    kupiec,
    traffic_light,
    transition_counts,
)


def ref_kupiec(hits: list[int], alpha: float) -> float:
    n, x = len(hits), sum(hits)
    # binomial coefficients cancel in the ratio, so this is the same LR written another way
    return 2.0 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, 1 - alpha))


def ref_counts(hits: list[int]) -> dict[tuple[int, int], int]:
    counts = {(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 0}
    for prev, cur in zip(hits[:-1], hits[1:], strict=True):
        counts[(prev, cur)] += 1
    return counts


def ref_christoffersen(hits: list[int]) -> float:
    c = ref_counts(hits)
    n0, n1 = c[(0, 0)] + c[(0, 1)], c[(1, 0)] + c[(1, 1)]
    pi = (c[(0, 1)] + c[(1, 1)]) / (n0 + n1)
    pi0 = c[(0, 1)] / n0 if n0 else 0.5
    pi1 = c[(1, 1)] / n1 if n1 else 0.5
    alt = stats.binom.logpmf(c[(0, 1)], n0, pi0) + stats.binom.logpmf(c[(1, 1)], n1, pi1)
    null = stats.binom.logpmf(c[(0, 1)], n0, pi) + stats.binom.logpmf(c[(1, 1)], n1, pi)
    return 2.0 * (alt - null)


EDGES = {
    "no breach": [0] * 250,
    "every day": [1] * 250,
    "first day only": [1] + [0] * 249,
    "last day only": [0] * 249 + [1],
    "first and last": [1] + [0] * 248 + [1],
    "consecutive pair": [0] * 100 + [1, 1] + [0] * 148,
    "run of five at the end": [0] * 245 + [1] * 5,
    "alternating": [0, 1] * 125,
    "clustered and isolated": (
        [0] * 50 + [1, 1, 1] + [0] * 60 + [1] + [0] * 100 + [1, 0, 1] + [0] * 33
    ),
    "two days": [1, 0],
}


@pytest.mark.parametrize("name", list(EDGES))
@pytest.mark.parametrize("alpha", [0.99, 0.975, 0.95])
def test_edges_agree_with_the_binomial_reference(name: str, alpha: float) -> None:
    hits = EDGES[name]
    k = kupiec(np.array(hits, dtype=bool), alpha)
    c = christoffersen(hits)
    cc = conditional_coverage(hits, alpha)
    assert k.statistic == pytest.approx(ref_kupiec(hits, alpha), abs=1e-10)
    if not 0 < sum(hits[1:]) < len(hits) - 1:  # no hit (or only hits) after day 1: undefined
        assert np.isnan(c.pvalue) and np.isnan(cc.pvalue) and c.passed() is None
        assert np.isnan(c.statistic) and np.isnan(cc.statistic) and cc.passed() is None
        return
    assert c.statistic == pytest.approx(ref_christoffersen(hits), abs=1e-10)
    both = ref_kupiec(hits, alpha) + ref_christoffersen(hits)
    assert cc.statistic == pytest.approx(both, abs=1e-10)
    assert (k.df, c.df, cc.df) == (1, 1, 2)
    assert k.pvalue == pytest.approx(stats.chi2.sf(ref_kupiec(hits, alpha), 1), abs=1e-10)
    assert cc.pvalue == pytest.approx(stats.chi2.sf(cc.statistic, 2), abs=1e-12)


def test_closed_forms_at_the_edges() -> None:
    n, p = 250, 0.01
    # no breach: LR = -2 n log(1 - p); every day: LR = -2 n log p
    assert kupiec([0] * n, 0.99).statistic == pytest.approx(-2 * n * np.log(1 - p), abs=1e-10)
    assert kupiec([1] * n, 0.99).statistic == pytest.approx(-2 * n * np.log(p), abs=1e-10)
    # a constant sequence: the independence test is undefined (rugarch's VaRTest: NaN)
    for constant in ([0] * n, [1] * n, [1] + [0] * (n - 1), [0] + [1] * (n - 1)):
        assert np.isnan(christoffersen(constant).pvalue)
        assert np.isnan(conditional_coverage(constant, 0.99).pvalue)
        assert christoffersen(constant).passed() is None
    assert np.isfinite(kupiec([0] * n, 0.99).pvalue)  # coverage alone is still defined
    # hand-worked case: 0 0 1 1 0 -> n00=1, n01=1, n11=1, n10=1
    assert transition_counts([0, 0, 1, 1, 0]) == (1, 1, 1, 1)
    # pi01 = pi11 = pi = 1/2 exactly -> LR_ind = 0
    assert christoffersen([0, 0, 1, 1, 0]).statistic == pytest.approx(0.0, abs=1e-12)
    # 0 1 1 1 1: n01=1, n11=3, n00=n10=0 -> only hits after day 1: undefined
    assert np.isnan(christoffersen([0, 1, 1, 1, 1]).statistic)
    # 1 0 1 1 1: n10=1, n01=1, n11=2 -> pi01 = 1, pi11 = 2/3, pi = 3/4
    expected = -2 * (np.log(0.25) + 3 * np.log(0.75) - (np.log(1 / 3) + 2 * np.log(2 / 3)))
    assert christoffersen([1, 0, 1, 1, 1]).statistic == pytest.approx(expected, abs=1e-12)
    # 0 0 0 1 1: n00=2, n01=1, n11=1; pi01=1/3, pi11=1, pi=1/2
    expected = -2 * (4 * np.log(0.5) - (2 * np.log(2 / 3) + np.log(1 / 3)))
    assert christoffersen([0, 0, 0, 1, 1]).statistic == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    hits=st.lists(st.integers(0, 1), min_size=2, max_size=400),
    alpha=st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.999]),
)
def test_random_sequences_agree_with_the_reference(hits: list[int], alpha: float) -> None:
    assert kupiec(hits, alpha).statistic == pytest.approx(ref_kupiec(hits, alpha), abs=1e-10)
    if 0 < sum(hits[1:]) < len(hits) - 1:
        assert christoffersen(hits).statistic == pytest.approx(ref_christoffersen(hits),
                                                               abs=1e-10)
    else:
        assert np.isnan(christoffersen(hits).pvalue)
    c = ref_counts(hits)
    assert transition_counts(hits) == (c[(0, 0)], c[(0, 1)], c[(1, 0)], c[(1, 1)])


def test_kupiec_has_the_right_size_under_the_null() -> None:
    rng = np.random.default_rng(1)
    pvalues = np.array([kupiec(rng.random(1000) < 0.025, 0.975).pvalue for _ in range(2000)])
    # discrete statistic: the rejection rate at 5% is near, not exactly, 5%
    assert 0.03 < np.mean(pvalues < 0.05) < 0.07


def test_clustered_breaches_fail_independence_but_pass_coverage() -> None:
    hits = np.zeros(1000, dtype=bool)
    hits[[100, 101, 102, 103, 104, 500, 501, 502, 503, 504]] = True  # 1% in two clusters
    assert kupiec(hits, 0.99).passed()
    assert not christoffersen(hits).passed()


BASEL = {0: 3.0, 1: 3.0, 2: 3.0, 3: 3.0, 4: 3.0, 5: 3.40, 6: 3.50, 7: 3.65, 8: 3.75, 9: 3.85}


@pytest.mark.parametrize("exceptions", range(0, 14))
def test_traffic_light_reproduces_the_basel_table(exceptions: int) -> None:
    hits = np.zeros(300, dtype=bool)
    hits[:30] = True  # outside the last 250 days: must not count
    hits[300 - exceptions :] = True
    light = traffic_light(hits, 0.99)
    zone = Zone.GREEN if exceptions <= 4 else Zone.YELLOW if exceptions <= 9 else Zone.RED
    assert light.zone is zone
    assert light.exceptions == exceptions and light.days == 250
    assert light.multiplier == BASEL.get(exceptions, 4.0)
    assert light.cumulative == pytest.approx(stats.binom.cdf(exceptions, 250, 0.01), abs=1e-14)


def test_traffic_light_at_other_levels_uses_the_binomial_cutoffs() -> None:
    p = 0.025
    green_max = int(stats.binom.ppf(0.95, 250, p)) - 1  # largest count with cdf < 95%
    assert stats.binom.cdf(green_max, 250, p) < 0.95 <= stats.binom.cdf(green_max + 1, 250, p)
    for k in range(0, 25):
        cdf = stats.binom.cdf(k, 250, p)
        expected = Zone.GREEN if cdf < 0.95 else Zone.RED if cdf >= 0.9999 else Zone.YELLOW
        hits = np.zeros(250, dtype=bool)
        hits[:k] = True
        light = traffic_light(hits, 0.975)
        assert light.zone is expected, k
        if expected is Zone.YELLOW:
            assert 3.4 <= light.multiplier <= 3.85
    assert traffic_light(np.r_[np.ones(green_max + 1), np.zeros(249 - green_max)], 0.975).zone \
        is Zone.YELLOW


@pytest.mark.parametrize(
    "call",
    [
        lambda: kupiec([], 0.99),
        lambda: kupiec([0, 2, 1], 0.99),
        lambda: kupiec([[0, 1]], 0.99),
        lambda: kupiec([0, 1], 99),
        lambda: kupiec([0, 1], 1.0),
        lambda: christoffersen([1]),
        lambda: traffic_light([0] * 100, 0.99),
        lambda: traffic_light([0] * 300, 0.99, days=0),
        lambda: kupiec(["a", "b"], 0.99),
    ],
)
def test_bad_input_raises_a_clear_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SwarmVarError):
        call()
    with pytest.raises(InvalidParameter):
        call()
