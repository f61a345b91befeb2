"""VaR coverage tests against outside references.

* Christoffersen's independence LR is the likelihood ratio of a logistic
  regression of today's hit on yesterday's (a saturated two-state Markov
  chain), so statsmodels' ``Logit`` ``llr`` computes it independently.
* The Basel traffic light's cumulative probabilities are the published ones
  (Basel Committee on Banking Supervision, 1996, "Supervisory framework for
  the use of backtesting in conjunction with the internal models approach to
  market risk capital requirements", Table 1: 250 observations, 99% VaR).
* Simulation with a known truth: i.i.d. Bernoulli hits are the null of the
  independence and conditional-coverage tests (rejection near the nominal
  size); Markov-clustered hits with the right rate are an alternative the
  independence test must catch and Kupiec's must not.
* The Clopper-Pearson interval of :class:`IntervalCoverage` against its
  beta-quantile closed form.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from swarmvar.validation import (
    christoffersen,
    conditional_coverage,
    kupiec,
    traffic_light,
    transition_counts,
)
from swarmvar.validation.intervals import IntervalCoverage

#: BCBS (1996), Table 1, 99% VaR over 250 days: exceptions -> cumulative probability (%).
BASEL_1996_CUMULATIVE = {0: 8.11, 1: 28.58, 2: 54.32, 3: 75.81, 4: 89.22, 5: 95.88,
                         6: 98.63, 7: 99.60, 8: 99.89, 9: 99.97, 10: 99.99}


def logit_llr(hits: np.ndarray) -> float:
    """LR of ``hit_t ~ 1 + hit_{t-1}`` against ``hit_t ~ 1`` (statsmodels' Logit)."""
    y = hits[1:].astype(float)
    x = sm.add_constant(hits[:-1].astype(float))
    res = sm.Logit(y, x).fit(disp=0, method="newton", maxiter=100, tol=1e-12)
    return float(res.llr)


def markov_hits(rng: np.random.Generator, n: int, p01: float, p11: float) -> np.ndarray:
    h = np.zeros(n, dtype=bool)
    u = rng.random(n)
    for t in range(1, n):
        h[t] = u[t] < (p11 if h[t - 1] else p01)
    return h


@pytest.mark.parametrize("seed", range(6))
def test_christoffersen_is_the_logit_likelihood_ratio(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hits = markov_hits(rng, 800, 0.03 + 0.01 * seed, 0.15 + 0.05 * seed)
    n00, n01, n10, n11 = transition_counts(hits)
    assert min(n00, n01, n10, n11) > 0  # no separation: the logit MLE is finite
    res = christoffersen(hits)
    assert res.statistic == pytest.approx(logit_llr(hits), rel=1e-8, abs=1e-10)
    assert res.pvalue == pytest.approx(stats.chi2.sf(logit_llr(hits), 1), rel=1e-7)


def test_kupiec_is_the_logit_intercept_likelihood_ratio() -> None:
    # the intercept-only logit's MLE is the hit rate; against a fixed rate p: the Kupiec LR
    rng = np.random.default_rng(9)
    for p_true, alpha in ((0.013, 0.99), (0.04, 0.975), (0.05, 0.95)):
        hits = rng.random(1000) < p_true
        y = hits.astype(float)
        x = np.ones((y.size, 1))
        fit = sm.Logit(y, x).fit(disp=0, method="newton", tol=1e-12)
        p = 1.0 - alpha
        null = float(sm.Logit(y, x).loglike(np.array([np.log(p / (1 - p))])))
        assert kupiec(hits, alpha).statistic == pytest.approx(2 * (fit.llf - null), rel=1e-9)


@pytest.mark.parametrize(("exceptions", "published"), list(BASEL_1996_CUMULATIVE.items()))
def test_traffic_light_cumulative_probabilities_are_the_published_table(
    exceptions: int, published: float
) -> None:
    hits = np.zeros(250, dtype=bool)
    hits[:exceptions] = True
    light = traffic_light(hits, 0.99)
    assert 100 * light.cumulative == pytest.approx(published, abs=0.005 + 1e-12)
    # the published zone boundaries: green below 95%, red from 99.99%
    assert light.zone.value == ("green" if exceptions <= 4 else
                                "yellow" if exceptions <= 9 else "red")


def test_independence_and_joint_tests_have_their_size_under_iid_hits() -> None:
    # known truth: i.i.d. Bernoulli(1 - alpha) hits are the null of both tests
    rng = np.random.default_rng(21)
    reps, n, p = 1500, 1000, 0.05
    ind, cc = [], []
    for _ in range(reps):
        hits = rng.random(n) < p
        ind.append(christoffersen(hits).pvalue)
        cc.append(conditional_coverage(hits, 0.95).pvalue)
    ind_rate = float(np.mean(np.asarray(ind) < 0.05))
    cc_rate = float(np.mean(np.asarray(cc) < 0.05))
    # a 99.9% binomial band around 5% over 1500 replications, widened for the chi-square
    # approximation of a discrete statistic (1.5 points)
    half = 3.3 * np.sqrt(0.05 * 0.95 / reps) + 0.015
    assert abs(ind_rate - 0.05) < half, ind_rate
    assert abs(cc_rate - 0.05) < half, cc_rate


def test_clustered_hits_of_the_right_rate_fail_independence_not_coverage() -> None:
    # known truth: a Markov chain with stationary hit rate 5% but p11 = 0.4
    rng = np.random.default_rng(22)
    p11 = 0.4
    p01 = 0.05 * (1 - p11) / 0.95  # stationary rate p01 / (1 - p11 + p01) = 5%
    reject_ind, reject_pof = [], []
    for _ in range(300):
        hits = markov_hits(rng, 1000, p01, p11)
        reject_ind.append(christoffersen(hits).pvalue < 0.05)
        reject_pof.append(kupiec(hits, 0.95).pvalue < 0.05)
    assert np.mean(reject_ind) > 0.95
    # Kupiec's test sees only the count: its rejections come from the clustering's extra
    # variance of the count, far below the independence test's
    assert np.mean(reject_pof) < 0.5


@pytest.mark.parametrize(("k", "n"), [(0, 40), (7, 40), (36, 40), (40, 40), (180, 200)])
def test_clopper_pearson_interval_is_the_beta_quantile_closed_form(k: int, n: int) -> None:
    covered = np.zeros(n, dtype=bool)
    covered[:k] = True
    res = IntervalCoverage(alpha=0.99, interval_mass=0.9, var_covered=covered, es_covered=None)
    low = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert res.ci == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert res.fraction == k / n
