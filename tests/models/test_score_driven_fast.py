"""BetaSkewTEgarch's fast horizon-1 path: the tabulated skew-t against scipy, the forecast
against the exact ``stdtr`` family, ``forecast_block`` against the day-by-day loop (bit for
bit, across moves and refits) and the block input contract every agent meets
(tests/models/test_forecast_block_contract.py's cases, reused)."""

from __future__ import annotations

import copy
import functools
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning
from swarmvar.models import _score_driven_lik as lik
from swarmvar.models._score_driven_family import SkewTCache, skew_cdf_pdf
from swarmvar.models.base import forecast_day_by_day
from swarmvar.models.risk import risk_measures
from swarmvar.models.score_driven import BetaSkewTEgarch


def _contract() -> Any:
    """tests/models/test_forecast_block_contract.py, loaded by path (its cases and check)."""
    path = Path(__file__).parent / "test_forecast_block_contract.py"
    spec = importlib.util.spec_from_file_location("_forecast_block_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contract = _contract()

LEVELS = (0.99, 0.975)


@functools.cache
def _returns() -> np.ndarray:
    return np.asarray(load("sp500"), dtype=float)[-1200:]


@functools.cache
def _state(ess_threshold: float) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        agent = BetaSkewTEgarch(particles=300, runs=2, ess_threshold=ess_threshold)
        return agent.fit(_returns()[:600], seed=5).state()


def _skew_t_cdf(z: np.ndarray, nu: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Fernandez-Steel CDF by scipy's t, written from the definition (not the module's)."""
    left = 2.0 / (1.0 + g * g) * stats.t.cdf(z * g, nu)
    right = 1.0 - 2.0 * g * g / (1.0 + g * g) * stats.t.sf(z / g, nu)
    return np.where(z < 0, left, right)


def test_table_cdf_and_density_against_scipy() -> None:
    rng = np.random.default_rng(0)
    s = 400
    nu = 2.05 + rng.gamma(2.0, 10.0, s)  # the prior's range, heavy tails to near-normal
    g = np.exp(rng.normal(0.0, 0.35, s))
    cache = SkewTCache(nu, g)
    # both branches, the table's middle and far beyond its end (|w| > 65: exact stdtr)
    z = np.stack([-np.geomspace(1e-4, 200.0, s), rng.normal(0.0, 3.0, s),
                  np.geomspace(1e-4, 200.0, s)])
    cdf, pdf, ww, _ = skew_cdf_pdf(cache, z.copy())
    ref = _skew_t_cdf(z, nu, g)
    assert np.max(np.abs(cdf - ref)) < 3e-7
    big = ref > 1e-4
    assert np.max(np.abs(cdf[big] / ref[big] - 1)) < 5e-6
    w = z * np.where(z < 0, g, 1.0 / g)
    dens = 2.0 / (g + 1.0 / g) * stats.t.pdf(w, nu)
    assert np.allclose(pdf, dens, rtol=1e-12, atol=0.0) and np.allclose(ww, w * w, rtol=1e-14)
    # a wrong branch constant is far outside those tolerances
    wrong = np.where(z < 0, 1.0 / (1.0 + g * g) * stats.t.cdf(z * g, nu), ref)
    assert np.max(np.abs(wrong - ref)) > 1e-2


def _cloud(seed: int, s: int, wide_gamma: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    th = lik.sample_prior(s, rng)
    gamma = np.exp(rng.normal(0.4, 0.3, s)) if wide_gamma else th.gamma
    scale = 0.01 * np.exp(rng.normal(0.0, 0.3, s))
    w = rng.dirichlet(np.ones(s))
    return th.mu, scale, th.nu, gamma, w


@pytest.mark.parametrize(("seed", "wide_gamma", "levels"), [
    (1, False, (0.99, 0.975)),
    (2, False, (0.999, 0.95, 0.9)),
    (3, True, (0.99, 0.6)),  # gamma ~ 1.5: the 0.6 level's quantiles on the right branch
])
def test_forecast_is_within_1e_5_of_the_exact_stdtr_path(seed: int, wide_gamma: bool,
                                                        levels: tuple[float, ...]) -> None:
    mu, scale, nu, gamma, w = _cloud(seed, 1000, wide_gamma)
    agent = BetaSkewTEgarch.from_state(_state(0.5))
    agent._theta = agent._theta._replace(mu=mu, nu=nu, gamma=gamma)  # the predictive's inputs
    agent._lam, agent._logw, agent._cache = np.log(scale), np.log(w), None
    fast = agent.forecast(levels)
    exact = risk_measures(lik.FernandezSteelSkewTFamily(mu, scale, nu, gamma, w), levels)
    if wide_gamma:
        q = SkewTCache(nu, gamma).levels((0.6,))[0][0]
        assert np.mean(q > 0) > 0.5  # the right branch is exercised
    for f, e in zip(fast.levels, exact, strict=True):
        assert f.var == pytest.approx(e.var, rel=1e-5) and f.es == pytest.approx(e.es, rel=1e-5)
        assert f.var_interval == pytest.approx(e.var_interval, rel=1e-5)
        assert f.es_interval == pytest.approx(e.es_interval, rel=1e-5)
        assert abs(f.var / e.var - 1) < 1e-6  # in fact much closer than the bound


def _run(agent: BetaSkewTEgarch, block: bool, days: int) -> tuple[list, np.ndarray, int]:
    """Blocks of 20 days after the fit window, a warm refit every 40 days; moves counted."""
    r = _returns()
    forecasts, dens, moves = [], [], 0
    for t in range(600, 600 + days, 20):
        if t > 600 and t % 40 == 0:
            agent.refit(r[t - 600 : t], seed=t)
        before = agent._theta
        run = agent.forecast_block if block else functools.partial(forecast_day_by_day, agent)
        f, d = run(r[t : t + 20], LEVELS)
        moves += agent._theta is not before
        forecasts += f
        dens.append(d)
    return forecasts, np.concatenate(dens), moves


@pytest.mark.parametrize(("ess_threshold", "days"), [(0.5, 160), (0.97, 60)])
def test_block_equals_the_loop_bit_for_bit_across_moves_and_refits(
        ess_threshold: float, days: int) -> None:
    agent = BetaSkewTEgarch.from_state(_state(ess_threshold))
    loop_agent, block_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    f_loop, d_loop, _ = _run(loop_agent, False, days)
    f_block, d_block, moves = _run(block_agent, True, days)
    if ess_threshold > 0.9:
        assert moves >= 3  # the blocks were cut by resample-moves
    assert f_block == f_loop and np.array_equal(d_block, d_loop)
    assert block_agent.state() == loop_agent.state()


@pytest.mark.parametrize(("seeds", "returns", "error"), next(
    m.args[1] for m in contract.test_bad_blocks_raise_before_any_day_is_absorbed.pytestmark
    if m.args[0] == ("seeds", "returns", "error")))
def test_bad_blocks_raise_before_any_day_is_absorbed(seeds, returns, error) -> None:  # noqa: ANN001
    agent = BetaSkewTEgarch.from_state(_state(0.5))
    contract.test_bad_blocks_raise_before_any_day_is_absorbed(
        {"BetaSkewTEgarch": agent}, "BetaSkewTEgarch", seeds, returns, error)
