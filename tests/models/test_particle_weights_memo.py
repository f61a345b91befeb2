"""Work done once instead of twice gives the numbers it gave before, bit for bit.

* ``ParticleAgent.update`` keeps the normalized weights it forms (``_w_memo``)
  for the ESS and the next day's forecast: they equal
  :func:`swarmvar.models._sir.normalized_weights` of the agent's log weights,
  including across resample-moves; the kept arrays are read-only.
* A refit's bridge given the reweighting's window pass (``window_pass``) is the
  bridge that makes that pass itself, and a whole refit through the bridge is
  the refit whose bridge makes its own pass.
* ``GarchT._weights`` from the update's kept weights equals the weights formed anew.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning
from swarmvar.models import _score_driven_jax as jlik
from swarmvar.models import _score_driven_lik as lik
from swarmvar.models import _sir
from swarmvar.models._particle_agent import MOVES, STAGE_MOVED
from swarmvar.models._score_driven_bridge import bridge
from swarmvar.models.garch_t import GarchT
from swarmvar.models.score_driven import BetaSkewTEgarch

SMALL = {"particles": 100, "runs": 2}


@functools.cache
def _state() -> bytes:
    r = load("sp500").to_numpy()[-400:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds: R-hat may doubt
        return BetaSkewTEgarch(**SMALL).fit(r, seed=3).state()


def test_update_keeps_the_normalized_weights_of_its_log_weights() -> None:
    agent = BetaSkewTEgarch.from_state(_state())
    crash = np.r_[-0.12, 0.09, -0.08, np.full(5, 0.002)]  # resample-moves among the days
    moves = 0
    for x in crash:
        u = agent._u
        agent.update(float(x))
        moved = agent._u is not u
        moves += moved
        if not moved:  # the update itself kept the memo (not the reads below)
            assert agent._w_memo is not None and agent._w_memo[0] is agent._logw
            assert not agent._logw.flags.writeable
        w, total, top = agent._weight_memo()
        assert top == 0.0
        assert np.array_equal(w, _sir.normalized_weights(agent._logw))
        assert total == np.exp(agent._logw).sum()
        with pytest.raises(ValueError, match="read-only"):  # the memo matches by identity
            agent._logw[0] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            w[0] = 0.0
    assert moves >= 1
    fresh = BetaSkewTEgarch.from_state(agent.state())  # no memo: formed anew
    assert np.array_equal(fresh._day_state()[1], agent._day_state()[1])


def test_a_bridge_given_the_window_pass_is_the_bridge_that_makes_it() -> None:
    agent = BetaSkewTEgarch.from_state(_state())
    window = load("sp500").loc["2008-09-15":"2009-03-31"].to_numpy()
    given = jlik.loglik(window, lik.from_unconstrained(agent._u))
    runs = []
    for window_pass in (None, given):
        out = bridge(agent.history, window, agent._u, agent._ll, agent._logw,
                     np.random.default_rng(11), agent.ess_threshold, MOVES, STAGE_MOVED,
                     window_pass=window_pass)
        assert out is not None
        runs.append(out)
    for a, b in zip(runs[0], runs[1], strict=True):
        assert np.array_equal(a, b)


def test_a_refit_through_the_bridge_equals_one_whose_bridge_makes_its_own_pass() -> None:
    window = load("sp500").loc["2008-09-15":"2009-03-31"].to_numpy()
    agents = []
    for given in (True, False):
        agent = BetaSkewTEgarch.from_state(_state())
        agent._route = lambda logw: "bridge"  # type: ignore[method-assign]

        def own_pass(r: np.ndarray, rng: np.random.Generator, ll: np.ndarray, aux: np.ndarray,
                     agent: BetaSkewTEgarch = agent
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
            out = bridge(agent.history, r, agent._u, agent._ll, agent._logw, rng,
                         agent.ess_threshold, MOVES, STAGE_MOVED, window_pass=None)
            return None if out is None else out[:5]

        if not given:
            agent._bridge = own_pass  # type: ignore[method-assign]
        agent.refit(window, seed=5)
        assert agent.refit_route == "bridge"  # not stalled into a fit from the prior
        agents.append(agent)
    given_pass, own = agents
    for name in ("_u", "_ll", "_aux", "_logw", "history"):
        assert np.array_equal(getattr(given_pass, name), getattr(own, name)), name
    assert given_pass._acceptance == own._acceptance
    assert given_pass.forecast((0.99,)) == own.forecast((0.99,))


def test_garch_weights_from_the_kept_exp_equal_the_weights_formed_anew() -> None:
    r = load("sp500").to_numpy()[-300:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds: R-hat may doubt
        agent = GarchT(particles=100, runs=2).fit(r[:260], seed=2)
    for x in [*r[260:].tolist(), -0.08, 0.05]:  # the crash moves the particles
        agent.update(x)
        w = np.exp(agent._logw)
        assert np.array_equal(agent._weights(), w / w.sum())
        with pytest.raises(ValueError, match="read-only"):
            agent._logw[0] = 0.0
    fresh = GarchT.from_state(agent.state())  # no kept exp: formed anew
    assert np.array_equal(fresh._weights(), agent._weights())
