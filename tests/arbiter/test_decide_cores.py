"""Cores, the decision vector and every threshold's boundary."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from swarmvar.arbiter import (
    SEED_MODEL,
    SEED_THRESHOLDS,
    AgentSignals,
    BalanceTarget,
    BeatSignals,
    DecisionVector,
    Genome,
    PidGains,
    Thresholds,
    aggregate_recommendations,
    balance_core,
    decide,
    optimize_core,
    regen_core,
    run_cores,
)
from swarmvar.arbiter.threat import FEATURES
from swarmvar.errors import InvalidParameter
from swarmvar.types import Action


def agent(name: str, breaches: tuple[bool, ...] = (False, False), *, drifting: bool = False,
          low: bool = False, lagging: bool = False, failed: bool = False) -> AgentSignals:
    return AgentSignals(name, breaches, (3.0 if drifting else 0.0, 0.0), -0.2 if lagging else 0,
                        low, False, failed, drifting, lagging)


def beat(agents: list[AgentSignals], anomalies: float | None = None) -> BeatSignals:
    total = sum(a.anomalies for a in agents) if anomalies is None else anomalies
    features = (float(total),) + (0.0,) * (len(FEATURES) - 1)
    return BeatSignals("p", 7, 0.0, tuple(agents), (False, False), (0.0, 0.0), 0.0, False,
                       features)


def vector(threat: float = 0.0, stability: float = 1.0, repair: float = 0.0,
           gain: float = 0.0) -> DecisionVector:
    return DecisionVector(threat, stability, repair, gain, (repair, stability, threat, gain))


BAD = agent("bad", (True, True), drifting=True, low=True)
CLEAN = [agent(n) for n in "bcde"]


def test_core_formulas_and_mapping() -> None:
    s = beat([BAD, *CLEAN], anomalies=5)
    assert regen_core(s, Genome()).urgency == 0.05
    assert regen_core(beat([BAD], anomalies=500), Genome()).urgency == 0.9
    assert regen_core(s, Genome()).cost == pytest.approx(0.2)
    assert balance_core(s, Genome(), PidGains()).conserve == pytest.approx(0.8)
    assert optimize_core(Genome()).expected_gain == pytest.approx(0.35 * 0.12)
    assert optimize_core(Genome(0.01, 0.01, 0.01, 10.0)).expected_gain == 0.5
    out = run_cores(s, Genome(), SEED_MODEL)
    v = aggregate_recommendations(out, Genome())
    assert v.threat == pytest.approx(0.6457, abs=5e-5)  # 5 anomalies, the design's model
    assert v.repair == out.regen.urgency and v.stability == out.balance.conserve
    assert v.emphasis == pytest.approx((0.25 * 0.05, 0.25 * 0.8, 0.15 * v.threat,
                                        0.35 * 0.042))


def test_cores_serial_and_on_a_pool_agree() -> None:
    s = beat([BAD, *CLEAN])
    with ThreadPoolExecutor(4) as pool:
        assert run_cores(s, Genome(), SEED_MODEL, pool=pool) == run_cores(s, Genome(),
                                                                           SEED_MODEL)


@pytest.mark.parametrize(("threat", "action"), [
    (0.85, Action.QUARANTINE), (0.8499999, Action.ALERT), (0.60, Action.ALERT),
    (0.5999999, Action.NOOP)])
def test_threat_boundaries(threat: float, action: Action) -> None:
    d = decide(vector(threat=threat), beat([BAD, *CLEAN]), thresholds=SEED_THRESHOLDS)
    assert d.action is action
    assert d.threat == threat and d.portfolio == "p" and d.seq == 7
    if action is Action.QUARANTINE:
        assert d.agents == ("bad",)
    assert d.signals["threat"] == threat
    if action is not Action.NOOP:
        assert d.signals["anomalies:bad"] == BAD.anomalies


def test_default_quarantine_threshold_is_raised() -> None:
    assert Thresholds().quarantine == 0.95
    assert decide(vector(threat=0.9), beat([BAD, *CLEAN])).action is Action.ALERT
    assert decide(vector(threat=0.95), beat([BAD, *CLEAN])).action is Action.QUARANTINE


@pytest.mark.parametrize(("stability", "repair", "action"), [
    (0.25, 0.0, Action.NOOP), (0.2500001, 0.0, Action.APPLY_BALANCE),
    (1.0, 0.1, Action.NOOP), (1.0, 0.0999999, Action.APPLY_BALANCE)])
def test_balance_boundaries(stability: float, repair: float, action: Action) -> None:
    d = decide(vector(stability=stability, repair=repair), beat([BAD, *CLEAN]),
               thresholds=Thresholds(balance_on=BalanceTarget.TAIL))
    assert d.action is action
    if action is Action.APPLY_BALANCE:
        assert d.agents == ("bad",)
        assert d.weights == {"bad": pytest.approx(1 / (1 + 0.5 * BAD.anomalies))}


def test_default_balance_targets_lagging_or_failed_agents() -> None:
    lag, broken = agent("slow", lagging=True), agent("broken", failed=True)
    d = decide(vector(stability=1.0), beat([BAD, lag, broken, *CLEAN[:2]]))
    assert d.action is Action.APPLY_BALANCE and d.agents == ("slow", "broken")
    assert d.weights == {"slow": pytest.approx(2 / 3), "broken": pytest.approx(2 / 3)}
    # a breaching, drifting agent alone is left to the track-record weights
    assert decide(vector(stability=1.0), beat([BAD, *CLEAN])).action is Action.NOOP
    any_ = decide(vector(stability=1.0), beat([BAD, *CLEAN]),
                  thresholds=Thresholds(balance_on=BalanceTarget.ANY))
    assert any_.action is Action.APPLY_BALANCE


@pytest.mark.parametrize(("gain", "action"), [(0.1, Action.NOOP),
                                              (0.1000001, Action.APPLY_OPTIMIZE)])
def test_optimize_boundary(gain: float, action: Action) -> None:
    lag = agent("slow", lagging=True)
    d = decide(vector(stability=0.0, gain=gain), beat([lag, *CLEAN]))
    assert d.action is action
    if action is Action.APPLY_OPTIMIZE:
        assert d.agents == ("slow",)


def test_nothing_to_act_on_falls_through() -> None:
    assert decide(vector(stability=1.0), beat(CLEAN)).action is Action.NOOP  # no one to balance
    assert decide(vector(gain=0.4, stability=0), beat(CLEAN)).action is Action.NOOP  # no refit


def test_quarantine_keeps_enough_agents() -> None:
    bads = [agent(f"bad{i}", (True, True), drifting=True) for i in range(4)]
    d = decide(vector(threat=0.99), beat([*bads, agent("ok")]))
    assert d.action is Action.QUARANTINE and len(d.agents) == 2  # 5 - 3
    d = decide(vector(threat=0.99), beat([*bads, agent("ok")]), excluded={"bad0", "bad1"})
    assert d.action is Action.ALERT  # no room left
    d = decide(vector(threat=0.99), beat(CLEAN))
    assert d.action is Action.ALERT and "no agent to quarantine" in d.reason


@pytest.mark.parametrize("kw", [dict(alert=0.9, quarantine=0.8), dict(gain=float("nan")),
                                dict(min_agents=0), dict(balance_strength=-1.0)])
def test_bad_thresholds(kw: dict[str, float]) -> None:
    with pytest.raises(InvalidParameter):
        Thresholds(**kw)  # type: ignore[arg-type]
