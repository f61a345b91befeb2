"""Comparing two threat models' AUCs: DeLong's paired standard error and a block bootstrap,
checked against a brute-force reference and against simulation with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from swarmvar.arbiter.threat import block_bootstrap_auc_difference, compare_auc, roc_auc
from swarmvar.errors import InvalidParameter


def brute_delong(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """DeLong et al. (1988) written out with the m x n kernel matrix."""
    def parts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, n = s[y][:, None], s[~y][None, :]
        psi = (p > n) + 0.5 * (p == n)
        return psi.mean(axis=1), psi.mean(axis=0)
    a10, a01 = parts(a)
    b10, b01 = parts(b)
    var = ((np.var(a10, ddof=1) + np.var(b10, ddof=1) - 2 * np.cov(a10, b10)[0, 1]) / y.sum()
           + (np.var(a01, ddof=1) + np.var(b01, ddof=1) - 2 * np.cov(a01, b01)[0, 1])
           / (~y).sum())
    return float(a10.mean()), float(b10.mean()), math.sqrt(var)


def test_matches_the_kernel_form_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.15
    a = np.round(rng.normal(0.7 * y, 1.0), 1)  # rounded: many ties
    b = np.round(a + rng.normal(0, 1.0, a.size))
    c = compare_auc(a, b, y)
    ra, rb, rse = brute_delong(a, b, y)
    assert c.auc_a == roc_auc(a, y) == pytest.approx(ra, abs=1e-12)
    assert c.auc_b == pytest.approx(rb, abs=1e-12)
    assert c.se == pytest.approx(rse, rel=1e-9)
    assert compare_auc(a, a, y).se == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 600), st.floats(0.01, 0.7), st.integers(0, 2**32 - 1),
       st.sampled_from([None, 1, 5]))
def test_the_aucs_are_roc_auc_bit_for_bit(size: int, share: float, seed: int,
                                          levels: int | None) -> None:
    """compare_auc's AUCs are the exact Mann-Whitney count over m n (half-integers sum
    exactly), as roc_auc's rank sums: equal, ties or not (threat_study reads them)."""
    rng = np.random.default_rng(seed)
    y = rng.random(size) < share
    y[:2], y[2:4] = True, False
    a = rng.normal(size=size) if levels is None else rng.integers(0, levels + 1, size) * 0.1
    b = rng.normal(y, 1.0)
    c = compare_auc(a, b, y)
    assert (c.auc_a, c.auc_b) == (roc_auc(a, y), roc_auc(b, y))
    assert c.difference == c.auc_a - c.auc_b


def test_standard_error_matches_simulation_with_known_truth() -> None:
    # binormal scores (variance 2), positives shifted by sqrt2 x 1.0 and x 0.6: true AUCs
    # Phi(1/sqrt2) and Phi(0.6/sqrt2)
    # sharing a common component (correlated, as two models of the same beats are)
    rng = np.random.default_rng(11)
    diffs, ses = [], []
    for _ in range(400):
        y = rng.random(300) < 0.2
        common = rng.normal(size=300)
        a = common + rng.normal(size=300) + 1.0 * np.sqrt(2) * y
        b = common + rng.normal(size=300) + 0.6 * np.sqrt(2) * y
        c = compare_auc(a, b, y)
        diffs.append(c.difference)
        ses.append(c.se)
    truth = norm.cdf(1.0 / np.sqrt(2)) - norm.cdf(0.6 / np.sqrt(2))  # scores' variance 2
    assert np.mean(diffs) == pytest.approx(truth, abs=0.005)
    assert np.mean(ses) == pytest.approx(np.std(diffs), rel=0.12)


def test_block_bootstrap_widens_for_clustered_labels() -> None:
    # labels in runs of 10 beats and scores that move slowly: DeLong treats the beats as
    # independent and is too narrow; the block bootstrap is wider
    rng = np.random.default_rng(5)
    y = np.repeat(rng.random(60) < 0.2, 10)
    a = np.repeat(rng.normal(size=60), 10) + 0.5 * y + 0.1 * rng.normal(size=600)
    b = np.repeat(rng.normal(size=60), 10) + 0.1 * rng.normal(size=600)
    c = compare_auc(a, b, y)
    lo, hi = block_bootstrap_auc_difference(a, b, y, np.random.default_rng(0), block=30,
                                            reps=300)
    assert lo < c.difference < hi
    assert hi - lo > 1.5 * 2 * 1.96 * c.se
    again = block_bootstrap_auc_difference(a, b, y, np.random.default_rng(0), block=30,
                                           reps=300)
    assert again == (lo, hi)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["nan", "shape", "one_class", "block", "reps", "labels",
                        "boot_nan", "boot_labels", "block_float", "reps_float"]),
       st.integers(0, 99))
def test_bad_input_is_invalid_parameter(case: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=50), rng.normal(size=50)
    y = np.arange(50) % 4 == 0
    labels: np.ndarray = y
    kwargs: dict[str, object] = {}
    if case in ("nan", "boot_nan"):
        a[seed % 50] = math.nan
    elif case == "shape":
        b = b[:-1]
    elif case == "one_class":
        labels = np.zeros(50, bool)
    elif case in ("labels", "boot_labels"):  # NaN, 2 or 0.3 are not labels
        labels = y.astype(float)
        labels[seed % 50] = (math.nan, 2.0, 0.3)[seed % 3]
    elif case == "block":
        kwargs["block"] = 51 + seed
    elif case == "block_float":
        kwargs["block"] = 2.5
    elif case == "reps_float":
        kwargs["reps"] = 10.5 + seed
    else:
        kwargs["reps"] = seed % 10
    with pytest.raises(InvalidParameter):
        if case in ("block", "reps", "boot_nan", "boot_labels", "block_float", "reps_float"):
            block_bootstrap_auc_difference(a, b, labels, rng, **kwargs)  # type: ignore[arg-type]
        else:
            compare_auc(a, b, labels)
