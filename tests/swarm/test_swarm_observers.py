"""Observers (the arbiter): quarantine, balance, optimize and alert decisions take effect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from swarmvar.arbiter import Arbiter
from swarmvar.ledger import Ledger
from swarmvar.swarm import BeatObserver
from swarmvar.types import Action, BeatReport, Decision, Tick

from .conftest import CHEAP, make_swarm


class Scripted:
    """Decides from a script: beat seq -> decisions; quarantines from a set."""

    def __init__(self, script: Mapping[int, Sequence[Decision]]) -> None:
        self.script = script
        self.out: set[str] = set()
        self.factors: dict[str, float] = {}
        self.seen: list[int] = []

    def observe(self, report: BeatReport) -> Sequence[Decision]:
        self.seen.append(report.seq)
        ds = list(self.script.get(report.seq, ()))
        for d in ds:
            if d.action is Action.QUARANTINE:
                self.out |= set(d.agents)
            if d.action is Action.APPLY_BALANCE:
                self.factors = dict(d.weights)
        return ds

    def excluded(self, portfolio: str) -> frozenset[str]:
        return frozenset(self.out)

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        return self.factors


def _ticks(swarm, sp500, n):
    day = swarm.last_as_of["sp500"]
    return [Tick("sp500", day + timedelta(days=k + 1), value=float(sp500.iloc[300 + k]))
            for k in range(n)]


def test_decisions_take_effect_and_are_recorded(tmp_path, sp500):
    script = {
        2: [Decision(Action.ALERT, "sp500", 2, reason="test alert")],
        3: [Decision(Action.QUARANTINE, "sp500", 3, agents=("StudentT",))],
        5: [Decision(Action.APPLY_OPTIMIZE, "sp500", 5, agents=("NormalInverseGamma",))],
        6: [Decision(Action.APPLY_BALANCE, "sp500", 6, weights={"BayesianBootstrap": 0.0})],
    }
    obs = Scripted(script)
    assert isinstance(obs, BeatObserver)
    # four agents: with one quarantined the trimmed mean (f=1) still has three
    swarm = make_swarm(tmp_path, agents=(*CHEAP, "GarchT"), observers=[obs],
                       checkpoint_every=10**6)
    with swarm:
        swarm.start({"sp500": sp500.iloc[:250]})
        reps = [swarm.step(t) for t in _ticks(swarm, sp500, 8)]
    assert obs.seen == list(range(1, 9))
    assert reps[1].decisions[0].action is Action.ALERT
    before, after = reps[2].consensus[0], reps[3].consensus[0]
    assert (before.available, before.total) == (4, 4)
    assert (after.available, after.total) == (3, 4) and reps[3].quarantined == ("StudentT",)
    # one of three missing: the partition rule widens the interval beyond the agents' spread
    assert "StudentT" not in after.used + after.trimmed
    assert after.var_interval[1] - after.var_interval[0] > 0
    assert any("refit-done (NormalInverseGamma)" in e for e in reps[5].events)
    assert "balanced" in reps[6].consensus[0].method
    assert "BayesianBootstrap" not in reps[6].consensus[0].weights
    with Ledger.open(tmp_path) as ledger:
        kinds = [e.data["action"] for e in ledger.entries() if e.kind == "decision"]
    assert kinds == ["alert", "quarantine", "apply_optimize", "apply_balance"]


def test_the_arbiter_observes_the_live_swarm(tmp_path, sp500):
    arbiter = Arbiter(record_decisions=False)
    swarm = make_swarm(tmp_path, agents=CHEAP, observers=[arbiter], checkpoint_every=10**6)
    with swarm:
        swarm.start({"sp500": sp500.iloc[:250]})
        reps = [swarm.step(t) for t in _ticks(swarm, sp500, 12)]
    assert all(len(r.decisions) == 1 for r in reps)
    with Ledger.open(tmp_path) as ledger:
        decisions = [e for e in ledger.entries() if e.kind == "decision"]
    assert len(decisions) == 12


def test_agents_run_their_champion_variant_and_sign_with_its_id(tmp_path, sp500):
    from swarmvar.evolution import new_variant, open_home
    from swarmvar.models.registry import parameter_names

    home = open_home(tmp_path)
    draft = new_variant("NormalInverseGamma", {"forgetting": 0.95}, parameter_names(),
                        now=1.0)
    stored = home.variants.add(draft)
    champion = home.variants.promote(stored, now=2.0)
    home.close()
    swarm = make_swarm(tmp_path, checkpoint_every=10**6)
    assert swarm.configs["sp500"].params == {"NormalInverseGamma": {"forgetting": 0.95}}
    with swarm:
        swarm.start({"sp500": sp500.iloc[:250]})
        swarm.step(_ticks(swarm, sp500, 1)[0])
    with Ledger.open(tmp_path) as ledger:
        signed = [e.data["estimates"] for e in ledger.entries() if e.kind == "estimate"][0]
    ids = {e["agent_id"]: e["variant_id"] for e in signed}
    assert ids == {"NormalInverseGamma": champion.id, "BayesianBootstrap": None,
                   "StudentT": None}
