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


def test_a_failing_agent_is_served_around_and_fitted_again(tmp_path, sp500, monkeypatch):
    """Its update fails: it is counted missing for that beat's scores and fitted again from
    its window at once; while its fit fails too the consensus serves m/n, widened."""
    from swarmvar.errors import InvalidReturns
    from swarmvar.models.nig import NormalInverseGamma
    from swarmvar.swarm import LocalExecutor

    from .conftest import TINY, TINY_POLICY

    executor = LocalExecutor()
    swarm = make_swarm(tmp_path, agents=TINY, policy=TINY_POLICY, executor=executor,
                       checkpoint_every=10**6)
    with swarm:
        swarm.start({"sp500": sp500.iloc[:250]})
        ticks = _ticks(swarm, sp500, 4)
        swarm.step(ticks[0])
        nig = executor.local("sp500").agents["NormalInverseGamma"]

        def broken(r):
            raise InvalidReturns("simulated failure")

        monkeypatch.setattr(nig, "update", broken)
        rep = swarm.step(ticks[1])
        assert "NormalInverseGamma" not in rep.log_scores
        assert "update failed" in rep.rejected["NormalInverseGamma"]
        assert any("refit-done (NormalInverseGamma)" in e for e in rep.events)
        assert rep.consensus[0].available == 2  # fitted again before the forecast
        monkeypatch.setattr(NormalInverseGamma, "fit", lambda self, r, seed=None: broken(r))
        monkeypatch.setattr(executor.local("sp500").agents["NormalInverseGamma"], "update",
                            broken)
        rep = swarm.step(ticks[2])
        c = rep.consensus[0]
        assert (c.available, c.total) == (1, 2) and c.used == ("BayesianBootstrap",)
        assert any("refit-failed (NormalInverseGamma)" in e for e in rep.events)
        monkeypatch.undo()
        rep = swarm.step(ticks[3])  # no agent object to update: refitted on schedule only
        assert rep.consensus[0].total == 2


def test_the_observer_helpers_shared_by_the_swarm_and_the_desk() -> None:
    """Quarantines are united and weight factors multiplied across observers; only an
    observer with a string state_key and both state methods is checkpointed."""
    from swarmvar.swarm.runtime import observer_instructions, stateful_observers

    class Obs:
        def __init__(self, out: set[str], factors: dict[str, float]) -> None:
            self.out, self.factors = out, factors

        def excluded(self, name: str) -> set[str]:
            return self.out

        def weight_factors(self, name: str) -> dict[str, float]:
            return self.factors

    class Kept(Obs):
        state_key = "kept"

        def checkpoint_state(self) -> dict[str, object]:
            return {}

        def restore_state(self, state: object) -> None:
            return None

    a, b = Obs({"x"}, {"y": 0.5}), Kept({"z"}, {"y": 0.5, "w": 2.0})
    assert observer_instructions([a, b], "p") == (frozenset({"x", "z"}),
                                                  {"y": 0.25, "w": 2.0})
    assert stateful_observers([a, b]) == [(1, "kept", b)]


def test_one_rule_for_a_measured_time() -> None:
    """runtime.beat_seconds and the spread composition read a timing the same way."""
    import math

    from swarmvar.swarm.beat import is_time
    from swarmvar.swarm.runtime import beat_seconds

    good, bad = [0, 1, 0.5, 2.0], [True, -1, -0.1, math.inf, math.nan, "1", None]
    assert all(is_time(v) for v in good) and not any(is_time(v) for v in bad)
    assert beat_seconds({str(i): v for i, v in enumerate(good + bad)}) == 3.5
