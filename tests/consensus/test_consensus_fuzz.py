"""Hypothesis fuzzing of combine's inputs: a SwarmVarError or a correct consensus, never a crash."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    DEFAULT_POLICY,
    MAX_MAGNITUDE,
    Aggregator,
    KeyRing,
    LevelForecasts,
    Policy,
    StalenessBound,
    TrackRecord,
    Weighting,
    combine,
    consensus_levels,
    sign_estimate,
    signing_bytes,
    widen_interval,
)
from swarmvar.errors import InvalidParameter, NotEnoughAgents, SwarmVarError
from swarmvar.types import Consensus, Estimate

from .conftest import NOW, agent_key, estimate

AGENTS = [f"a{i}" for i in range(7)]
KEYS = {a: agent_key(i) for i, a in enumerate(AGENTS)}

magnitudes = st.sampled_from([0.0, 5e-324, 2.2e-308, 1e-300, 1e-12, 0.02, 1.0, 1e6, 1e100,
                              1e154, 1e200, 1e300, 1.7e308]) | st.floats(0, 1e308)


def ring() -> KeyRing:
    return KeyRing({a: k.public_key() for a, k in KEYS.items()})


junk = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.dictionaries(
    st.text(max_size=3), st.integers(), max_size=2), st.floats(allow_nan=True))


@st.composite
def signed_estimates(draw: st.DrawFn, agent: str) -> object:
    var = draw(st.floats(0.005, 0.08) | magnitudes)
    ratio = draw(st.sampled_from([1.0, 1.25, 1.25, 1e10]))
    es = var * ratio if math.isfinite(var * ratio) else var
    lo = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])) * var
    hi = var * draw(st.sampled_from([1.0, 1.1, 2.0]))
    hi = hi if math.isfinite(hi) else var
    e = estimate(agent, var, es=es, var_interval=(lo, hi), es_interval=(lo, max(hi, es)),
                 seq=draw(st.sampled_from([1, 1, 1, 2, 3, 10**12])),
                 as_of=NOW + timedelta(days=draw(st.sampled_from([-30, -1, 0, 0, 0, 0, 2]))))
    return force_sign(e)


@st.composite
def batches(draw: st.DrawFn) -> list[object]:
    agents = draw(st.lists(st.sampled_from(AGENTS), min_size=0, max_size=7, unique=True))
    items = [draw(signed_estimates(a)) for a in agents]
    items += draw(st.lists(junk, max_size=3))
    return draw(st.permutations(items))


def force_sign(e: Estimate) -> Estimate:
    """Sign as a Byzantine agent would: whatever the fields hold (sign_estimate refuses junk)."""
    return dataclasses.replace(e, signature=KEYS[e.agent_id].sign(signing_bytes(e)))


policies = st.sampled_from([
    Policy(f=1),
    Policy(f=1, aggregator=Aggregator.MEDIAN),
    Policy(f=1, aggregator=Aggregator.GEOMETRIC_MEDIAN),
    Policy(f=1, aggregator=Aggregator.MULTI_KRUM),
    Policy(f=1, staleness=StalenessBound(max_versions=2, max_age=86_400.0)),
    DEFAULT_POLICY,
])


def check_result(out: Consensus, honest: list[float]) -> None:
    for x in (out.var, out.es, *out.var_interval, *out.es_interval):
        assert math.isfinite(x)
    assert out.var_interval[0] <= out.var <= out.var_interval[1]
    assert out.es_interval[0] <= out.es <= out.es_interval[1]
    assert out.es >= out.var >= 0.0
    assert min(honest) <= out.var <= max(honest)


@pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")  # doubt, not error
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), policies)
def test_combine_refuses_clearly_or_serves_a_finite_consensus(items: list[object],
                                                              policy: Policy) -> None:
    kr = ring()
    try:
        out = combine(items, policy, keyring=kr, now=NOW,  # type: ignore[arg-type]
                      portfolio="spx", alpha=0.99, horizon=1)
    except SwarmVarError as exc:
        event(f"refused: {type(exc).__name__}")
        return
    event("served")
    used = [e for e in items if getattr(e, "agent_id", None) in out.used]
    check_result(out, [e.var for e in items if hasattr(e, "var")])  # type: ignore[union-attr]
    assert all(e.var <= MAX_MAGNITUDE and e.as_of <= NOW for e in used)  # type: ignore[union-attr]


def fresh(values: list[float], seqs: list[int] | None = None) -> list[object]:
    seqs = seqs or [1] * len(values)
    return [sign_estimate(estimate(a, v, seq=s), KEYS[a])
            for a, v, s in zip(AGENTS, values, seqs, strict=False)]


@pytest.mark.parametrize("bad", [None, {}, "a0", 3, 1.5])
def test_junk_in_the_list_is_refused_as_malformed(bad: object) -> None:
    out = combine([*fresh([0.02, 0.021, 0.022]), bad], Policy(f=1), keyring=ring(), now=NOW)
    assert out.available == 3 and 0.02 <= out.var <= 0.022
    with pytest.raises(NotEnoughAgents):
        combine([bad], Policy(f=1), keyring=ring(), now=NOW)


@pytest.mark.parametrize("bad", [None, "ring", {}, 3])
def test_keyring_and_list_types_are_checked(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="keyring"):
        combine(fresh([0.02, 0.021, 0.022]), Policy(f=1), keyring=bad, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="estimates"):
        combine(bad, Policy(f=1), keyring=ring(), now=NOW)  # type: ignore[arg-type]


def test_extreme_magnitudes_are_refused_and_subnormals_served() -> None:
    huge = force_sign(estimate("a3", 1e154, es=1e154, var_interval=(1e154, 1e154),
                               es_interval=(1e154, 1e154)))
    out = combine([*fresh([0.02, 0.021, 0.022]), huge], Policy(f=1), keyring=ring(), now=NOW)
    assert "a3" in out.rejected and "magnitude" in out.rejected["a3"]
    tiny = fresh([5e-324, 1e-310, 0.0])
    out = combine(tiny, Policy(f=1), keyring=ring(), now=NOW, total=7)
    assert 0.0 <= out.var <= 1e-310 and all(map(math.isfinite, out.var_interval))


def test_future_dated_estimates_are_refused() -> None:
    late = sign_estimate(estimate("a3", 0.5, as_of=NOW + timedelta(hours=1)), KEYS["a3"])
    out = combine([*fresh([0.02, 0.021, 0.022]), late],
                  Policy(f=1, staleness=StalenessBound(max_age=86_400.0)), keyring=ring(), now=NOW)
    assert "a3" in out.rejected and "after" in out.rejected["a3"]
    assert out.var < 0.1


def test_one_agent_inflating_its_seq_cannot_make_the_honest_quorum_stale() -> None:
    policy = Policy(f=1, staleness=StalenessBound(max_versions=2))
    items = fresh([0.02, 0.021, 0.022, 0.9], seqs=[5, 5, 6, 10**12])
    out = combine(items, policy, keyring=ring(), now=NOW)
    assert set(out.used) | set(out.trimmed) >= {"a0", "a1", "a2"}
    assert not out.rejected  # ahead of the quorum is not stale; its value is trimmed
    assert "a3" in out.trimmed and out.var <= 0.022


def test_default_policy_with_a_track_record_and_junk() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, 300)
    v = np.abs(rng.normal(0.025, 0.003, (300, 4)))
    rec = TrackRecord(tuple(AGENTS[:4]), r, 0.99, v, v * 1.2)
    out = combine([*fresh([0.02, 0.021, 0.022, 0.03]), None, {"var": 1}], DEFAULT_POLICY,
                  keyring=ring(), now=NOW, track_record=rec)
    assert DEFAULT_POLICY.weighting is Weighting.TEMPERED
    assert 0.02 <= out.var <= 0.03 and out.method.endswith("tempered)")


@settings(max_examples=150, deadline=None)
@given(st.floats(0, 1e308) | magnitudes, st.floats(0, 1e308), st.floats(0, 1e308),
       st.floats(0, 1e6), st.integers(1, 9), st.integers(0, 5))
def test_widen_interval_is_finite_or_refuses(point, low, spread, days, m, extra):
    try:
        lo, hi = widen_interval(point, (max(point - low, 0.0), point + low if math.isfinite(
            point + low) else point), available=m, total=m + extra, spread=spread,
            staleness_days=days, drift=0.05)
    except SwarmVarError:
        return
    assert math.isfinite(lo) and math.isfinite(hi) and lo <= point <= hi


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(magnitudes, min_size=5, max_size=5), min_size=3, max_size=8),
       st.sampled_from([Weighting.EQUAL, Weighting.TEMPERED, Weighting.TRACK_RECORD]))
def test_consensus_levels_on_extreme_paths_is_finite_or_refuses(rows, weighting):
    var = np.array(rows)
    r = np.linspace(-0.02, 0.02, var.shape[0])
    levels = {0.99: LevelForecasts(var, var * np.where(var < 1e300, 1.2, 1.0))}
    try:
        out = consensus_levels(r, levels, Policy(f=1, weighting=weighting, window=5))
    except SwarmVarError:
        return
    p = out[0.99]
    assert np.all(np.isfinite(p.var)) and np.all(np.isfinite(p.es))
    assert np.all(p.var >= var.min(axis=1)) and np.all(p.var <= var.max(axis=1))
