"""Agents held out of the consensus by something other than the arbiter (a sandbox's
breaker: the beat report's ``quarantined``) are left out of a balance, as quarantined ones
are, and said as any agent elsewhere; a refit the arbiter asks for a quarantined agent is
queued by the runtime."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from swarmvar.arbiter import Arbiter, ArbiterConfig, Thresholds
from swarmvar.arbiter.decide import BalanceTarget
from swarmvar.arbiter.history import simulated_history
from swarmvar.arbiter.step import ArbiterState, observe_step
from swarmvar.arbiter.threat import SEED_MODEL
from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.data import load
from swarmvar.swarm import RoleConfig, Swarm
from swarmvar.swarm.ticks import as_utc
from swarmvar.types import Action, BeatReport, Decision, Tick

#: a balance on every beat with an agent showing an anomaly (A, its VaR at 0.3 times the
#: true volatility, breaches often)
BALANCE = Thresholds(alert=1.0, quarantine=1.0, stability=0.0, repair=1.0, agent_p=0.0,
                     release_beats=0, balance_on=BalanceTarget.ANY)


def _reports() -> list[BeatReport]:
    h = simulated_history(12, seed=1, scales=(0.3, 1.0, 1.0, 1.0))
    return list(h.beats(h.name))


def test_a_balance_leaves_out_an_agent_a_sandbox_holds_out() -> None:
    """Beat 5 reports A held out of the consensus (a sandbox's breaker, not the arbiter's):
    the balance that down-weights A on every other beat leaves it out there (nothing to
    down-weight), and says nothing of a quarantine; the beats after balance it again."""
    reports = _reports()
    plain, held = (Arbiter(ArbiterConfig(thresholds=BALANCE)) for _ in range(2))
    for r in reports:  # 11 beats
        (was,) = plain.observe(r)
        assert was.action is Action.APPLY_BALANCE and "A" in was.weights, was.reason
        aside = r.seq == 5
        (d,) = held.observe(replace(r, quarantined=("A",)) if aside else r)
        if not aside:
            assert d == was
            continue
        assert "A" not in d.agents and "A" not in d.weights, d.reason
        assert "A" not in held.weight_factors(r.portfolio)
        assert held.excluded(r.portfolio) == frozenset()  # not the arbiter's quarantine
        assert not any(k.startswith("quarantined") for k in d.signals), d.signals
    assert "A" in held.weight_factors(reports[-1].portfolio)


def test_an_agent_held_out_otherwise_raises_alerts_without_quarantine_words() -> None:
    """Held out by a sandbox, A's anomalies still count and an ALERT names it as any agent,
    with no "(quarantined ...)" beside its name; observe_step takes ``aside`` as step does."""
    every = Thresholds(alert=0.0, quarantine=1.0, agent_p=0.0, release_beats=0)
    arbiter = Arbiter(ArbiterConfig(thresholds=every))
    state = ArbiterState()
    config = ArbiterConfig(thresholds=BALANCE)
    for r in _reports()[:4]:
        (d,) = arbiter.observe(replace(r, quarantined=("A",)))
        assert d.action is Action.ALERT and "A" in d.agents, d.reason
        assert "A (quarantined" not in d.reason and "A: " in d.reason, d.reason
        state, out = observe_step(state, r, config=config, model=SEED_MODEL, aside=("A",))
        assert "A" not in out.decision.weights, out.decision.reason


class _RefitQuarantined:
    """An observer holding StudentT out of every consensus and asking, on its first beat,
    for StudentT's refit (as a held APPLY_OPTIMIZE may since ba2eb02)."""

    def __init__(self) -> None:
        self.asked = False

    def observe(self, report: BeatReport) -> Sequence[Decision]:
        if self.asked:
            return ()
        self.asked = True
        return (Decision(Action.APPLY_OPTIMIZE, report.portfolio, report.seq, ("StudentT",),
                         {"gain": 0.5}, 0.7, "asking for a refit: StudentT"),)

    def excluded(self, portfolio: str) -> frozenset[str]:
        return frozenset({"StudentT"})

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        return {}


def test_a_refit_asked_for_a_quarantined_agent_is_queued_and_run(tmp_path: Path) -> None:
    """The runtime queues an APPLY_OPTIMIZE's refit for any of the portfolio's agents,
    quarantined ones too (how one can heal before its probation): the next beat refits
    StudentT, held out of both beats' consensus, for the arbiter."""
    series = load("sp500").iloc[:263]
    observer = _RefitQuarantined()
    swarm = Swarm(("sp500",), home=tmp_path,
                  agents=("NormalInverseGamma", "BayesianBootstrap", "StudentT"),
                  policy=dataclasses.replace(DEFAULT_POLICY, f=0), window=250, fsync=False,
                  roles=RoleConfig.quiet(), observers=[observer])
    try:
        swarm.start({"sp500": series.iloc[:260]})
        reports = [swarm.step(Tick("sp500", as_utc(day), value=float(value)))
                   for day, value in series.iloc[260:262].items()]
    finally:
        swarm.close()
    first, second = reports
    assert [d.action for d in first.decisions] == [Action.APPLY_OPTIMIZE]
    assert all(r.quarantined == ("StudentT",) for r in reports)
    assert not any("StudentT" in e for e in first.events), first.events
    refits = [e for e in second.events if e.startswith("forager: refit")]
    assert refits and all(e.endswith("(StudentT)") for e in refits), second.events
