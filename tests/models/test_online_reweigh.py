"""One IBIS reweighing step for every online agent (``OnlineAgent._reweigh``).

GarchT, HarArch and the ParticleAgent family each had their own copy of the update's
reweigh / normalise / ESS step; they now go through the shared one. Checked: each
agent's update calls it once with its day's log densities, then keeps the new weights
through the one ``_keep_reweighed`` (GarchT with its own ESS rule, ``_garch_smc.ess``);
its numbers against a log-sum-exp formed here (a loaded state's shifted log weights
too); the kept normalized weights and the ESS equal ``_sir``'s bit for bit.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from swarmvar.errors import ConvergenceWarning
from swarmvar.models import _garch_smc, _sir
from swarmvar.models._online_agent import OnlineAgent
from swarmvar.models.registry import agent_class

ONLINE = ["GarchT", "HarArch", "BetaSkewTEgarch"]  # the ParticleAgent family: BSTE


def _fitted(name: str, seed: int = 1, **kw: Any) -> Any:
    r = np.random.default_rng(seed).standard_t(5, 160) * 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds
        return agent_class(name)(particles=100, runs=2, **kw).fit(r, seed=seed)


def _logsumexp(v: np.ndarray) -> float:
    top = float(np.max(v))
    return top + float(np.log(np.exp(v - top).sum()))


@pytest.mark.parametrize("name", ONLINE)
def test_every_online_update_reweighs_through_the_one_step(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One call per update, whose new log weights the agent then holds (or, after a
    resample-move, replaces by equal ones); the update returns its predictive density."""
    agent = _fitted(name, ess_threshold=0.9)
    calls: list[tuple[np.ndarray, np.ndarray, float]] = []
    own = OnlineAgent._reweigh

    def spy(self: OnlineAgent, x: float, dens: np.ndarray) -> Any:
        out = own(self, x, dens)
        calls.append((np.array(dens), out[0], out[3]))
        return out

    monkeypatch.setattr(OnlineAgent, "_reweigh", spy)
    moves = 0
    for k, x in enumerate([0.004, -0.05, 0.06, -0.002]):
        held = agent._logw
        pred = agent.update(x)
        assert len(calls) == k + 1
        dens, logw, said = calls[-1]
        assert pred == said
        # the density from the weights held before: log sum_s w_s exp(dens_s)
        assert pred == pytest.approx(_logsumexp(held + dens) - _logsumexp(held), abs=1e-12)
        if agent._logw is logw:
            assert agent._w_memo is not None and agent._w_memo[0] is logw
        else:  # resample-moved: equal weights
            moves += 1
            assert np.all(agent._logw == 0.0)
    assert moves >= 1  # ess_threshold 0.9: the shocks moved the particles


def test_the_step_reads_a_loaded_states_shifted_weights() -> None:
    """Log weights whose largest is not 0 (a loaded state's): the density is shift-free,
    the new log weights' largest is exactly 0 and their exps are as formed anew; the kept
    weights and ESS equal ``_sir.normalized_weights`` and ``_sir.ess`` bit for bit."""
    agent = _fitted("HarArch", seed=2)
    rng = np.random.default_rng(5)
    agent._logw = rng.normal(-40.0, 2.0, agent.particles)  # exact, not re-normalized
    agent._logw[:3] = -np.inf
    dens = rng.normal(2.0, 1.5, agent.particles)
    logw, e, total, pred = agent._reweigh(0.01, dens)
    assert pred == pytest.approx(_logsumexp(agent._logw + dens) - _logsumexp(agent._logw),
                                 abs=1e-12)
    assert float(np.max(logw)) == 0.0 and np.all(np.isneginf(logw[:3]))
    assert np.array_equal(e, np.exp(logw)) and total == e.sum()
    ess = agent._keep_reweighed(logw, e, total)
    agent._logw = logw
    assert ess == _sir.ess(logw)
    w, kept_total, top = agent._weight_memo()
    assert np.array_equal(w, _sir.normalized_weights(logw))
    assert (kept_total, top) == (total, 0.0)
    assert not logw.flags.writeable and not w.flags.writeable


@pytest.mark.parametrize("name", ONLINE)
def test_every_online_update_keeps_its_weights_through_the_one_keep(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each update keeps the step's new log weights by ``_keep_reweighed`` (once, on the
    array ``_reweigh`` made) and tests for a resample-move on the ESS it returns: the
    agent's own rule, bit for bit (GarchT's ``_garch_smc.ess``, the others' ``_sir.ess``)."""
    agent = _fitted(name, seed=3, ess_threshold=0.9)
    made: list[np.ndarray] = []
    kept: list[tuple[np.ndarray, float]] = []
    own_reweigh, own_keep = OnlineAgent._reweigh, OnlineAgent._keep_reweighed

    def reweigh(self: OnlineAgent, x: float, dens: np.ndarray) -> Any:
        out = own_reweigh(self, x, dens)
        made.append(out[0])
        return out

    def keep(self: OnlineAgent, logw: np.ndarray, e: np.ndarray, total: float) -> float:
        ess = own_keep(self, logw, e, total)
        kept.append((logw, ess))
        return ess

    monkeypatch.setattr(OnlineAgent, "_reweigh", reweigh)
    monkeypatch.setattr(OnlineAgent, "_keep_reweighed", keep)
    rule = _garch_smc.ess if name == "GarchT" else _sir.ess
    moves = 0
    for k, x in enumerate([0.004, -0.05, 0.06, -0.002]):
        agent.update(x)
        assert len(made) == len(kept) == k + 1
        logw, ess = kept[-1]
        assert logw is made[-1]
        assert ess == rule(logw)
        moved = ess < agent.ess_threshold * agent.particles
        moves += moved
        assert (agent._logw is logw) == (not moved)
    assert moves >= 1  # ess_threshold 0.9: the shocks moved the particles
