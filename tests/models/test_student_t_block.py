"""StudentT.forecast_block against forecast_day_by_day (forecast, then update, day by day).

Real S&P 500 returns, small SMC fits (2 runs x 400 particles) and a high ESS
threshold, so that the blocks cross resample-moves inside them as well as
refits; the override must give the loop's forecasts and densities bit for
bit and leave the agent in the loop's state.
"""

import copy
from typing import Any

import numpy as np
import pytest

from swarmvar.data import MAX_ABS_RETURN, load
from swarmvar.errors import InvalidParameter, InvalidReturns
from swarmvar.models.base import forecast_day_by_day
from swarmvar.models.student_t import StudentT

pytestmark = pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")

LEVELS = (0.99, 0.975)
WINDOW = 600


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.asarray(load("sp500"), dtype=float)


@pytest.fixture(scope="module")
def fitted(returns: np.ndarray) -> StudentT:
    # 2008: a volatile stretch, so the weights degenerate within blocks
    agent = StudentT(particles=400, runs=2, ess_threshold=0.9)
    return agent.fit(returns[2000 - WINDOW : 2000], seed=3)


def _seeds(t: int, n: int) -> list[np.random.Generator]:
    """The backtest's day seeds: a generator of its own per day."""
    return [np.random.default_rng([0, 2, t + j, 1]) for j in range(n)]


def _run(agent: StudentT, returns: np.ndarray, block: bool, start: int = 2000, days: int = 90,
         size: int = 15, refit_every: int = 45, horizon: int = 1) -> tuple[list[Any], np.ndarray]:
    """Blocks of ``size`` days from ``start`` on, a rolling-window refit every ``refit_every``."""
    forecasts, dens = [], []
    for t in range(start, start + days, size):
        if t > start and (t - start) % refit_every == 0:
            agent.refit(returns[t - WINDOW : t], seed=t)
        run = agent.forecast_block if block else (
            lambda x, a, h, **kw: forecast_day_by_day(agent, x, a, h, **kw))
        f, d = run(returns[t : t + size], LEVELS, horizon, seeds=_seeds(t, size))
        forecasts += f
        dens.append(d)
    return forecasts, np.concatenate(dens)


def _state(agent: StudentT) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    scalars, arrays = agent._get_state()
    info = {k: v for k, v in scalars["fit_info"].items() if k != "seconds"}  # wall time
    return {**scalars, "fit_info": info}, arrays


def _assert_same_agents(a: StudentT, b: StudentT) -> None:
    (sa, aa), (sb, ab) = _state(a), _state(b)
    assert sa == sb
    assert aa.keys() == ab.keys()
    for k in aa:
        assert np.array_equal(aa[k], ab[k]), k
    assert a.forecast(LEVELS) == b.forecast(LEVELS)
    assert a.forecast(LEVELS, 3, seed=5) == b.forecast(LEVELS, 3, seed=5)
    for x in (0.004, -0.09, 0.05):  # the last ones rejuvenate (ESS threshold 0.9)
        assert a.update(x) == b.update(x)
    assert a.forecast(LEVELS) == b.forecast(LEVELS)
    a.refit(a.history[-WINDOW:], seed=1)
    b.refit(b.history[-WINDOW:], seed=1)
    assert np.array_equal(a._theta, b._theta) and np.array_equal(a._logw, b._logw)


def test_block_equals_the_loop_bit_for_bit_across_moves_and_refits(
        fitted: StudentT, returns: np.ndarray) -> None:
    block, loop = copy.deepcopy(fitted), copy.deepcopy(fitted)
    moves = []
    original = StudentT._rejuvenate_after

    def counted(self: StudentT, *args: Any) -> None:
        moves.append(self is block)
        original(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StudentT, "_rejuvenate_after", counted)
        fb, db = _run(block, returns, block=True)
        fl, dl = _run(loop, returns, block=False)
    assert sum(moves) >= 3 and moves.count(False) == sum(moves)  # moves inside blocks
    assert len(fb) == 90 and fb == fl
    assert np.array_equal(db, dl)
    _assert_same_agents(block, loop)


def test_block_from_a_restored_state_equals_the_loop(fitted: StudentT,
                                                      returns: np.ndarray) -> None:
    # no cached forecast pieces: both build them from the particles
    block, loop = (StudentT.from_state(fitted.state()) for _ in range(2))
    fb, db = _run(block, returns, block=True, start=2100, days=40, size=40)
    fl, dl = _run(loop, returns, block=False, start=2100, days=40, size=40)
    assert fb == fl and np.array_equal(db, dl)
    _assert_same_agents(block, loop)


def test_longer_horizon_is_the_loop(fitted: StudentT, returns: np.ndarray) -> None:
    block, loop = copy.deepcopy(fitted), copy.deepcopy(fitted)
    # horizon > 1 is the base loop itself (simulated paths): a few days show it
    fb, db = _run(block, returns, block=True, days=8, size=4, horizon=5)
    fl, dl = _run(loop, returns, block=False, days=8, size=4, horizon=5)
    assert fb == fl and np.array_equal(db, dl)
    assert all(f.horizon == 5 for f in fb)
    _assert_same_agents(block, loop)


def test_log_densities_are_the_mixture_predictive(fitted: StudentT, returns: np.ndarray) -> None:
    agent = copy.deepcopy(fitted)
    x = returns[2000:2010]
    w = np.exp(agent._logw) / np.exp(agent._logw).sum()
    mu, sigma, nu = agent._mu, agent._sigma, agent._nu
    from scipy import stats
    expect = np.log(w @ stats.t.pdf(x[0], nu, mu, sigma))
    _, dens = agent.forecast_block(x, LEVELS)
    assert dens[0] == pytest.approx(expect, rel=1e-12)


def test_forecasts_see_only_earlier_returns(fitted: StudentT, returns: np.ndarray) -> None:
    x = returns[2000:2030].copy()
    base, _ = copy.deepcopy(fitted).forecast_block(x, LEVELS)
    for j in (0, 7, 29):
        y = x.copy()
        y[j:] = -y[j:] * 1.7  # a different future from day j on (moves and all)
        changed, _ = copy.deepcopy(fitted).forecast_block(y, LEVELS)
        assert changed[: j + 1] == base[: j + 1]
        if j < 29:
            assert changed[j + 1 :] != base[j + 1 :]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1.5 * MAX_ABS_RETURN])
@pytest.mark.parametrize("where", [0, 11, 24])
def test_a_bad_return_anywhere_raises_and_leaves_the_agent(
        fitted: StudentT, returns: np.ndarray, bad: float, where: int) -> None:
    agent = copy.deepcopy(fitted)
    before = agent.state()
    x = returns[2000:2025].copy()
    x[where] = bad
    with pytest.raises(InvalidReturns):
        agent.forecast_block(x, LEVELS)
    assert agent.state() == before


def test_seeds_and_empty_blocks(fitted: StudentT) -> None:
    agent = copy.deepcopy(fitted)
    before = agent.state()
    forecasts, dens = agent.forecast_block(np.array([]), LEVELS)
    assert forecasts == [] and dens.shape == (0,) and agent.state() == before
    with pytest.raises(InvalidParameter):
        agent.forecast_block(np.array([0.01, 0.02]), LEVELS, seeds=[1])
    assert agent.state() == before
