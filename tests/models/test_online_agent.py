"""The online particle agents' shared sizes, history buffer, state checks, zero-density
error and warm refit route (_online_agent)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest

from swarmvar.errors import ConvergenceWarning, InvalidParameter, InvalidReturns, InvalidState
from swarmvar.models import _har_arch_smc as har_smc
from swarmvar.models import agent_class
from swarmvar.models._online_agent import MAX_PARTICLES, OnlineAgent, RefitRoute
from swarmvar.models.garch_t import GarchT

#: Every agent whose constructor runs OnlineAgent's size checks.
ONLINE = ["GarchT", "HarArch", "MarkovSwitching", "MarkovSwitchingGarch", "BetaSkewTEgarch"]


@pytest.mark.parametrize("name", ONLINE)
@pytest.mark.parametrize(("sizes", "match"), [
    ({"particles": 99}, "particles"), ({"particles": 100.5}, "particles"),
    ({"runs": 1}, "runs"), ({"runs": 65}, "runs"),
    ({"particles": MAX_PARTICLES // 2 + 1, "runs": 2}, "particles x runs"),
    ({"ess_threshold": 0.0}, "ess_threshold"), ({"ess_threshold": 1.0}, "ess_threshold"),
    ({"ess_threshold": float("nan")}, "ess_threshold"),
])
def test_sizes_out_of_range_are_refused_alike(name: str, sizes: dict[str, float],
                                              match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        agent_class(name)(**sizes)


@pytest.mark.parametrize("name", ONLINE)
def test_sizes_in_range_are_kept_as_numbers(name: str) -> None:
    agent = agent_class(name)(particles=np.int64(150), runs=3, ess_threshold=np.float32(0.25))
    assert (agent.particles, agent.runs) == (150, 3)
    assert type(agent.particles) is int and type(agent.runs) is int
    assert type(agent.ess_threshold) is float and agent.ess_threshold == 0.25


def test_history_grows_past_its_buffer_in_order() -> None:
    agent = GarchT(particles=100, runs=2)
    start = np.linspace(-0.01, 0.01, 300)
    agent._start_history(start)
    first = agent._buf.size
    extra = np.arange(2 * first, dtype=float)
    for x in extra.tolist():
        agent._append_return(x)
    assert agent._buf.size > first
    assert np.array_equal(agent._returns, np.concatenate([start, extra]))
    start[0] = 99.0  # the buffer holds a copy
    assert agent._returns[0] == -0.01


@pytest.mark.parametrize("logw", [[0.0, np.nan], [0.0, np.inf], [-np.inf, -np.inf]])
def test_bad_log_weights_are_refused(logw: list[float]) -> None:
    with pytest.raises(InvalidState, match="GarchT state's particle log weights"):
        GarchT(particles=100, runs=2)._check_log_weights(np.array(logw))
    GarchT(particles=100, runs=2)._check_log_weights(np.array([0.0, -np.inf]))


def _kill_every_density(agent, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every particle give the next return zero density (no real series reaches that:
    each agent's density is positive at every finite return, so the state is forced)."""
    if isinstance(agent, GarchT):  # an infinite variance: log density -inf
        agent._cloud = dataclasses.replace(agent._cloud, h=np.full(agent.particles, np.inf))
    elif agent.name == "HarArch":
        agent._cloud.aux[har_smc.H] = np.inf
    else:  # the particle agents: their filter step gives -inf
        dead = np.full(agent.particles, -np.inf)
        monkeypatch.setattr(agent, "_filter_step", lambda x: (dead, agent._aux))


@pytest.mark.parametrize("name", ONLINE)
def test_a_return_of_zero_density_is_one_clear_error_and_changes_nothing(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = np.random.default_rng(3).standard_t(5, 150) * 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent = agent_class(name)(particles=100, runs=2).fit(r, seed=1)
    before = agent.state()
    _kill_every_density(agent, monkeypatch)
    with pytest.raises(InvalidReturns, match=rf"{name}: return 0\.02 has zero density under "
                                             "every particle; check its units"):
        agent.update(0.02)
    assert np.array_equal(agent.history, r)
    assert np.array_equal(agent._logw, type(agent).from_state(before)._logw)


@pytest.mark.parametrize("name", ["MarkovSwitching", "BetaSkewTEgarch"])
def test_an_updates_resample_move_keeps_the_history_exact(name: str) -> None:
    """The move reads the history buffer in place (no copy) and installs a new buffer: the
    history stays the fit window then the updates, in order, and later appends land."""
    r = np.random.default_rng(4).standard_t(5, 160) * 0.01
    new = [0.03, -0.04, 0.05, -0.06]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent = agent_class(name)(particles=100, runs=2, ess_threshold=0.99).fit(r, seed=2)
        moves = 0
        for x in new:
            u = agent._u
            agent.update(x)
            moves += agent._u is not u
    assert moves >= 2  # the ESS fell below 0.99 and the particles were moved
    assert np.array_equal(agent.history, np.concatenate([r, new]))
    assert np.array_equal(type(agent).from_state(agent.state()).history, agent.history)


@pytest.mark.parametrize(("finite", "route"), [
    (0, "prior"), (1, "bridge"), (4, "bridge"), (6, "move"), (30, "move"), (49, "move"),
    (51, "reweight"), (100, "reweight"),
])
def test_a_refits_route_follows_the_reweighted_ess(finite: int, route: str) -> None:
    """``finite`` equal weights of 100 have ESS ``finite``: below REFIT_MIN_ESS (0.05) x 100
    a bridge, at or above ess_threshold (0.5) x 100 the reweighted particles, a move
    between, and no finite weight a fit from the prior."""
    logw = np.full(100, -np.inf)
    logw[:finite] = -3.0
    assert GarchT(particles=100, runs=2, ess_threshold=0.5)._route(logw) == route


def _particles(agent: Any) -> object:
    return agent._u if hasattr(agent, "_u") else agent._cloud.u


@pytest.mark.parametrize("name", ["GarchT", "HarArch", "MarkovSwitching"])
@pytest.mark.parametrize("route", ["reweight", "move"])
def test_every_warm_refit_takes_the_route_chosen_once(
        name: str, route: RefitRoute, monkeypatch: pytest.MonkeyPatch) -> None:
    """GarchT, HarArch and the particle agents ask :meth:`OnlineAgent._route` once, with the
    reweighted log weights, and follow it: reweight keeps the particles, move replaces them."""
    r = np.random.default_rng(5).standard_t(5, 150) * 0.01
    asked: list[np.ndarray] = []

    def chosen(self: OnlineAgent, logw: np.ndarray) -> RefitRoute:
        asked.append(logw)
        return route

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent: Any = agent_class(name)(particles=100, runs=2).fit(r, seed=1)
        before = _particles(agent)
        monkeypatch.setattr(OnlineAgent, "_route", chosen)
        agent.refit(r[10:], seed=2)
    assert len(asked) == 1 and asked[0].shape == (100,)
    assert (_particles(agent) is before) == (route == "reweight")
    assert np.array_equal(agent.history, r[10:])
    if name == "MarkovSwitching":  # the particle agents record their route
        assert agent.refit_route == route
