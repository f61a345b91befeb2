"""The change-point detector's probabilities are calibrated on data from its own model.

Simulation with a known truth (the brute-force segmentation sum in
``test_regimes.py`` checks the recursion exactly on 10 returns; this checks
what ``prob_change`` means over long series): regimes begin with probability
``hazard`` each day, each with a Normal-Inverse-Gamma(``mu0, kappa0, alpha0,
beta0``) mean and variance, exactly the detector's prior. Then for any event
``A`` measurable in the truth, ``E[1_A] = E[P(A | z_1..t)]``: the frequency of
"a new regime began within the last ``window`` returns (not the first)" must
equal the average ``prob_change``, overall and within bins of it.
"""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.emergence import run_length_posterior

PRIOR = dict(mu0=0.0, kappa0=1.0, alpha0=3.0, beta0=2.0)


def simulate(rng: np.random.Generator, days: int, hazard: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Returns from the detector's generative model and each day's true run length."""
    z = np.empty(days)
    run = np.empty(days, dtype=np.int64)
    mu = sigma = 0.0
    for t in range(days):
        if t == 0 or rng.random() < hazard:
            var = PRIOR["beta0"] / rng.gamma(PRIOR["alpha0"])  # InvGamma(alpha0, beta0)
            mu = rng.normal(PRIOR["mu0"], np.sqrt(var / PRIOR["kappa0"]))
            sigma = float(np.sqrt(var))
            run[t] = 1
        else:
            run[t] = run[t - 1] + 1
        z[t] = rng.normal(mu, sigma)
    return z, run


@pytest.fixture(scope="module")
def runs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(prob_change, events, cumulative run-length posterior, true runs)`` of many series."""
    rng = np.random.default_rng(2026)
    probs, events, cum, true = [], [], [], []
    for _ in range(REPS):
        z, run = simulate(rng, DAYS, HAZARD)
        res = run_length_posterior(z, hazard=HAZARD, max_run=DAYS + 1, window=WINDOW,
                                   threshold=0.5, **PRIOR)
        probs.append(res.prob_change)
        events.append((run <= WINDOW) & (run < np.arange(1, DAYS + 1)))
        cum.append(np.cumsum(res.probs, axis=1))
        true.append(run)
    return (np.asarray(probs), np.asarray(events, dtype=float), np.asarray(cum),
            np.asarray(true))


HAZARD, WINDOW, DAYS, REPS = 0.04, 5, 120, 250


def test_prob_change_is_calibrated_on_the_models_own_data(runs) -> None:  # type: ignore[no-untyped-def]
    p, e, _, _ = runs
    # series are independent: the standard error from the per-series mean differences
    diff = (e - p).mean(axis=1)
    se = diff.std(ddof=1) / np.sqrt(REPS)
    assert abs(diff.mean()) < 4 * se + 1e-3, (e.mean(), p.mean(), se)
    # within bins of the stated probability, the event frequency matches it
    checked = 0
    for lo, hi in ((0.0, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 1.01)):
        inside = (p >= lo) & (p < hi)
        if inside.sum() < 200:
            continue
        checked += 1
        assert abs(e[inside].mean() - p[inside].mean()) < 0.06, (lo, hi, e[inside].mean(),
                                                                 p[inside].mean())
    assert checked >= 3


@pytest.mark.parametrize("k", [1, 3, 10, 30, 80])
def test_run_length_posterior_is_calibrated(runs, k: int) -> None:  # type: ignore[no-untyped-def]
    # P(r_t <= k | z_1..t) against the frequency of true runs <= k
    _, _, cum, true = runs
    stated = cum[:, :, k - 1]
    happened = (true <= k).astype(float)
    diff = (happened - stated).mean(axis=1)
    se = diff.std(ddof=1) / np.sqrt(REPS)
    assert abs(diff.mean()) < 4 * se + 1e-3, (happened.mean(), stated.mean(), se)
