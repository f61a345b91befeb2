"""Drift drill and the per-agent quarantine rule (simulated histories with known truth)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from swarmvar.arbiter import (
    SEED_THRESHOLDS,
    AgentSignals,
    Arbiter,
    ArbiterConfig,
    BeatSignals,
    DecisionVector,
    Thresholds,
    decide,
)
from swarmvar.arbiter.drill import Drift, drifted, drill
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.replay import replay
from swarmvar.arbiter.signals import breach_tail_p, effective_window
from swarmvar.arbiter.threat import FEATURES
from swarmvar.errors import InvalidParameter
from swarmvar.types import Action, Decision

SIX = (1.0, 1.0, 1.05, 1.1, 1.15, 1.2)  # six calibrated-or-conservative agents


@pytest.mark.parametrize(("n", "k", "p"), [(499, 14, 0.01), (499, 25, 0.025), (119, 6, 0.01),
                                           (49, 3, 0.025)])
def test_breach_tail_p_is_the_binomial_tail(n: int, k: int, p: float) -> None:
    lam = (n - 1) / (n + 1)  # effective window of exactly n beats
    assert effective_window(lam) == pytest.approx(n)
    tail, count, size = breach_tail_p(k / n, p, lam)
    assert (count, size) == (pytest.approx(k), pytest.approx(n))
    assert tail == pytest.approx(float(binom.sf(k - 1, n, p)), rel=1e-9)
    assert breach_tail_p(p / 2, p, lam)[0] == 1.0  # no excess: no evidence


def test_a_drifting_agent_is_alerted_then_quarantined_with_its_evidence() -> None:
    history = simulated_history(days=260, seed=3, scales=SIX)
    result = drill(history, Arbiter(), Drift("C", 60, scale=0.4))
    assert result.first_alert is not None and result.first_quarantine is not None
    assert result.first_alert <= result.first_quarantine < 120
    assert result.wrong == 0 and result.held_days > 0
    assert "C breaches" in result.reason and "of 499" in result.reason
    p = float(result.reason.split("binomial p = ")[1].split()[0])
    assert p < Thresholds().agent_p


def test_clean_data_no_quarantine_and_the_swarm_rule_alone_misses_the_drift() -> None:
    history = simulated_history(days=260, seed=3, scales=SIX)
    clean = drill(history, Arbiter(), None)
    assert clean.quarantines == 0 and clean.wrong == 0
    off = Arbiter(ArbiterConfig(thresholds=Thresholds(agent_p=0.0)))
    assert drill(history, off, Drift("C", 60, scale=0.4)).first_quarantine is None


def test_quarantine_goes_through_the_breaker_and_the_decision_names_it() -> None:
    history = simulated_history(days=200, seed=3, scales=SIX)
    arbiter = Arbiter()
    decisions: list[Decision] = []
    out = replay(drifted(history, Drift("C", 40, scale=0.4)), arbiter,
                 on_decision=decisions.append)
    q = [d for d in decisions if d.action is Action.QUARANTINE]
    assert q and all(d.agents == ("C",) for d in q)
    j = history.agents.index("C")
    assert out.excluded[q[0].seq + 1, j]  # held out of the next consensus
    assert not out.excluded[:, [i for i in range(len(SIX)) if i != j]].any()


def test_drifted_history_scales_freezes_and_recomputes_the_consensus() -> None:
    h = simulated_history(days=120, seed=1, scales=SIX)
    same = drifted(h, Drift("B", 50, scale=1.0))
    np.testing.assert_allclose(same.consensus, h.consensus, rtol=0, atol=1e-15)
    low = drifted(h, Drift("B", 50, scale=0.5))
    np.testing.assert_array_equal(low.cols[:, :, 50:, 1], 0.5 * h.cols[:, :, 50:, 1])
    np.testing.assert_array_equal(low.cols[:, :, :50], h.cols[:, :, :50])
    np.testing.assert_array_equal(low.consensus[:, :, :50], h.consensus[:, :, :50])
    stuck = drifted(h, Drift("B", 50, frozen=True))
    assert (stuck.cols[:, :, 50:, 1] == stuck.cols[:, :, 50:51, 1]).all()


def test_per_agent_rule_never_leaves_fewer_than_three_and_seed_has_none() -> None:
    def bad(name: str, p: float) -> AgentSignals:
        return AgentSignals(name, (True, False), (4.0, 0.0), 0.0, True, False, False, True,
                            False, tail_p=(p, 1.0),
                            tail_counts=((0.99, 15.0, 499.0), (0.975, 12.0, 499.0)))

    agents = tuple(bad(n, 1e-5 * (i + 1)) for i, n in enumerate("abcdef"))
    s = BeatSignals("p", 9, 0.0, agents, (False, False), (0.0, 0.0), 0.0, False,
                    (1.0,) + (0.0,) * (len(FEATURES) - 1))
    v = DecisionVector(0.1, 1.0, 0.0, 0.0, (0.0, 1.0, 0.1, 0.0))
    d = decide(v, s, excluded=("e", "f"))
    assert d.action is Action.QUARANTINE and d.agents == ("a",)  # 6 - 2 - 1 = 3 left
    assert "a breaches 15.0 of 499" in d.reason and "p = 1e-05" in d.reason
    assert decide(v, s, excluded=("d", "e", "f")).action is not Action.QUARANTINE
    assert decide(v, s, thresholds=SEED_THRESHOLDS).action is not Action.QUARANTINE
    # the count alone is not enough: an agent whose VaR is not below the others' intervals
    inside = dataclasses.replace(agents[0], outside_low=False, tail_p=(1e-9, 1.0))
    s2 = dataclasses.replace(s, agents=(inside, *agents[1:]))
    assert decide(v, s2, excluded=("e", "f")).agents == ("b",)


def test_a_restored_arbiter_decides_as_the_uninterrupted_one() -> None:
    """The per-agent rule reads only state the checkpoint carries: cut before, at and
    after the first quarantine, the restored arbiter's decisions are the same."""
    h = drifted(simulated_history(days=260, seed=3, scales=SIX), Drift("C", 60, scale=0.4))
    beats = list(h.beats(h.name))

    def run(arbiter: Arbiter, part: list) -> list[tuple]:
        out = []
        for report in part:
            (d,) = arbiter.observe(report, beat_seconds=0.01)
            out.append((d.action, d.agents, tuple(sorted(arbiter.excluded(h.name)))))
        return out

    full = run(Arbiter(), beats)
    first_q = next(i for i, x in enumerate(full) if x[0] is Action.QUARANTINE)
    for cut in (first_q - 5, first_q + 1, first_q + 10):
        a = Arbiter()
        head = run(a, beats[:cut])
        b = Arbiter()
        b.restore_state(h.name, a.checkpoint_state(h.name), h.agents)
        assert head + run(b, beats[cut:]) == full


@settings(max_examples=60, deadline=None)
@given(scale=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda x: not (math.isfinite(x) and x > 0)), st.booleans()),
    start=st.integers(-5, 0))
def test_bad_drifts_are_refused(scale: float, start: int) -> None:
    with pytest.raises(InvalidParameter):
        Drift("A", 5, scale=scale)
    with pytest.raises(InvalidParameter):
        Drift("A", start, scale=0.5)
    with pytest.raises(InvalidParameter):
        Drift("A", 5)
    with pytest.raises(InvalidParameter):
        Drift("A", 5, scale=0.5, frozen=True)


@settings(max_examples=30, deadline=None)
@given(p=st.one_of(st.floats(allow_nan=True).filter(lambda x: not 0 <= x < 1),
                   st.booleans()))
def test_bad_agent_p_is_refused(p: float) -> None:
    with pytest.raises(InvalidParameter):
        Thresholds(agent_p=p)


def test_unknown_agent_or_late_start_is_refused() -> None:
    h = simulated_history(days=40, seed=1, scales=SIX)
    with pytest.raises(InvalidParameter, match="no agent 'Z'"):
        drifted(h, Drift("Z", 5, scale=0.5))
    with pytest.raises(InvalidParameter, match="past the history"):
        drifted(h, Drift("A", 40, scale=0.5))


def test_replay_report_of_a_drifted_history() -> None:
    from swarmvar.arbiter.replay import replay_report
    from swarmvar.swarm.consensus import SWARM_POLICY

    h = simulated_history(days=200, seed=3, scales=SIX)
    seen: list[Decision] = []
    report = replay_report(h, Arbiter(), SWARM_POLICY, drift=Drift("C", 60, scale=0.4),
                           on_decision=seen.append)
    assert report.outcome.counts.get(Action.QUARANTINE, 0) >= 1
    assert any(d.action is Action.QUARANTINE and d.agents == ("C",) for d in seen)
    assert report.outcome.excluded[:, h.agents.index("C")].any()


def test_a_prebuilt_drifted_history_replays_as_the_drift_itself() -> None:
    history = simulated_history(days=260, seed=3, scales=SIX)
    drift = Drift("C", 60, scale=0.4)
    assert drill(history, Arbiter(), drift, drifted_history=drifted(history, drift)) == drill(
        history, Arbiter(), drift)
    with pytest.raises(InvalidParameter, match="needs the drift"):
        drill(history, Arbiter(), None, drifted_history=history)
