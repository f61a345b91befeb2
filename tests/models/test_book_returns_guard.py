"""A book's computed returns past ``|r| <= 1``: agents widened for books take them.

A user's typed return beyond ``|r| <= 1`` is percent given as fractions and is refused
with the percent hint; a leveraged book's computed return can pass 1 legitimately (a 65%
one-day loss of its net value is -1.05). ``Agent.take_book_returns`` widens an agent to
``|r| <= MAX_BOOK_RETURN``; each default agent must stay numerically sane on such days
(fit, update, forecast, forecast_block, a 10-day horizon, a state round trip).
"""

from __future__ import annotations

import io
import json
import math
import warnings
import zipfile

import numpy as np
import pytest

from swarmvar.data._returns import MAX_BOOK_RETURN
from swarmvar.errors import InvalidReturns, InvalidState
from swarmvar.models.base import Agent
from swarmvar.models.registry import DEFAULT_AGENTS, agent_class
from swarmvar.types import Forecast

CRASH, BOOM = -1.05, 1.2  # a 65% loss and a 232% gain of the book's value in a day


def _history() -> np.ndarray:
    x = np.random.default_rng(3).normal(0.0, 0.015, 300)
    x[150], x[200] = CRASH, BOOM
    return x


def _finite(f: Forecast) -> bool:
    return all(math.isfinite(v) for m in f.levels
               for v in (m.var, m.es, *m.var_interval, *m.es_interval))


def _header(state: bytes) -> dict[str, object]:
    with zipfile.ZipFile(io.BytesIO(state)) as z:
        raw = np.load(io.BytesIO(z.read("__header__.npy")))
    out: dict[str, object] = json.loads(raw.tobytes().decode())
    return out


#: registered, not in the default swarm: 5-8 s each on a loaded 2-core machine
_OTHERS = [pytest.param(n, marks=pytest.mark.slow)
           for n in ("HarArch", "MarkovSwitching", "MarkovSwitchingGarch")]


@pytest.mark.parametrize("name", [*DEFAULT_AGENTS, *_OTHERS])
def test_a_widened_agent_takes_a_books_days_and_stays_finite(name):
    agent = agent_class(name)()
    assert agent.return_bound == 1.0
    with pytest.raises(InvalidReturns, match="divide them by 100"):
        agent.fit(_history(), seed=1)  # a plain agent: the percent rule, as before
    assert agent.take_book_returns() is agent and agent.return_bound == MAX_BOOK_RETURN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings are not this test's subject
        agent.fit(_history(), seed=1)
        before = agent.forecast((0.99,), seed=2)
        densities = [agent.update(CRASH), agent.update(BOOM)]
        after = agent.forecast((0.99,), seed=2)
        block, block_densities = agent.forecast_block([0.01, CRASH, 0.02], (0.99,),
                                                      seeds=[1, 2, 3])
        ten = agent.forecast((0.99,), horizon=10, seed=4)
        again = type(agent).from_state(agent.state())
        assert again.return_bound == MAX_BOOK_RETURN  # the widening rides in the state
        again.update(CRASH)
    assert all(map(_finite, [before, after, *block, ten]))
    assert np.all(np.isfinite(densities)) and np.all(np.isfinite(block_densities))
    # the crash is news: it widens the next day's VaR
    assert after.at(0.99).var > before.at(0.99).var
    assert block[2].at(0.99).var > block[1].at(0.99).var


def test_garch_evt_widens_the_garch_t_inside_it_through_fit_and_state():
    # GarchEVT builds its own GarchT (each fit, each state): it is widened with it
    agent = agent_class("GarchEVT")(particles=200, runs=2).take_book_returns()
    inner = agent._garch
    assert inner.return_bound == MAX_BOOK_RETURN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent.fit(_history(), seed=1)
        assert agent._garch is not inner and agent._garch.return_bound == MAX_BOOK_RETURN
        plain = agent_class("GarchEVT")(particles=200, runs=2)
        assert plain._garch.return_bound == 1.0  # only a book's agent is widened
        again = type(agent).from_state(agent.state())
    assert again._garch.return_bound == MAX_BOOK_RETURN
    assert math.isfinite(again.update(CRASH))


@pytest.mark.parametrize("name", ["NormalInverseGamma", "BayesianBootstrap"])
def test_a_plain_agent_still_refuses_typed_percent_everywhere(name):
    agent = agent_class(name)().fit(np.random.default_rng(0).normal(0, 0.01, 100), seed=0)
    with pytest.raises(InvalidReturns, match=r"beyond \|r\| <= 1; .*if this is percent, "
                                             r"divide by 100"):
        agent.update(1.5)
    with pytest.raises(InvalidReturns, match="divide by 100"):
        agent.forecast_block([0.01, 1.5], (0.99,))
    with pytest.raises(InvalidReturns, match="divide"):
        agent_class(name)().fit(np.full(100, 1.5) * np.resize([1, -1], 100), seed=0)
    with pytest.raises(InvalidReturns, match="divide by 100"):
        Agent._check_return(1.5)  # read from the class (the validation baselines'): plain
    assert "book_returns" not in _header(agent.state())  # a plain agent's state as before


def test_a_widened_agent_refuses_past_the_books_bound_in_the_books_words():
    agent = agent_class("NormalInverseGamma")().take_book_returns()
    agent.fit(np.random.default_rng(0).normal(0, 0.01, 100), seed=0)
    for r in (-MAX_BOOK_RETURN - 0.5, float("nan")):
        with pytest.raises(InvalidReturns) as info:
            agent.update(r)
        assert "divide" not in str(info.value)
    with pytest.raises(InvalidReturns, match=r"beyond \|r\| <= 5; a one-day loss of 99.59% "
                                             r"of the book's value"):
        agent.update(-5.5)
    with pytest.raises(InvalidReturns, match="a one-day gain of 244 times"):
        agent.update(5.5)
    assert agent.update(-MAX_BOOK_RETURN) < 0  # the bound itself is taken
    history = np.random.default_rng(1).normal(0, 0.01, 100)
    history[40] = -6.0
    with pytest.raises(InvalidReturns, match=r"return at index 40 is -6.0, beyond \|r\| <= 5; "
                                             r"a one-day loss of 99.75% of the book's value"):
        agent_class("NormalInverseGamma")().take_book_returns().fit(history, seed=0)


def test_a_state_with_a_bad_book_flag_is_refused():
    agent = agent_class("NormalInverseGamma")().take_book_returns()
    state = agent.fit(np.random.default_rng(0).normal(0, 0.01, 100), seed=0).state()
    header = _header(state)
    assert header["book_returns"] is True
    header["book_returns"] = "yes"
    with zipfile.ZipFile(io.BytesIO(state)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    raw = io.BytesIO()
    np.save(raw, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    members["__header__.npy"] = raw.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(InvalidState, match="book_returns is 'yes'"):
        type(agent).from_state(out.getvalue())
