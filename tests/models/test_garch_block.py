"""GarchT.forecast_block against the base-class loop (forecast, then update, day by day)."""

import copy

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import InvalidReturns
from swarmvar.models._garch_family import level_measures_block
from swarmvar.models.base import Agent
from swarmvar.models.garch_t import GarchT
from swarmvar.models.risk import risk_measures, risk_measures_block

LEVELS = (0.99, 0.975)


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.asarray(load("sp500"), dtype=float)


@pytest.fixture(scope="module")
def fitted(returns: np.ndarray) -> GarchT:
    return GarchT().fit(returns[:1000], seed=3)


@pytest.fixture(scope="module")
def eager(returns: np.ndarray) -> GarchT:
    """Resample-moves every few days (ESS threshold 0.95), so blocks are cut by them."""
    return GarchT(ess_threshold=0.95).fit(returns[:1000], seed=4)


def _run(agent: GarchT, returns: np.ndarray, block: bool, days: int = 160,
         refit_every: int = 40) -> tuple[list, np.ndarray, int]:
    """Blocks of 20 days from day 1000 on, refits every ``refit_every`` days; moves counted."""
    forecasts, dens, moves = [], [], 0
    for t in range(1000, 1000 + days, 20):
        if t > 1000 and (t - 1000) % refit_every == 0:
            agent.refit(returns[t - 1000 : t], seed=t)
        before = agent._cloud.u  # noqa: SLF001 - to count the resample-moves
        chunk = returns[t : t + 20]
        run = agent.forecast_block if block else (
            lambda x, a: Agent.forecast_block(agent, x, a))
        f, d = run(chunk, LEVELS)
        moves += agent._cloud.u is not before  # noqa: SLF001
        forecasts += f
        dens.append(d)
    return forecasts, np.concatenate(dens), moves


@pytest.mark.parametrize("which", ["fitted", "eager"])
def test_block_equals_the_loop_bit_for_bit_across_moves_and_refits(
        which: str, request: pytest.FixtureRequest, returns: np.ndarray) -> None:
    agent = request.getfixturevalue(which)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    f_loop, d_loop, _ = _run(loop_agent, returns, block=False)
    f_block, d_block, moves = _run(block_agent, returns, block=True)
    if which == "eager":
        assert moves >= 4  # resample-moves inside blocks (the stretches are cut there)
    assert len(f_block) == len(f_loop) == 160
    assert f_block == f_loop  # every VaR, ES and interval, exactly
    np.testing.assert_array_equal(d_block, d_loop)
    assert block_agent.state() == loop_agent.state()
    # and what follows agrees: a forecast, an update, a refit
    assert block_agent.forecast(LEVELS) == loop_agent.forecast(LEVELS)
    assert block_agent.update(returns[1160]) == loop_agent.update(returns[1160])
    block_agent.refit(returns[161:1161], seed=1)
    loop_agent.refit(returns[161:1161], seed=1)
    assert block_agent.forecast(LEVELS) == loop_agent.forecast(LEVELS)


def test_horizon_above_one_is_the_loop(fitted: GarchT, returns: np.ndarray) -> None:
    a, b = copy.deepcopy(fitted), copy.deepcopy(fitted)
    seeds = [np.random.default_rng([7, j]) for j in range(3)]
    same = [np.random.default_rng([7, j]) for j in range(3)]
    fa, da = a.forecast_block(returns[1000:1003], (0.99,), 5, seeds=seeds)
    fb, db = Agent.forecast_block(b, returns[1000:1003], (0.99,), 5, seeds=same)
    assert fa == fb
    np.testing.assert_array_equal(da, db)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1.5])
@pytest.mark.parametrize("where", [0, 7, 19])
def test_a_bad_return_anywhere_raises_and_changes_nothing(
        fitted: GarchT, returns: np.ndarray, bad: float, where: int) -> None:
    agent = copy.deepcopy(fitted)
    before = agent.state()
    chunk = returns[1000:1020].copy()
    chunk[where] = bad
    with pytest.raises(InvalidReturns):
        agent.forecast_block(chunk, LEVELS)
    assert agent.state() == before


def test_day_j_sees_only_the_returns_before_it(fitted: GarchT, returns: np.ndarray) -> None:
    chunk = returns[1000:1020].copy()
    base, _ = copy.deepcopy(fitted).forecast_block(chunk, LEVELS)
    for j in (0, 5, 19):
        changed = chunk.copy()
        changed[j:] = -changed[j:] * 3.0
        other, _ = copy.deepcopy(fitted).forecast_block(changed, LEVELS)
        assert other[: j + 1] == base[: j + 1]
        if j < 19:
            assert other[j + 1] != base[j + 1]


def test_level_measures_block_is_each_familys(fitted: GarchT) -> None:
    """Random variances and weights on the fitted particles: day d is its own family."""
    rng = np.random.default_rng(0)
    th, cache = fitted._theta, fitted._quantiles  # noqa: SLF001
    h = fitted._cloud.h * rng.uniform(0.3, 3.0, (6, th.mu.size))  # noqa: SLF001
    w = rng.dirichlet(np.ones(th.mu.size), 6)
    scale = np.sqrt(h * (th.nu - 2.0) / th.nu)
    norm = w / w.sum(axis=1, keepdims=True)
    m = level_measures_block(cache, th.mu, scale, norm, LEVELS)
    days = risk_measures_block(LEVELS, m.var, m.es, m.cond_var, m.cond_es, norm)
    for d in range(6):
        assert days[d] == risk_measures(cache.predictive(th.mu, scale[d], w[d]), LEVELS)
