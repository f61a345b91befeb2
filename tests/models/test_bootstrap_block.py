"""BayesianBootstrap.forecast_block against forecast_day_by_day (forecast, then update, day by day).

The bootstrap has no particles, so there is no resample-move to cross; the
blocks here cross refits, the window's fill, the block's chunks and wraps of
the ring buffer, and the light-tail fallback to all weights.
"""

import copy

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models import bootstrap
from swarmvar.models.base import forecast_day_by_day
from swarmvar.models.bootstrap import BayesianBootstrap

LEVELS = (0.99, 0.975)


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.asarray(load("sp500"), dtype=float)


def _seeds(t: int, n: int) -> list[np.random.Generator]:
    """The backtest's day seeds: a generator of its own per day."""
    return [np.random.default_rng([0, 1, t + j, 1]) for j in range(n)]


def _run(agent: BayesianBootstrap, returns: np.ndarray, block: bool, start: int = 1000,
         days: int = 200, size: int = 20, refit_every: int = 60
         ) -> tuple[list, np.ndarray]:
    """Blocks of ``size`` days from ``start`` on, a refit every ``refit_every`` days."""
    forecasts, dens = [], []
    for t in range(start, start + days, size):
        if t > start and (t - start) % refit_every == 0:
            agent.refit(returns[t - 1000 : t], seed=t)
        run = agent.forecast_block if block else (
            lambda x, a, **kw: forecast_day_by_day(agent, x, a, **kw))
        f, d = run(returns[t : t + size], LEVELS, seeds=_seeds(t, size))
        forecasts += f
        dens.append(d)
    return forecasts, np.concatenate(dens)


def _assert_same_agents(a: BayesianBootstrap, b: BayesianBootstrap) -> None:
    assert a.state() == b.state()
    assert a.forecast(LEVELS, seed=11) == b.forecast(LEVELS, seed=11)
    assert a.forecast(LEVELS) == b.forecast(LEVELS)  # the agents' own generators agree too
    assert a.update(0.004) == b.update(0.004)


@pytest.mark.parametrize(("window", "size", "refit_every"),
                         [(500, 20, 60), (500, 45, 90), (60, 150, 300)])
def test_block_equals_the_loop_bit_for_bit_across_refits(
        returns: np.ndarray, window: int, size: int, refit_every: int) -> None:
    # 45 days: more than one chunk of _BLOCK_DAYS; window 60 with 150-day blocks:
    # chunks bounded by the window, the ring wrapping inside a block
    agent = BayesianBootstrap(window=window).fit(returns[:1000], seed=3)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    f_loop, d_loop = _run(loop_agent, returns, False, days=300, size=size,
                          refit_every=refit_every)
    f_block, d_block = _run(block_agent, returns, True, days=300, size=size,
                            refit_every=refit_every)
    assert f_block == f_loop
    np.testing.assert_array_equal(d_block, d_loop)
    _assert_same_agents(loop_agent, block_agent)


def test_a_filling_window_then_a_full_one(returns: np.ndarray) -> None:
    agent = BayesianBootstrap(window=500).fit(returns[:300], seed=5)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    x, seeds = returns[300:560], _seeds(300, 260)
    f_loop, d_loop = forecast_day_by_day(loop_agent, x, LEVELS, seeds=seeds)
    f_block, d_block = block_agent.forecast_block(x, LEVELS, seeds=_seeds(300, 260))
    assert f_block == f_loop
    np.testing.assert_array_equal(d_block, d_loop)
    _assert_same_agents(loop_agent, block_agent)


@pytest.mark.parametrize(("window", "alphas", "margin"),
                         [(50, (0.99, 0.6), (5.0, 10.0)), (300, (0.99, 0.975), (0.0, 0.0))])
def test_all_weights_and_extended_draws_inside_a_block(
        returns: np.ndarray, monkeypatch: pytest.MonkeyPatch, window: int,
        alphas: tuple[float, ...], margin: tuple[float, float]) -> None:
    # a short window at 0.6 draws all N weights; with no margin on the tail
    # rows, every day has draws that need more rows (_split_gamma)
    monkeypatch.setattr(bootstrap, "_TAIL_SD", margin[0])
    monkeypatch.setattr(bootstrap, "_TAIL_PAD", margin[1])
    calls = []
    split = bootstrap._split_gamma
    monkeypatch.setattr(bootstrap, "_split_gamma", lambda *a: calls.append(1) or split(*a))
    agent = BayesianBootstrap(window=window).fit(returns[:1000], seed=0)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    x = returns[1000:1040]
    f_loop, d_loop = forecast_day_by_day(loop_agent, x, alphas, seeds=_seeds(0, 40))
    in_loop = len(calls)
    assert in_loop == 0 if window == 50 else in_loop >= 40
    f_block, d_block = block_agent.forecast_block(x, alphas, seeds=_seeds(0, 40))
    assert len(calls) == 2 * in_loop
    assert f_block == f_loop
    np.testing.assert_array_equal(d_block, d_loop)
    _assert_same_agents(loop_agent, block_agent)


@pytest.mark.parametrize("seeds", ["none", "ints", "shared", "own_rng"])
def test_other_seeds_equal_the_loop(returns: np.ndarray, seeds: str) -> None:
    # seed=None and one generator for several days share draws between days: the
    # block draws the days in order from the generator each would use, as the loop does
    agent = BayesianBootstrap().fit(returns[:1000], seed=7)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)

    def make(a: BayesianBootstrap) -> list | None:
        shared = np.random.default_rng(9)
        return {"none": None, "ints": list(range(100, 125)), "shared": [shared] * 25,
                "own_rng": [a._rng] * 25}[seeds]  # noqa: SLF001

    x = returns[1000:1025]
    f_loop, d_loop = forecast_day_by_day(loop_agent, x, LEVELS, seeds=make(loop_agent))
    f_block, d_block = block_agent.forecast_block(x, LEVELS, seeds=make(block_agent))
    assert f_block == f_loop
    np.testing.assert_array_equal(d_block, d_loop)
    _assert_same_agents(loop_agent, block_agent)


def test_longer_horizons_equal_the_loop(returns: np.ndarray) -> None:
    agent = BayesianBootstrap(draws=50, paths=50).fit(returns[:1000], seed=1)
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    x = returns[1000:1006]
    f_loop, d_loop = forecast_day_by_day(loop_agent, x, LEVELS, 5, seeds=_seeds(1000, 6))
    f_block, d_block = block_agent.forecast_block(x, LEVELS, 5, seeds=_seeds(1000, 6))
    assert f_block == f_loop
    assert all(f.horizon == 5 for f in f_block)
    np.testing.assert_array_equal(d_block, d_loop)
    _assert_same_agents(loop_agent, block_agent)


def test_a_day_sees_only_the_returns_before_it(returns: np.ndarray) -> None:
    agent = BayesianBootstrap().fit(returns[:1000], seed=2)
    x = returns[1000:1030].copy()
    base, dens = copy.deepcopy(agent).forecast_block(x, LEVELS, seeds=_seeds(1000, 30))
    for j in (0, 7, 29):
        bent = x.copy()
        bent[j:] = -0.2  # a crash from day j on
        f, d = copy.deepcopy(agent).forecast_block(bent, LEVELS, seeds=_seeds(1000, 30))
        assert f[: j + 1] == base[: j + 1]
        np.testing.assert_array_equal(d[:j], dens[:j])
        assert d[j] != dens[j]
        if j < 29:
            assert f[j + 1] != base[j + 1]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 2.0])
@pytest.mark.parametrize("where", [0, 13, 29])
def test_a_bad_return_anywhere_leaves_the_agent_unchanged(
        returns: np.ndarray, bad: float, where: int) -> None:
    agent = BayesianBootstrap().fit(returns[:1000], seed=2)
    before = agent.state()
    x = returns[1000:1030].copy()
    x[where] = bad
    with pytest.raises(InvalidReturns):
        agent.forecast_block(x, LEVELS, seeds=_seeds(1000, 30))
    assert agent.state() == before


def test_bad_seeds_and_an_empty_block(returns: np.ndarray) -> None:
    agent = BayesianBootstrap().fit(returns[:1000], seed=2)
    before = agent.state()
    with pytest.raises(InvalidParameter):
        agent.forecast_block(returns[1000:1010], LEVELS, seeds=_seeds(1000, 9))
    with pytest.raises(InvalidParameter):  # checked before any return is absorbed
        agent.forecast_block(returns[1000:1010], LEVELS, seeds=[*range(9), "x"])
    assert agent.state() == before
    forecasts, dens = agent.forecast_block(returns[1000:1000], LEVELS)
    assert forecasts == [] and dens.shape == (0,)
    assert agent.state() == before


@pytest.mark.parametrize(("window", "alphas", "draws", "margin"), [
    (500, (0.99, 0.975), 1000, (4.0, 2.0)),  # the backtest's
    (500, (0.975, 0.99), 1000, (0.5, 0.0)),  # levels in any order; counts past their margins
    (300, (0.99, 0.975), 200, (0.0, 0.0)),   # short draws extended, some twice
    (60, (0.99, 0.6), 100, (5.0, 10.0)),     # every weight its own row
    (2000, (0.9,), 60, (4.0, 2.0)),          # more than 255 rows: counts past a byte
])
def test_tail_days_are_tail_measures_bit_for_bit(
        monkeypatch: pytest.MonkeyPatch, window: int, alphas: tuple[float, ...], draws: int,
        margin: tuple[float, float]) -> None:
    # the buffers serve day after day: each day must be _conditional's numbers
    # and leave its generator where _conditional leaves it
    monkeypatch.setattr(bootstrap, "_TAIL_SD", margin[0])
    monkeypatch.setattr(bootstrap, "_TAIL_PAD", margin[1])
    agent = BayesianBootstrap(window=window, draws=draws)
    tails = 1.0 - np.asarray(alphas)
    work = bootstrap._TailDays(window, draws, tails)
    x = np.random.default_rng(window).standard_t(3, size=(6, window)) * 0.01
    x[1, ::3] = 0.0  # ties, and zero losses
    past_margin = False
    for day, returns in enumerate(x):
        ascending = np.sort(returns)
        loop_rng, block_rng = np.random.default_rng(day), np.random.default_rng(day)
        cond_var, cond_es = agent._conditional(ascending, loop_rng, alphas)  # noqa: SLF001
        cond = work.day(-ascending, block_rng)
        assert _bits(cond[: len(alphas)]) == _bits(cond_var)
        assert _bits(cond[len(alphas) :]) == _bits(cond_es)
        assert block_rng.bit_generator.state == loop_rng.bit_generator.state
        past_margin |= any(int(m.max()) > depth
                           for m, depth in zip(work.m, work.depths, strict=True))
    assert past_margin == (margin[0] < 1.0)


def _bits(a: np.ndarray) -> bytes:
    """The array's bytes: equal floats with different signed zeros differ."""
    return np.ascontiguousarray(a).tobytes()
