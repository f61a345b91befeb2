"""Partition widening, bounded staleness, and the conjugate-statistics CRDT."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from swarmvar.consensus import (
    Contribution,
    NormalInverseGamma,
    NormalStats,
    StalenessBound,
    StatsCRDT,
    widen_interval,
    z_value,
)
from swarmvar.errors import InvalidParameter, VersionConflict


def test_no_missing_and_fresh_leaves_the_interval_alone():
    assert widen_interval(0.02, (0.018, 0.023), available=7, total=7, spread=0.003) == (
        0.018,
        0.023,
    )


def test_widening_formula_by_hand():
    z = stats.norm.ppf(0.95)
    extra = 0.002**2 * (1 / 4 - 1 / 10) + (0.1 * 0.02) ** 2 * 2.0
    lo, hi = widen_interval(
        0.02,
        (0.018, 0.023),
        available=4,
        total=10,
        spread=0.002,
        staleness_days=2.0,
        drift=0.1,
        mass=0.90,
    )
    assert lo == pytest.approx(0.02 - math.sqrt(0.002**2 + z * z * extra))
    assert hi == pytest.approx(0.02 + math.sqrt(0.003**2 + z * z * extra))
    assert z_value(0.90) == pytest.approx(z)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 50),
    st.data(),
    st.floats(0, 0.01),
    st.floats(0, 30),
    st.floats(0, 30),
    st.floats(0, 0.5),
)
def test_widening_is_monotone_in_missing_fraction_and_staleness(n, data, spread, d1, d2, drift):
    m1 = data.draw(st.integers(1, n))
    m2 = data.draw(st.integers(1, m1))  # m2 <= m1: more missing
    point, interval = 0.02, (0.017, 0.024)
    kw = dict(total=n, spread=spread, drift=drift)
    a = widen_interval(point, interval, available=m1, staleness_days=min(d1, d2), **kw)
    b = widen_interval(point, interval, available=m2, staleness_days=max(d1, d2), **kw)
    assert b[0] <= a[0] <= interval[0] and interval[1] <= a[1] <= b[1]
    assert a[0] >= 0.0


def test_staleness_bound():
    bound = StalenessBound(max_versions=2, max_age=3600.0)
    assert not bound.is_stale(2, 3600.0)
    assert bound.is_stale(3, 0.0) and bound.is_stale(0, 3601.0)
    assert not StalenessBound().is_stale(10**6, 1e9)
    with pytest.raises(InvalidParameter):
        StalenessBound(max_versions=-1)


# --- CRDT --------------------------------------------------------------------------


def test_partition_then_heal_gives_exactly_the_no_partition_posterior():
    rng = np.random.default_rng(0)
    replicas = [f"r{i}" for i in range(5)]
    stream = {r: rng.normal(0.0005, 0.01, size=200) for r in replicas}
    prior = NormalInverseGamma(loc=0.0, kappa=1.0, shape=2.0, rate=1e-4)

    def contribution(r: str, t: int) -> NormalStats:
        return NormalStats.of(stream[r][:t])

    # no partition: one state, every replica's contribution at its final version
    whole = StatsCRDT()
    for r in replicas:
        for t in (50, 120, 200):
            whole = whole.update(r, contribution(r, t), version=t)

    # partition {r0, r1} | {r2, r3, r4}: each side sees its own replicas advance, and the
    # other side's only up to version 50; then the sides heal by exchanging states
    left, right = StatsCRDT(), StatsCRDT()
    for r in replicas:
        left = left.update(r, contribution(r, 50), version=50)
        right = right.update(r, contribution(r, 50), version=50)
    for t in (120, 200):
        for r in replicas[:2]:
            left = left.update(r, contribution(r, t), version=t)
        for r in replicas[2:]:
            right = right.update(r, contribution(r, t), version=t)
    assert left.read() != whole.read()
    healed_lr, healed_rl = left.merge(right), right.merge(left)
    assert healed_lr.read() == healed_rl.read() == whole.read()  # bit for bit
    assert prior.update(healed_lr.read()) == prior.update(whole.read())
    # and it is the posterior of all the data pooled (up to the replicas' own rounding)
    pooled = prior.update(NormalStats.of(np.concatenate([stream[r] for r in replicas])))
    got = prior.update(whole.read())
    for name in ("loc", "kappa", "shape", "rate"):
        assert getattr(got, name) == pytest.approx(getattr(pooled, name), rel=1e-12, abs=1e-18)


stats_strategy = st.builds(NormalStats, st.integers(0, 100), st.floats(-10, 10), st.floats(0, 100))
crdt_strategy = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.builds(Contribution, st.integers(0, 5), stats_strategy),
).map(StatsCRDT)


@settings(max_examples=200, deadline=None)
@given(crdt_strategy, crdt_strategy, crdt_strategy)
def test_merge_is_a_join(a, b, c):
    assert dict(a.merge(b).contributions) == dict(b.merge(a).contributions)
    assert dict(a.merge(b).merge(c).contributions) == dict(a.merge(b.merge(c)).contributions)
    assert dict(a.merge(a).contributions) == dict(a.contributions)
    assert a.merge(b).merge(c).read() == c.merge(a).merge(b).read()


def test_update_needs_a_higher_version():
    s = StatsCRDT().update("a", NormalStats(1, 1.0, 1.0), version=3)
    with pytest.raises(VersionConflict):
        s.update("a", NormalStats(2, 1.0, 1.0), version=3)


def test_normal_inverse_gamma_posterior_against_grid_integration():
    rng = np.random.default_rng(1)
    x = rng.normal(0.01, 0.02, size=40)
    prior = NormalInverseGamma(loc=0.0, kappa=2.0, shape=3.0, rate=0.001)
    post = prior.update(NormalStats.of(x))
    mu = np.linspace(-0.03, 0.05, 401)
    var = np.exp(np.linspace(np.log(1e-5), np.log(5e-3), 401))
    M, V = np.meshgrid(mu, var, indexing="ij")
    log_prior = stats.invgamma.logpdf(V, prior.shape, scale=prior.rate) + stats.norm.logpdf(
        M, prior.loc, np.sqrt(V / prior.kappa)
    )
    log_lik = stats.norm.logpdf(x[:, None, None], M, np.sqrt(V)).sum(axis=0)
    logp = log_prior + log_lik + np.log(V)  # d var = var d log var on the log grid
    p = np.exp(logp - logp.max())
    p /= p.sum()
    assert (p * M).sum() == pytest.approx(post.loc, rel=1e-3)
    assert (p * V).sum() == pytest.approx(post.rate / (post.shape - 1), rel=1e-3)


def test_predictive_loss_matches_posterior_simulation():
    prior = NormalInverseGamma(loc=0.0, kappa=1.0, shape=3.0, rate=3e-4)
    post = prior.update(NormalStats.of(np.random.default_rng(2).normal(0.0, 0.01, 30)))
    rng = np.random.default_rng(3)
    var = stats.invgamma.rvs(post.shape, scale=post.rate, size=400_000, random_state=rng)
    mu = rng.normal(post.loc, np.sqrt(var / post.kappa))
    loss = -rng.normal(mu, np.sqrt(var))
    d = post.predictive_loss()
    for p in (0.5, 0.95, 0.99):
        assert d.ppf(p) == pytest.approx(np.quantile(loss, p), abs=4e-4)
