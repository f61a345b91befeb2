"""The particle count of GarchT, GarchEVT and BetaSkewTEgarch: 500 by default (1,000 before
2026-12-07; evidence in docs/models-score-driven.md, "Fewer particles"), a ``cost_hint``
that follows the count, and states written at 1,000 particles that still load at 1,000."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.models import agent_class
from swarmvar.models._online_agent import ParticleCost
from swarmvar.validation.backtest import _longest_first

SMALLER = ("GarchT", "GarchEVT", "BetaSkewTEgarch")
#: The cost_hint at 1,000 particles before the switch (ms of a backtest day at h = 1).
OLD_DAY_MS = {"GarchT": 0.7, "GarchEVT": 1.0, "BetaSkewTEgarch": 3.0}


@pytest.mark.parametrize("name", SMALLER)
def test_the_default_is_500_particles(name: str) -> None:
    agent = agent_class(name)()
    assert agent.particles == 500 and agent.params()["particles"] == 500


@pytest.mark.parametrize("name", ["HarArch", "MarkovSwitching", "MarkovSwitchingGarch"])
def test_the_other_particle_agents_keep_1000(name: str) -> None:
    assert agent_class(name)().particles == 1000


@pytest.mark.parametrize("name", SMALLER)
def test_cost_hint_follows_the_particles(name: str) -> None:
    cls = agent_class(name)
    at_default, at_1000, at_2000 = cls().cost_hint, cls(particles=1000).cost_hint, \
        cls(particles=2000).cost_hint
    assert cls.cost_hint == at_default  # the class reads the default count
    assert at_1000[0] == pytest.approx(OLD_DAY_MS[name])  # the measured cost at 1,000
    assert at_default[0] < at_1000[0] < at_2000[0]
    assert at_default[1] == at_1000[1] == at_2000[1]  # 10 days: HORIZON_DRAWS particles
    # BetaSkewTEgarch's whole day scales; the GARCH filters keep a fixed part
    share = at_default[0] / at_1000[0]
    assert share == pytest.approx(0.5) if name == "BetaSkewTEgarch" else 0.5 < share < 0.9


def test_particle_cost_reads_a_plain_count_only() -> None:
    hint = ParticleCost(1.0, 2.0, 30.0)  # on the class: DEFAULT_PARTICLES, 500
    assert hint.__get__(None, object) == (2.0, 30.0)

    class Holder:
        particles = 250

    assert hint.__get__(Holder(), Holder) == (1.5, 30.0)
    Holder.particles = "many"  # type: ignore[assignment]
    assert hint.__get__(Holder(), Holder) == (2.0, 30.0)


def test_the_backtest_orders_the_default_swarm_by_the_new_costs() -> None:
    rows = {n: agent_class(n)() for n in ("NormalInverseGamma", "BayesianBootstrap",
                                             "StudentT", "GarchT", "GarchEVT",
                                             "BetaSkewTEgarch")}
    order = _longest_first(rows, 1)
    assert order[:2] == ["BetaSkewTEgarch", "GarchEVT"] and order[-1] == "NormalInverseGamma"
    rows["GarchT"] = agent_class("GarchT")(particles=4000)  # 4x the count: dearest
    assert _longest_first(rows, 1)[0] == "GarchT"


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    from swarmvar.models import GarchT

    true = {"mu": 0.0003, "omega": 2e-6, "alpha": 0.05, "beta": 0.9, "nu": 6.0, "gamma": 0.05}
    return GarchT().simulate(true, 400, seed=11)


@pytest.mark.parametrize("name", SMALLER)
def test_a_state_written_at_1000_particles_loads_at_1000(name: str, returns) -> None:
    """What the previous default wrote (``particles`` 1,000 in the state's parameters)
    comes back at 1,000, forecasting and updating as the agent that wrote it."""
    cls = agent_class(name)
    old = cls(particles=1000, runs=2).fit(returns[:300], seed=3)
    back = cls.from_state(old.state())
    assert back.particles == 1000 and back.params() == old.params()
    assert back.state() == old.state()
    assert back.forecast((0.99,)).levels[0].var == old.forecast((0.99,)).levels[0].var
    assert back.update(returns[300]) == old.update(returns[300])
    assert cls().particles == 500  # a new agent is built at the new default
