"""combine(): robust, signed, weighted, partition-aware consensus end to end."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    Aggregator,
    BoundMode,
    KeyRing,
    Loss,
    Policy,
    RejectionReason,
    StalenessBound,
    TrackRecord,
    Weighting,
    combine,
    private_key_from_seed,
    sign_estimate,
    trimmed_mean,
)
from swarmvar.errors import InvalidParameter, NotEnoughAgents, StaleConsensus

NOW = datetime(2024, 3, 1, tzinfo=UTC)  # the fixtures' data time
VARS = [0.020, 0.021, 0.022, 0.023, 0.024, 0.025, 0.026]


def batch(sign, vars_=VARS, seq=1, **kw):
    return [sign(f"a{i}", v, seq=seq, **kw) for i, v in enumerate(vars_)]


def test_honest_swarm(ring, sign):
    c = combine(batch(sign), Policy(f=2), keyring=ring, now=NOW)
    assert c.var == pytest.approx(trimmed_mean(VARS, 2))
    assert c.es == pytest.approx(trimmed_mean([v * 1.25 for v in VARS], 2))
    assert set(c.used) == {"a2", "a3", "a4"} and set(c.trimmed) == {"a0", "a1", "a5", "a6"}
    assert sum(c.weights.values()) == pytest.approx(1.0)
    assert (c.available, c.total, c.degraded, c.rejected) == (7, 7, False, {})
    assert c.var_interval[0] <= c.var <= c.var_interval[1]
    assert c.method == "trimmed_mean(f=2, equal)" and c.as_of == NOW


@pytest.mark.parametrize("aggregator", list(Aggregator))
def test_every_aggregator_resists_two_byzantine_agents(ring, sign, aggregator):
    f = 0 if aggregator is Aggregator.MEAN else 2
    est = batch(sign, VARS[:5])
    if f:  # Byzantine agents hold valid keys and sign absurd claims
        est += [sign("a5", 1e6, spread=0.0), sign("a6", 1e6, spread=0.0)]
    if aggregator in (Aggregator.KRUM, Aggregator.MULTI_KRUM):
        f = 2
    c = combine(est, Policy(aggregator=aggregator, f=f), keyring=ring, now=NOW, total=7)
    assert min(VARS[:5]) <= c.var <= max(VARS[:5])
    assert c.es >= c.var
    assert c.var_interval[0] <= c.var <= c.var_interval[1]
    assert c.es_interval[0] <= c.es <= c.es_interval[1]


def test_refused_estimates_are_reported_with_reasons(ring, sign, make, keys):
    good = batch(sign, VARS[:5])
    forged = dataclasses.replace(sign("a5", 0.02), var=0.5, es=0.6)
    unsigned = make("a6", 0.02)
    stranger = sign_estimate(make("ghost", 0.02), private_key_from_seed(b"\x09" * 32))
    c = combine([*good, forged, unsigned, stranger], Policy(f=1), keyring=ring, now=NOW)
    assert c.rejected["a5"].startswith("forged")
    assert c.rejected["a6"].startswith("unsigned")
    assert c.rejected["ghost"].startswith("unknown agent")
    assert c.available == 5 and c.total == 7
    # replaying the same beat: every estimate is refused
    with pytest.raises(NotEnoughAgents, match="replayed"):
        combine(good, Policy(f=1), keyring=ring, now=NOW)
    assert ring.refused[RejectionReason.REPLAYED] == 5


def test_newest_estimate_per_agent_is_used(ring, sign):
    est = batch(sign) + [sign("a0", 0.023, seq=2)]
    c = combine(est, Policy(f=2, aggregator=Aggregator.MEDIAN), keyring=ring, now=NOW)
    assert c.var == pytest.approx(0.023)
    assert ring.last_seq("a0") == 2


def test_mismatched_target_is_rejected(ring, sign):
    est = batch(sign, VARS[:6]) + [sign("a6", 0.02, alpha=0.95)]
    c = combine(est, Policy(f=1), keyring=ring, now=NOW)
    assert c.rejected["a6"].startswith("mismatched target") and c.alpha == 0.99


def test_missing_agents_widen_the_interval(sign, keys):
    def fresh_ring():
        return KeyRing({a: k.public_key() for a, k in keys.items()})

    full = combine(batch(sign), Policy(f=1), keyring=fresh_ring(), now=NOW)
    part = combine(batch(sign)[:5], Policy(f=1), keyring=fresh_ring(), now=NOW)
    assert part.available == 5 and part.total == 7
    width = lambda c: c.var_interval[1] - c.var_interval[0]  # noqa: E731
    assert full.available == 7
    # the same five agents, told n = 5 (nothing missing), give a narrower interval
    unwidened = combine(batch(sign)[:5], Policy(f=1), keyring=fresh_ring(), now=NOW, total=5)
    assert width(part) > width(unwidened)


def test_staleness_refuse_degrade_and_fresh_subset(sign, keys):
    def fresh_ring():
        return KeyRing({a: k.public_key() for a, k in keys.items()})

    old = NOW - timedelta(days=3)
    est = [sign(f"a{i}", v, as_of=(old if i < 4 else NOW)) for i, v in enumerate(VARS)]
    bound = StalenessBound(max_age=86_400.0)
    ring = fresh_ring()
    with pytest.raises(StaleConsensus, match="staleness"):
        combine(est, Policy(f=2, staleness=bound), keyring=ring, now=NOW)
    assert ring.last_seq("a0") is None  # a refused beat records nothing: it can be retried
    degraded = combine(
        est, Policy(f=2, staleness=bound, on_bound=BoundMode.DEGRADE), keyring=ring, now=NOW
    )
    assert ring.last_seq("a0") == 1
    assert degraded.degraded and degraded.staleness == pytest.approx(3 * 86_400)
    clean = combine(batch(sign), Policy(f=2), keyring=fresh_ring(), now=NOW)  # all fresh
    assert not clean.degraded and clean.staleness == 0.0
    assert degraded.var == clean.var
    assert degraded.var_interval[0] < clean.var_interval[0] or clean.var_interval[0] == 0
    assert degraded.var_interval[1] > clean.var_interval[1]
    # enough fresh ones: stale agents are left out and named
    c = combine(est, Policy(f=1, staleness=bound), keyring=fresh_ring(), now=NOW)
    assert c.available == 3 and not c.degraded
    assert all(c.rejected[f"a{i}"].startswith("stale") for i in range(4))
    # version lag
    lagging = [sign(f"a{i}", v, seq=(1 if i == 0 else 9)) for i, v in enumerate(VARS)]
    policy = Policy(f=1, staleness=StalenessBound(max_versions=3))
    c = combine(lagging, policy, keyring=fresh_ring(), now=NOW)
    assert c.rejected["a0"].startswith("stale: 8 versions behind")


def test_min_available(sign, keys):
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    with pytest.raises(NotEnoughAgents, match="min_available"):
        combine(batch(sign)[:4], Policy(f=1, min_available=0.8), keyring=ring, now=NOW)
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    c = combine(
        batch(sign)[:4],
        Policy(f=1, min_available=0.8, on_bound=BoundMode.DEGRADE),
        keyring=ring,
        now=NOW,
    )
    assert c.degraded and c.available == 4


def test_track_record_and_bma_weighting(ring, sign):
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, size=300)
    var = np.column_stack([np.full(300, 0.0233 * k) for k in (1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 4.0)])
    record = TrackRecord(
        agent_ids=tuple(f"a{i}" for i in range(7)), returns=r, alpha=0.99, var=var, es=var * 1.15
    )
    policy = Policy(f=1, weighting=Weighting.TRACK_RECORD, loss=Loss.FZ0, window=250)
    c = combine(batch(sign), policy, keyring=ring, now=NOW, track_record=record)
    assert sum(c.weights.values()) == pytest.approx(1.0)
    assert c.method == "trimmed_mean(f=1, track_record)"
    log_scores = np.column_stack([np.full(300, -1.0)] * 6 + [np.full(300, -1.1)])
    record = dataclasses.replace(record, log_scores=log_scores)
    c = combine(
        batch(sign, seq=2),
        Policy(f=0, aggregator=Aggregator.MEAN, weighting=Weighting.BMA),
        keyring=ring,
        now=NOW,
        track_record=record,
    )
    assert c.weights["a6"] < 1e-10 and c.weights["a0"] == pytest.approx(1 / 6)
    with pytest.raises(InvalidParameter, match="TrackRecord"):
        combine(batch(sign, seq=3), Policy(f=1, weighting=Weighting.BMA), keyring=ring, now=NOW)


def test_not_enough_agents_for_the_rule(ring, sign):
    with pytest.raises(NotEnoughAgents, match="n >= 7"):
        combine(batch(sign)[:6], Policy(f=2, aggregator=Aggregator.KRUM), keyring=ring, now=NOW)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.floats(0.001, 0.2), min_size=3, max_size=5),
    st.lists(st.sampled_from([1e99, 0.0, 1e-9, 0.5]), min_size=1, max_size=2),  # 1e300: fuzz
    st.sampled_from([Aggregator.MEDIAN, Aggregator.TRIMMED_MEAN]),
)
def test_consensus_stays_in_the_honest_range(keys, make, honest, bad, aggregator):
    f = min(len(bad), (len(honest) - 1) // 2)
    bad = bad[:f]
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    est = [sign_estimate(make(f"a{i}", v), keys[f"a{i}"]) for i, v in enumerate(honest + bad)]
    c = combine(est, Policy(f=f, aggregator=aggregator), keyring=ring, now=NOW)
    assert min(honest) <= c.var <= max(honest)
    assert min(honest) * 1.25 <= c.es <= max(honest) * 1.25
