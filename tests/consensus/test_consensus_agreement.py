"""Approximate agreement: validity and the Dolev et al. (1986) convergence factor per round."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    agreement_round,
    convergence_factor,
    rounds_needed,
    run_agreement,
)
from swarmvar.errors import InvalidParameter, NotEnoughAgents


def test_convergence_factor_matches_the_paper():
    # c(m, k) = floor((m - 1) / k) + 1 with m = n - 2f, k = f
    assert convergence_factor(4, 1) == 2.0
    assert convergence_factor(7, 2) == 2.0
    assert convergence_factor(10, 3) == 2.0
    assert convergence_factor(10, 1) == 8.0
    assert convergence_factor(100, 10) == 8.0
    assert convergence_factor(5, 0) == float("inf")
    with pytest.raises(NotEnoughAgents, match="n >= 7"):
        convergence_factor(6, 2)


def test_round_by_hand():
    # n = 7, f = 2: sort, drop 2 each side -> [2, 3, 4], take every 2nd -> [2, 4], mean 3
    assert agreement_round([9.0, 1.0, 4.0, 3.0, 0.0, 2.0, 100.0], 2, default=0.0) == 3.0
    # missing values take the default
    # [5, 1, 2, 3] -> sorted [1, 2, 3, 5] -> reduce [2, 3] -> select all -> 2.5
    assert agreement_round([np.nan, 1.0, 2.0, 3.0], 1, default=5.0) == 2.5
    with pytest.raises(InvalidParameter):
        agreement_round([1.0, np.inf, 2.0, 3.0], 1, default=0.0)


ATTACKS = ["extreme", "split", "just_outside", "sign_flip", "silent", "random"]


def adversary_for(kind: str, f: int, seed: int):
    rng = np.random.default_rng(seed)

    def send(rnd: int, honest: np.ndarray) -> np.ndarray:
        h = honest.size
        lo, hi = honest.min(), honest.max()
        if kind == "extreme":
            return np.where(rng.random((h, f)) < 0.5, 1e300, -1e300)
        if kind == "split":  # equivocate: low to half the receivers, high to the others
            side = np.where(np.arange(h) < h // 2, lo - 1.0, hi + 1.0)
            return np.repeat(side[:, None], f, axis=1)
        if kind == "just_outside":
            eps = 1e-9 * max(abs(lo), abs(hi), 1.0)
            return np.where(np.arange(h)[:, None] % 2 == 0, lo - eps, hi + eps) * np.ones((h, f))
        if kind == "sign_flip":
            return -rng.choice(honest, size=(h, f))
        if kind == "silent":
            return np.full((h, f), np.nan)
        return rng.uniform(-1e6, 1e6, size=(h, f))

    return send


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=10),
    st.sampled_from(ATTACKS),
    st.integers(0, 2**31),
    st.data(),
)
def test_each_round_is_valid_and_shrinks_by_the_factor(honest, attack, seed, data):
    h = len(honest)
    f = data.draw(st.integers(0, (h - 1) // 2))
    n = h + f
    result = run_agreement(
        honest, f, eps=1e-9, adversary=adversary_for(attack, f, seed) if f else None, max_rounds=8
    )
    lo, hi = min(honest), max(honest)
    assert np.all(result.values >= lo) and np.all(result.values <= hi)
    c = convergence_factor(n, f)
    for before, after in zip(result.spreads, result.spreads[1:], strict=False):
        # rounding can add a few ulps of the values' magnitude
        slack = 1e-12 * max(abs(lo), abs(hi), 1.0)
        assert after <= before / c + slack


def test_seven_nodes_two_byzantine_reach_1e_minus_9():
    rng = np.random.default_rng(11)
    honest = rng.uniform(0.01, 0.05, size=5)
    result = run_agreement(honest, 2, eps=1e-9, adversary=adversary_for("split", 2, 0))
    assert result.converged
    assert result.spreads[-1] <= 1e-9 * honest.max()
    spread0 = float(np.ptp(honest))
    assert result.rounds <= rounds_needed(spread0, result.target, 7, 2)
    assert honest.min() <= result.values.min() and result.values.max() <= honest.max()


def test_without_faults_one_round_agrees():
    result = run_agreement([1.0, 2.0, 6.0], 0, eps=1e-12)
    assert result.rounds == 1 and np.all(result.values == 3.0)


def test_driver_validates():
    with pytest.raises(NotEnoughAgents):
        run_agreement([1.0, 2.0], 1, eps=1e-3)
    with pytest.raises(InvalidParameter):
        run_agreement([1.0, 2.0, 3.0], 1, eps=0.0)
    with pytest.raises(InvalidParameter, match="shape"):
        run_agreement([1.0, 2.0, 3.0], 1, eps=1e-3, adversary=lambda r, v: np.zeros((2, 2)))
