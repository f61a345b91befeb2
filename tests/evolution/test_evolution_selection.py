"""Registry, versions and the selection score."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import UnknownAgent
from swarmvar.evolution import (
    AgentRegistry,
    BreakerConfig,
    BreakerSnapshot,
    BreakerState,
    CanaryConfig,
    Database,
    InvalidCapabilities,
    MemoryVariantStore,
    MetricStats,
    VariantStatus,
    Version,
    agent_profile,
    candidate,
    is_compatible,
    missing_requirements,
    new_variant,
    routed_to_canary,
    score,
    select,
    start_canary,
)
from swarmvar.evolution.selection import (
    compatibility_score,
    performance_score,
    stability_score,
)

CFG = BreakerConfig()


def test_versions_compare_as_numbers() -> None:
    assert Version.parse("1.10") > Version.parse("1.9")
    assert Version.parse("1.2") == Version.parse("1.2.0")
    assert Version.parse(3) == Version.parse("3.0.0")
    assert str(Version.parse("2")) == "2.0"
    for bad in ("", "1.x", "-1", "1..2", None, 1.5, "latest"):
        with pytest.raises(InvalidCapabilities):
            Version.parse(bad)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"capabilities": {"jax": "new"}}, "capability 'jax'"),
    ({"capabilities": ["jax"]}, "must map names to versions"),
    ({"capabilities": {"": "1"}}, "capability name"),
    ({"capabilities": {}, "preferences": {"A": -1}}, "weights must be finite"),
    ({"capabilities": {}, "preferences": {"A": 0}}, "all zero"),
    ({"capabilities": {}, "custom": {"x": object()}}, "custom data"),
    ({"capabilities": {}, "version": "v2"}, "version of a1"),
])
def test_malformed_profiles_are_refused(tmp_path: Path, kwargs, match) -> None:
    reg = AgentRegistry(Database(tmp_path))
    with pytest.raises(InvalidCapabilities, match=match):
        reg.register(agent_profile("a1", **kwargs))
    assert reg.list() == []


def test_registry_round_trip_and_normalized_preferences(tmp_path: Path) -> None:
    reg = AgentRegistry(Database(tmp_path))
    p = agent_profile("a1", {"jax": "0.4.30", "numpy": 2}, platform="linux-x86_64",
                      preferences={"NormalInverseGamma": 3, "GarchLike": 1}, custom={"k": 1})
    assert sum(p.preferences.values()) == pytest.approx(1.0)
    assert p.preferences["NormalInverseGamma"] == 0.75
    reg.register(p)
    assert reg.get("a1") == p
    with pytest.raises(UnknownAgent):
        reg.get("a2")


def test_compatibility(constructors) -> None:
    v = new_variant("NormalInverseGamma", {"forgetting": 0.9}, constructors, now=0.0,
                    requirements={"jax": "0.4.30", "numpy": "1.26"})
    ok = agent_profile("a", {"jax": "0.4.31", "numpy": "2.0"})
    old = agent_profile("b", {"jax": "0.4.9", "numpy": "2.0"})
    none = agent_profile("c", {"numpy": "2.0"})
    assert is_compatible(v, ok) and not is_compatible(v, old) and not is_compatible(v, none)
    assert missing_requirements(v, old) == {"jax": "needs jax >= 0.4.30, agent has 0.4.9"}
    assert "agent has none" in missing_requirements(v, none)["jax"]


def test_score_parts_follow_the_docs(constructors) -> None:
    m = {"success_rate": MetricStats(10, 0.9, 0.8, 1.0),
         "latency_s": MetricStats(10, 1.0, 0.5, 2.0),
         "kupiec_p": MetricStats(10, 0.025, 0.0, 0.1)}
    assert performance_score(m) == pytest.approx((0.9 + 0.5 + 0.5) / 3)
    assert performance_score({}) == 0.5
    closed2 = BreakerSnapshot(failures=2)
    assert stability_score(VariantStatus.ACTIVE, closed2, CFG) == pytest.approx(0.6)
    assert stability_score(VariantStatus.CANARY, BreakerSnapshot(), CFG) == 0.5
    assert stability_score(VariantStatus.ACTIVE, BreakerSnapshot(BreakerState.OPEN), CFG) == 0
    v = new_variant("GarchLike", {"nu": 5.0}, constructors, now=0.0)
    prefs = agent_profile("a", {}, preferences={"NormalInverseGamma": 3, "GarchLike": 1})
    assert compatibility_score(v, prefs) == pytest.approx(0.5 + 0.5 / 3)
    assert compatibility_score(v, agent_profile("b", {})) == 1.0
    c = candidate(v, m, closed2, CFG)
    expected = 0.3 * performance_score(m) + 0.4 * (0.5 + 0.5 / 3) + 0.3 * 0.0
    assert score(c, prefs) == pytest.approx(expected)  # a draft has no stability


def test_select_best_compatible_and_canary_slice(constructors) -> None:
    store = MemoryVariantStore()
    good = store.promote(store.add(new_variant(
        "NormalInverseGamma", {"forgetting": 0.97}, constructors, now=0.0)), now=1.0)
    needs_gpu = store.promote(store.add(new_variant(
        "GarchLike", {"nu": 6.0}, constructors, now=0.0, requirements={"cuda": "12"})), now=1.0)
    canary = start_canary(store, store.add(new_variant(
        "NormalInverseGamma", {"forgetting": 0.9}, constructors, now=0.0)), CanaryConfig(), 2.0)
    draft = store.add(new_variant("GarchLike", {"nu": 9.0}, constructors, now=0.0))
    healthy = {"success_rate": MetricStats(5, 1.0, 1.0, 1.0)}
    cands = [candidate(good, healthy, BreakerSnapshot(), CFG),
             candidate(needs_gpu, healthy, BreakerSnapshot(), CFG),
             candidate(canary, {}, BreakerSnapshot(), CFG),
             candidate(draft, healthy, BreakerSnapshot(), CFG)]
    agents = [agent_profile(f"agent-{i}", {}) for i in range(400)]
    chosen = {a.agent_id: select(a, cands) for a in agents}
    on_canary = {a.agent_id for a in agents if routed_to_canary(canary, a.agent_id)}
    assert 0 < len(on_canary) < 100
    for a in agents:
        expected = canary if a.agent_id in on_canary else good
        assert chosen[a.agent_id] == expected  # GPU variant incompatible, draft never runs
    off = next(a.agent_id for a in agents if a.agent_id not in on_canary)
    gpu_agent = agent_profile(off, {"cuda": "12.2"})
    assert select(gpu_agent, cands, agent_class="GarchLike") == needs_gpu
    # an open breaker takes a variant out
    cands[0] = candidate(good, healthy, BreakerSnapshot(BreakerState.OPEN), CFG)
    assert select(agent_profile(off, {}), cands) is None


def brute_force(agent, cands, agent_class=None):
    """The rule as stated in the docs, computed the slow way."""
    eligible = []
    for c in cands:
        v = c.variant
        if not c.available or (agent_class and v.agent_class != agent_class):
            continue
        if v.status not in (VariantStatus.ACTIVE, VariantStatus.CANARY):
            continue
        if v.status is VariantStatus.CANARY and not routed_to_canary(v, agent.agent_id):
            continue
        if compatibility_score(v, agent) == 0:
            continue
        eligible.append(((v.status is VariantStatus.CANARY, score(c, agent), v.id), v))
    return max(eligible, key=lambda e: e[0])[1] if eligible else None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_select_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = ("A", "B", "C")
    cons = {k: ("p",) for k in classes}
    store = MemoryVariantStore()
    cands = []
    for i in range(int(rng.integers(1, 12))):
        vid = str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 40, version=4))
        v = store.add(new_variant(str(rng.choice(classes)), {"p": i}, cons, now=0.0,
                                  variant_id=vid,
                                  requirements={"jax": f"0.{rng.integers(0, 3)}"}))
        kind = rng.integers(0, 3)
        if kind == 1:
            v = store.promote(v, now=1.0)
        elif kind == 2:
            v = start_canary(store, v, CanaryConfig(initial_fraction=0.5), now=1.0)
        stats = {"success_rate": MetricStats(3, float(rng.uniform()), 0.0, 1.0)}
        state = BreakerState.OPEN if rng.uniform() < 0.1 else BreakerState.CLOSED
        cands.append(candidate(v, stats, BreakerSnapshot(state, int(rng.integers(0, 4))), CFG))
    cands = [candidate(store.get(c.variant.id), {"success_rate": MetricStats(
        1, c.performance, 0, 1)}, BreakerSnapshot(), CFG) if rng.uniform() < 0.5 else c
        for c in cands]  # refresh some: earlier champions may have been retired since
    for j in range(30):
        prefs = {str(k): float(rng.uniform(0.1, 1)) for k in classes if rng.uniform() < 0.5}
        agent = agent_profile(f"agent-{j}", {"jax": f"0.{rng.integers(0, 3)}"},
                              preferences=prefs)
        for cls in (None, "A"):
            assert select(agent, cands, cls) == brute_force(agent, cands, cls)


def test_home_selects_from_stored_metrics_and_breakers(tmp_path: Path, constructors) -> None:
    from swarmvar.evolution import MetricRecord, open_home

    home = open_home(tmp_path)
    t = 1_700_000_000.0
    a = home.variants.promote(home.variants.add(new_variant(
        "NormalInverseGamma", {"forgetting": 0.97}, constructors, now=t)), now=t)
    b = home.variants.promote(home.variants.add(new_variant(
        "GarchLike", {"nu": 6.0}, constructors, now=t)), now=t)
    home.agents.register(agent_profile("agent-1", {"numpy": "2.0"}))
    home.metrics.record([MetricRecord(a.id, t + 10, 0.99, 0.01),
                         MetricRecord(b.id, t + 10, 0.60, 0.50)])
    assert home.select("agent-1", now=t + 20) == a  # better record
    breaker = home.breaker(a.id, clock=lambda: t + 30)
    for _ in range(5):
        breaker.record_failure()
    assert home.select("agent-1", now=t + 40) == b  # a is cut off
    scores = {c.variant.id: c for c in home.candidates(now=t + 40)}
    assert not scores[a.id].available and scores[b.id].performance == pytest.approx(
        (0.60 + 1 / 1.5) / 2)
    home.close()
