"""Canary: stable SHA-256 assignment, ramp, promotion and automatic rollback."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest
from scipy import stats

from swarmvar.errors import InvalidVariant, VersionConflict
from swarmvar.evolution import (
    BreakerSnapshot,
    BreakerState,
    CanaryConfig,
    CheckOutcome,
    HealthPolicy,
    MetricStats,
    VariantStatus,
    VariantStore,
    assess,
    canary_bucket,
    new_variant,
    record_check,
    routed_to_canary,
    start_canary,
)

VID = "5f0c7c4e-8a57-4a4c-9d55-3f2f8f1b6a11"
CFG = CanaryConfig()


def test_defaults_are_the_spec() -> None:
    assert (CFG.initial_fraction, CFG.ramp_steps, CFG.health_check_interval_s) == (0.1, 5, 300.0)


_ASSIGN = """
from swarmvar.evolution import canary_bucket
print(",".join(repr(canary_bucket("{vid}", f"portfolio-{{i}}")) for i in range(500)))
"""


def test_assignment_identical_across_hash_seeds() -> None:
    outs = set()
    for seed in ("0", "1", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", _ASSIGN.format(vid=VID)], env=env,
                             capture_output=True, text=True, check=True, timeout=120).stdout
        outs.add(out)
    assert len(outs) == 1
    here = ",".join(repr(canary_bucket(VID, f"portfolio-{i}")) for i in range(500))
    assert outs == {here + "\n"}


def test_assignment_is_the_sha256_prefix() -> None:
    import hashlib
    d = hashlib.sha256(f"{VID}\x00agent-7".encode()).digest()
    assert canary_bucket(VID, "agent-7") == int.from_bytes(d[:8], "big") / 2**64


def test_buckets_are_uniform() -> None:
    u = [canary_bucket(VID, f"a{i}") for i in range(20_000)]
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    share = sum(x < 0.1 for x in u) / len(u)
    assert stats.binomtest(sum(x < 0.1 for x in u), len(u), 0.1).pvalue > 1e-4, share


def canary_on(store: VariantStore, constructors, now: float = 0.0):
    v = store.add(new_variant("NormalInverseGamma", {"forgetting": 0.9}, constructors, now=now))
    return start_canary(store, v, CFG, now)


def test_ramp_in_five_steps_then_promote(store: VariantStore, constructors) -> None:
    champion = store.promote(store.add(new_variant(
        "NormalInverseGamma", {"forgetting": 0.99}, constructors, now=0.0)), now=0.0)
    v = canary_on(store, constructors)
    agents = [f"agent-{i}" for i in range(2000)]
    on = {a for a in agents if routed_to_canary(v, a)}
    fractions = [v.canary.fraction]
    t = 0.0
    for step in range(1, 6):
        t += CFG.health_check_interval_s
        v, outcome = record_check(store, v, True, CFG, now=t)
        fractions.append(v.canary.fraction)
        if step < 5:
            assert outcome is CheckOutcome.RAMPED and v.status is VariantStatus.CANARY
            now_on = {a for a in agents if routed_to_canary(v, a)}
            assert on <= now_on  # once on the canary, always on it
            on = now_on
            assert abs(len(on) / len(agents) - v.canary.fraction) < 0.05
    assert outcome is CheckOutcome.PROMOTED and v.status is VariantStatus.ACTIVE
    assert fractions == pytest.approx([0.1, 0.28, 0.46, 0.64, 0.82, 1.0])
    assert store.get(champion.id).status is VariantStatus.RETIRED
    assert store.get(v.id).canary.passed_checks == 5


def test_checks_too_soon_hold(store: VariantStore, constructors) -> None:
    v = canary_on(store, constructors)
    same, outcome = record_check(store, v, True, CFG, now=CFG.health_check_interval_s - 1)
    assert outcome is CheckOutcome.HELD and same.canary.step == 0


def test_failed_checks_roll_back_automatically(store: VariantStore, constructors) -> None:
    v = canary_on(store, constructors)
    v, outcome = record_check(store, v, True, CFG, now=300.0)
    for n in range(1, CFG.max_failed_checks):
        v, outcome = record_check(store, v, False, CFG, now=300.0 + n)
        assert outcome is CheckOutcome.FAILED and v.canary.failed_checks == n
    v, outcome = record_check(store, v, False, CFG, now=400.0)
    assert outcome is CheckOutcome.ROLLED_BACK
    assert store.get(v.id).status is VariantStatus.ROLLED_BACK
    assert not routed_to_canary(store.get(v.id), "agent-1")
    with pytest.raises(InvalidVariant, match="not in a canary"):
        record_check(store, store.get(v.id), True, CFG, now=500.0)


def test_stale_check_conflicts(store: VariantStore, constructors) -> None:
    v = canary_on(store, constructors)
    record_check(store, v, False, CFG, now=1.0)
    with pytest.raises(VersionConflict):
        record_check(store, v, False, CFG, now=2.0)


def test_health_assessment() -> None:
    def s(mean: float) -> MetricStats:
        return MetricStats(10, mean, mean, mean)

    policy = HealthPolicy(min_success_rate=0.9, max_latency_s=0.5, min_kupiec_p=0.05)
    assert assess({"success_rate": s(0.99), "latency_s": s(0.1)}, policy).passed
    bad = assess({"success_rate": s(0.5), "latency_s": s(2.0), "kupiec_p": s(0.001)}, policy)
    assert not bad.passed and len(bad.reasons) == 3
    assert not assess({}, policy).passed  # no evidence is no pass
    good = {"success_rate": s(0.99), "latency_s": s(0.1)}
    tripped = assess(good, policy, BreakerSnapshot(BreakerState.OPEN, 5, 0, 1.0))
    assert tripped.reasons == ("circuit breaker is open",)
    assert assess(good, policy, BreakerSnapshot()).passed
    assert replace(policy, min_records=20) != policy
