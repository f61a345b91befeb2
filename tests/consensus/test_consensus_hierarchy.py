"""Mergeable sketch and the aggregation tree against flat, exact computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    aggregate_tree,
    merge_all,
    merge_sketches,
    sketch,
    sketch_median,
    sketch_quantile,
    sketch_trimmed_mean,
    softmax_log,
    summarize,
)
from swarmvar.consensus.sketch import precision_bits
from swarmvar.errors import InvalidParameter

values = st.lists(
    st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, 1e-320, -1e300, 1e300])),
    min_size=1,
    max_size=300,
)


def exact_trimmed_mean(x: np.ndarray, f: int) -> float:
    s = np.sort(x)
    return math.fsum(s[f : x.size - f].tolist()) / (x.size - 2 * f)


@settings(max_examples=200, deadline=None)
@given(values, st.sampled_from([0.05, 0.01, 0.001]), st.floats(0, 1))
def test_quantile_within_relative_accuracy(x, a, q):
    arr = np.array(x)
    sk = sketch(arr, a)
    assert sk.relative_accuracy <= a
    got = sketch_quantile(sk, q)
    true = np.sort(arr)[int(math.floor(q * (arr.size - 1)))]
    # within relative a (an edge value sits exactly at a: allow an ulp of rounding)
    assert abs(got.value - true) <= sk.relative_accuracy * abs(true) * (1 + 1e-12) + sk.min_value
    assert abs(got.value - true) <= got.bound


@settings(max_examples=200, deadline=None)
@given(values, st.data())
def test_trimmed_mean_and_median_within_bound(x, data):
    arr = np.array(x)
    f = data.draw(st.integers(0, (arr.size - 1) // 2))
    sk = sketch(arr, 0.01)
    got = sketch_trimmed_mean(sk, f)
    true = exact_trimmed_mean(arr, f)
    assert abs(got.value - true) <= got.bound
    kept = np.sort(arr)[f : arr.size - f]
    a = sk.relative_accuracy
    rounding = 2.0**-52 * (arr.size + 1024) * np.abs(kept).max()
    assert got.bound <= (a / (1 - a) * np.abs(kept).max() + rounding + 1e-300) * (1 + 1e-9)
    med = sketch_median(sk)
    assert abs(med.value - np.median(arr)) <= med.bound * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(values, values)
def test_merge_is_the_sketch_of_the_union(x, y):
    a, b = sketch(x), sketch(y)
    both = sketch(np.concatenate([x, y]))
    for merged in (merge_sketches(a, b), merge_sketches(b, a)):
        assert merged.keys.tolist() == both.keys.tolist()
        assert merged.counts.tolist() == both.counts.tolist()
        np.testing.assert_allclose(merged.sums, both.sums, rtol=1e-12, atol=1e-300)


def test_precision_meets_requested_accuracy():
    for a in (0.1, 0.01, 0.001, 1e-6):
        p = precision_bits(a)
        gamma = 1 + 2.0**-p
        assert (gamma - 1) / (gamma + 1) <= a
        assert p == 0 or (1 + 2.0 ** -(p - 1) - 1) / (1 + 2.0 ** -(p - 1) + 1) > a


def test_tree_equals_merging_leaf_summaries_one_by_one():
    rng = np.random.default_rng(0)
    x = rng.lognormal(-4, 0.7, size=10_000)
    x[::97] = -x[::97]
    e = rng.uniform(-50, 0, size=x.size)
    tree = aggregate_tree(x, e, fanout=4, leaf_size=100)
    assert tree.leaves == 100 and tree.depth == 1 + math.ceil(math.log(100, 4))
    leaves = [summarize(x[i : i + 100], e[i : i + 100]) for i in range(0, x.size, 100)]
    flat = merge_all(leaves)
    assert tree.root.count == flat.count == x.size
    assert tree.root.sketch.keys.tolist() == flat.sketch.keys.tolist()
    assert tree.root.sketch.counts.tolist() == flat.sketch.counts.tolist()
    np.testing.assert_allclose(tree.root.sketch.sums, flat.sketch.sums, rtol=1e-12)
    assert (tree.root.minimum, tree.root.maximum) == (x.min(), x.max())
    assert tree.root.total == pytest.approx(math.fsum(x.tolist()), rel=1e-12)
    assert tree.root.log_normalizer == pytest.approx(flat.log_normalizer, rel=1e-13)


@pytest.mark.parametrize("n", [10, 1_000, 100_000, 1_000_000])
def test_tree_against_flat_with_byzantine_extremes(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(-4, 0.5, size=n)
    f = (n - 1) // 3
    bad = rng.choice(n, size=f // 2, replace=False)
    x[bad] = rng.choice([1e300, -1e300, 0.0], size=bad.size)
    tree = aggregate_tree(x)
    got = tree.trimmed_mean(f)
    assert abs(got.value - exact_trimmed_mean(x, f)) <= got.bound
    assert got.bound <= 0.01 * abs(got.value)
    med = tree.median()
    assert abs(med.value - np.median(x)) <= med.bound
    assert tree.root.count == n


def test_tree_log_sum_exp_stable_for_a_million_values_in_minus_1e6_to_0():
    rng = np.random.default_rng(9)
    shift = -1e6 + 40.0
    x = shift + np.log(rng.uniform(1e-12, 1.0, size=1_000_000))
    assert x.min() >= -1e6 and x.max() <= 0
    with np.errstate(under="ignore"):
        assert np.exp(x).sum() == 0.0
    exact = shift + math.log(math.fsum(np.exp(x - shift).tolist()))
    tree = aggregate_tree(np.ones_like(x), x, fanout=16)
    assert tree.root.log_normalizer == pytest.approx(exact, abs=1e-9)
    w = tree.bma_weights(x)
    assert w.sum() == pytest.approx(1.0, rel=1e-9)


def test_bad_input():
    with pytest.raises(InvalidParameter):
        aggregate_tree([])
    with pytest.raises(InvalidParameter):
        aggregate_tree([1.0, np.nan])
    with pytest.raises(InvalidParameter):
        aggregate_tree([1.0], fanout=1)
    with pytest.raises(InvalidParameter):
        sketch([1.0], relative_accuracy=0.0)
    with pytest.raises(InvalidParameter, match="2f"):
        sketch_trimmed_mean(sketch([1.0, 2.0]), 1)
    with pytest.raises(InvalidParameter, match="precision"):
        merge_sketches(sketch([1.0], 0.01), sketch([1.0], 0.1))


def test_minus_infinity_log_evidence_gets_zero_weight():
    e = np.array([-np.inf, -3.0, -1.0, -np.inf, -2.0] * 400)
    tree = aggregate_tree(np.ones(e.size), e, fanout=3, leaf_size=7)
    w = tree.bma_weights(e)
    assert np.all(w[np.isinf(e)] == 0.0)
    np.testing.assert_allclose(w, softmax_log(e), rtol=1e-12)
    empty = aggregate_tree(np.ones(4), np.full(4, -np.inf))
    assert empty.root.log_normalizer == -np.inf
    with pytest.raises(InvalidParameter, match="no finite log-evidence"):
        empty.bma_weights(np.full(4, -np.inf))
