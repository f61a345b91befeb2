"""GarchT and GarchEVT forecast_block against forecast_day_by_day (forecast, then update)."""

import copy

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.models import garch_evt, gpd
from swarmvar.models._garch_family import level_measures_block
from swarmvar.models.base import Agent, forecast_day_by_day
from swarmvar.models.garch_evt import GarchEVT
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
            lambda x, a: forecast_day_by_day(agent, x, a))
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
    fb, db = forecast_day_by_day(b, returns[1000:1003], (0.99,), 5, seeds=same)
    assert fa == fb
    np.testing.assert_array_equal(da, db)


@pytest.mark.parametrize(("which", "cuts"), [("fitted", (0, 5, 19)), ("evt", (0, 9, 19))])
def test_day_j_sees_only_the_returns_before_it(request: pytest.FixtureRequest, returns: np.ndarray,
                                               which: str, cuts: tuple[int, ...]) -> None:
    agent = request.getfixturevalue(which)  # GarchT or GarchEVT, fitted
    chunk = returns[1000:1020].copy()
    base, _ = copy.deepcopy(agent).forecast_block(chunk, LEVELS)
    for j in cuts:
        changed = chunk.copy()
        changed[j:] = 0.01 - 3.0 * changed[j:]
        other, _ = copy.deepcopy(agent).forecast_block(changed, LEVELS)
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


# --- GarchEVT ------------------------------------------------------------------------


def _same_state(a: Agent, b: Agent) -> None:
    """Equal states but for the recorded fit/refit seconds (a clock reading)."""
    (sa, aa), (sb, ab) = a._get_state(), b._get_state()  # noqa: SLF001
    assert {k: v for k, v in sa.items() if k != "seconds"} == {
        k: v for k, v in sb.items() if k != "seconds"}
    assert aa.keys() == ab.keys()
    for k in aa:
        if k == "garch":
            _same_state(GarchT.from_state(aa[k].tobytes()), GarchT.from_state(ab[k].tobytes()))
        else:
            np.testing.assert_array_equal(aa[k], ab[k])


@pytest.fixture(scope="module")
def evt(returns: np.ndarray) -> GarchEVT:
    return GarchEVT().fit(returns[:1000], seed=5)


@pytest.mark.parametrize("levels", [LEVELS, (0.99, 0.6)])
def test_evt_block_equals_the_loop_bit_for_bit(evt: GarchEVT, returns: np.ndarray,
                                               levels: tuple[float, ...]) -> None:
    """Across refits; at 60% some conditional VaRs fall in the body (days solved one by one)."""
    a, b = copy.deepcopy(evt), copy.deepcopy(evt)
    redone = []
    real = gpd.tail_level_measures_block

    def spy(*args: object) -> object:
        m = real(*args)  # type: ignore[arg-type]
        redone.extend(m.redo)
        return m

    f_loop, f_block = [], []
    for t in range(1000, 1120, 20):
        if t > 1000 and t % 40 == 0:
            a.refit(returns[t - 1000 : t], seed=t)
            b.refit(returns[t - 1000 : t], seed=t)
        fa, da = forecast_day_by_day(a, returns[t : t + 20], levels)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(garch_evt, "tail_level_measures_block", spy)
            fb, db = b.forecast_block(returns[t : t + 20], levels)
        np.testing.assert_array_equal(db, da)
        f_loop += fa
        f_block += fb
    assert f_block == f_loop
    assert bool(redone) == (levels != LEVELS)
    _same_state(a, b)
    assert b.forecast(levels) == a.forecast(levels)
    assert b.update(returns[1120]) == a.update(returns[1120])


def test_evt_horizon_above_one_is_the_loop(evt: GarchEVT, returns: np.ndarray) -> None:
    a, b = copy.deepcopy(evt), copy.deepcopy(evt)
    fa, da = a.forecast_block(returns[1000:1002], (0.99,), 3,
                              seeds=[np.random.default_rng([1, j]) for j in range(2)])
    fb, db = forecast_day_by_day(b, returns[1000:1002], (0.99,), 3,
                                  seeds=[np.random.default_rng([1, j]) for j in range(2)])
    assert fa == fb
    np.testing.assert_array_equal(da, db)


def test_tail_level_measures_block_is_each_familys() -> None:
    """Random GPD draws, some with a VaR in the body or xi ~ 0: those days are left to redo."""
    rng = np.random.default_rng(1)
    days, size, u = 7, 300, 1.2
    body = np.sort(rng.uniform(-2.0, u, 400))
    # heavy tails and particle scales within 10% of each other, as a GARCH posterior's
    # (draws with xi < 0 - a bounded tail - or far-apart scales send most days to redo)
    xi = rng.uniform(0.05, 0.35, (days, size))
    xi[3, 5] = 0.0
    beta = rng.uniform(0.3, 0.8, (days, size))
    p_u = rng.uniform(0.03, 0.12, (days, size))
    p_u[5, :10] = 0.005  # at 99% the VaR of these draws is in the body
    loc = rng.normal(0, 1e-4, size)
    scale = 0.01 * rng.uniform(0.9, 1.1, (days, size))
    w = rng.random((days, size))
    norm = w / w.sum(axis=1, keepdims=True)
    m = gpd.tail_level_measures_block(u, xi, beta, p_u, loc, scale, norm, LEVELS)
    assert {3, 5} <= set(m.redo) and len(m.redo) <= days - 3  # >= 3 days are compared
    got = risk_measures_block(LEVELS, m.var, m.es, m.cond_var, m.cond_es, norm)
    for d in range(days):
        if d in m.redo:
            continue
        family = gpd.GPDTailFamily.unchecked(u, xi[d], beta[d], p_u[d], body,
                                             gpd.body_suffix_sums(body), loc, scale[d], w[d])
        assert got[d] == risk_measures(family, LEVELS)
