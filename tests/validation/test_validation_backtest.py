"""The backtest driver: strictly out of sample, windows and refits aligned, baseline reproduced."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.consensus import Aggregator, LevelForecasts, Policy, Weighting, consensus_levels
from swarmvar.data import load
from swarmvar.errors import InvalidParameter, InvalidReturns, WorkerFailed
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.models.risk import check_alphas
from swarmvar.types import Forecast, RiskMeasure
from swarmvar.validation import Test, backtest, kupiec
from swarmvar.validation.backtest import _pool_context
from swarmvar.validation.evaluate import evaluate_row


def simulated(n: int, seed: int) -> np.ndarray:
    """GARCH-like returns so that forecasts move from day to day."""
    rng = np.random.default_rng(seed)
    r, s2 = np.empty(n), 1e-4
    for t in range(n):
        r[t] = np.sqrt(s2) * rng.standard_t(6) * np.sqrt(4 / 6)
        s2 = 2e-6 + 0.08 * r[t] ** 2 + 0.9 * s2
    return r


def mean_combiner(forecasts: dict[str, Forecast]) -> Forecast:
    first = next(iter(forecasts.values()))
    levels = []
    for alpha in first.alphas:
        ms = [f.at(alpha) for f in forecasts.values()]
        v, e = float(np.mean([m.var for m in ms])), float(np.mean([m.es for m in ms]))
        levels.append(RiskMeasure(alpha, v, e, (v, v), (e, e)))
    return Forecast("mean", first.horizon, tuple(levels))


def forecast_matrix(res: Any) -> np.ndarray:
    return np.stack([
        np.stack([s.var, s.es, s.var_lo, s.var_hi, s.es_lo, s.es_hi])
        for levels in res.series.values() for s in levels.values()
    ])


BASE = simulated(260, 0)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=120, max_value=259),
    noise_seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.5, 3.0, -1.0]),
)
def test_forecasts_never_see_the_day_they_forecast(
    known_mean_normal: Any, cut: int, noise_seed: int, scale: float
) -> None:
    """Changing returns from day ``cut`` on leaves every forecast for days <= cut unchanged."""
    agents = {"knm": known_mean_normal(window=60), "bb": BayesianBootstrap(window=100)}
    swarm = Policy(f=0, aggregator=Aggregator.MEAN, weighting=Weighting.TRACK_RECORD, window=30)
    kw = dict(window=120, refit_every=17, alphas=(0.99, 0.95), seed=3, progress=False,
              n_sim=20, consensus={"mean": mean_combiner, "swarm": swarm})
    perturbed = BASE.copy()
    noise = np.random.default_rng(noise_seed).standard_normal(260 - cut) * 0.01
    perturbed[cut:] = scale * perturbed[cut:] + noise
    a = backtest(BASE, agents, **kw)
    b = backtest(perturbed, agents, **kw)
    day = cut - 120  # index of forecast day `cut`
    fa, fb = forecast_matrix(a), forecast_matrix(b)
    np.testing.assert_array_equal(fa[..., : day + 1], fb[..., : day + 1])
    if day + 1 < fa.shape[-1]:
        assert not np.array_equal(fa[..., day + 1 :], fb[..., day + 1 :])  # the test can fail


def test_refits_and_updates_line_up_with_the_trailing_window(known_mean_normal: Any) -> None:
    r = simulated(300, 1)
    res = backtest(r, [known_mean_normal(window=0)], window=100, refit_every=30,
                   alphas=(0.99,), seed=7, progress=False, baseline=None, n_sim=20)
    s = res.series["KnownMeanNormal"][0.99]
    assert res.timings["KnownMeanNormal"].fits == 7  # days 0, 30, ..., 180 of 200
    for t in (100, 130, 145, 299):
        k = (t - 100) // 30 * 30 + 100  # last refit day
        agent = known_mean_normal(window=0).fit(r[k - 100 : k])
        for x in r[k:t]:
            agent.update(float(x))
        fc = agent.forecast((0.99,), 1, seed=np.random.default_rng([7, 0, t, 1]))
        assert s.var[t - 100] == fc.at(0.99).var
        assert (s.var_lo[t - 100], s.var_hi[t - 100]) == fc.at(0.99).var_interval
    np.testing.assert_array_equal(s.hits, -r[100:] > s.var)
    assert res.logscore["KnownMeanNormal"].shape == (200,)
    assert np.all(np.isfinite(res.logscore["KnownMeanNormal"]))


def test_horizon_losses_are_cumulative(known_mean_normal: Any) -> None:
    r = simulated(200, 2)
    res = backtest(r, [known_mean_normal()], window=100, horizon=5, alphas=(0.99,),
                   progress=False, baseline=None, n_sim=20)
    assert len(res.dates) == 96
    np.testing.assert_allclose(res.returns, [r[t : t + 5].sum() for t in range(100, 196)])
    assert res.logscore == {}


def test_consensus_rows_combine_the_agents_of_the_same_day(known_mean_normal: Any) -> None:
    r = simulated(220, 3)
    res = backtest(r, {"a": known_mean_normal(window=40), "b": BayesianBootstrap(window=80)},
                   window=100, refit_every=10, alphas=(0.99, 0.975), progress=False,
                   baseline="arch", consensus={"mean": mean_combiner}, n_sim=50)
    assert res.rows == ("a", "b", "mean", "arch GARCH(1,1)-t")
    for alpha in (0.99, 0.975):
        want = (res.series["a"][alpha].var + res.series["b"][alpha].var) / 2
        np.testing.assert_allclose(res.series["mean"][alpha].var, want, rtol=1e-14)
        assert res.evaluation["mean"][alpha].dm_vs_baseline is not None
    assert res.evaluation["arch GARCH(1,1)-t"][0.99].dm_vs_baseline is None


def test_a_policy_row_is_the_swarm_consensus_of_the_agents(known_mean_normal: Any) -> None:
    """A Policy row = consensus_series over the agents' columns (baseline excluded)."""
    r = simulated(200, 5)
    agents = {"a": known_mean_normal(window=40), "b": known_mean_normal(window=90),
              "c": BayesianBootstrap(window=60), "d": BayesianBootstrap(window=100)}
    policy = Policy(f=1, weighting=Weighting.TRACK_RECORD, window=50)
    res = backtest(r, agents, window=100, refit_every=10, alphas=(0.99, 0.95), progress=False,
                   consensus={"swarm": policy}, n_sim=20)
    assert res.rows == ("a", "b", "c", "d", "swarm", "arch GARCH(1,1)-t")
    levels = {}
    for alpha in (0.99, 0.95):
        cols = [res.series[n][alpha] for n in "abcd"]
        levels[alpha] = LevelForecasts(
            np.column_stack([c.var for c in cols]), np.column_stack([c.es for c in cols]),
            np.stack([np.column_stack([c.var_lo for c in cols]),
                      np.column_stack([c.var_hi for c in cols])], axis=-1),
            np.stack([np.column_stack([c.es_lo for c in cols]),
                      np.column_stack([c.es_hi for c in cols])], axis=-1),
        )
    paths = consensus_levels(res.returns, levels, policy)
    for alpha, want in paths.items():
        got = res.series["swarm"][alpha]
        np.testing.assert_array_equal(got.var, want.var)
        np.testing.assert_array_equal(got.es, want.es)
        np.testing.assert_array_equal(np.column_stack([got.var_lo, got.var_hi]),
                                      want.var_interval)
        np.testing.assert_array_equal(got.hits, -res.returns > want.var)
        assert np.all(got.var_lo <= got.var) and np.all(got.var <= got.var_hi)
        assert res.evaluation["swarm"][alpha].dm_vs_baseline is not None
    # the levels never cross
    assert np.all(res.series["swarm"][0.99].var >= res.series["swarm"][0.95].var)
    with pytest.raises(InvalidParameter, match="needs at least 3 agents"):
        backtest(r, {"a": known_mean_normal()}, window=100, progress=False, baseline=None,
                 consensus={"swarm": policy})


def test_worker_processes_give_the_same_numbers_and_report_all_progress() -> None:
    r = simulated(200, 6)
    agents = {"nig": NormalInverseGamma(), "bb": BayesianBootstrap(window=80)}
    kw = dict(window=120, refit_every=15, alphas=(0.99, 0.975), seed=4, progress=False,
              n_sim=20, consensus={"mean": mean_combiner}, baseline=None)
    serial = backtest(r, agents, **kw)
    seen: list[tuple[int, int]] = []
    parallel = backtest(r, agents, workers=2, on_day=lambda d, t: seen.append((d, t)), **kw)
    np.testing.assert_array_equal(forecast_matrix(serial), forecast_matrix(parallel))
    assert parallel.rows == serial.rows
    # every row's tests too, the consensus row's run level by level on the workers
    for row in serial.rows:
        for alpha in (0.99, 0.975):
            a, b = serial.evaluation[row][alpha], parallel.evaluation[row][alpha]
            assert (a.fz0, a.pinball) == (b.fz0, b.pinball)
            assert a.tests.keys() == b.tests.keys()
            np.testing.assert_array_equal(  # NaN where a test is undefined, on both sides
                [(a.tests[k].statistic, a.tests[k].pvalue) for k in a.tests],
                [(b.tests[k].statistic, b.tests[k].pvalue) for k in a.tests])
    # the consensus row's tests are evaluate_row's on its series, keyed as row 2 (after
    # the two agents): the same simulations wherever they ran
    raw = evaluate_row(-parallel.returns, parallel.series["mean"], None, seed=4, row=2, n_sim=20)
    for alpha, (tests, _, pinball, _) in raw.items():
        got = parallel.evaluation["mean"][alpha]
        assert got.pinball == pinball
        np.testing.assert_array_equal([(t.statistic, t.pvalue) for t in tests.values()],
                                      [(got.tests[k].statistic, got.tests[k].pvalue)
                                       for k in tests])
    done = np.array([d for d, _ in seen])
    assert seen[-1] == (80 * 2, 80 * 2) and np.all(np.diff(done) > 0)
    with pytest.raises(InvalidParameter, match="workers"):
        backtest(r, agents, workers=0, **kw)


class DayByDay:
    """An agent seen through the plain protocol only (no forecast_block): the per-day path."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.name = agent, agent.name

    def fit(self, returns: Any, *, seed: Any = None) -> Any:
        return self.agent.fit(returns, seed=seed)

    def refit(self, returns: Any, *, seed: Any = None) -> Any:
        return self.agent.refit(returns, seed=seed)

    def update(self, r: float) -> float:
        return float(self.agent.update(r))

    def forecast(self, alphas: Any = (0.99,), horizon: int = 1, *, seed: Any = None) -> Forecast:
        return self.agent.forecast(alphas, horizon, seed=seed)


class ShortBlock(BayesianBootstrap):
    """Breaks the forecast_block contract: one forecast short."""

    def forecast_block(self, returns: Any, alphas: Any = (0.99,), horizon: int = 1, *,
                       seeds: Any = None) -> Any:
        forecasts, dens = super().forecast_block(returns, alphas, horizon, seeds=seeds)
        return forecasts[:-1], dens[:-1]


@pytest.mark.parametrize("horizon", [1, 3])
def test_block_rows_equal_day_by_day_rows(known_mean_normal: Any, horizon: int) -> None:
    """A refit period through forecast_block gives what forecast-then-update per day gives."""
    r = simulated(260, 5)
    kw = dict(window=120, refit_every=17, alphas=(0.99, 0.95), seed=2, progress=False,
              n_sim=20, baseline=None, horizon=horizon)
    agents = [known_mean_normal(window=60), BayesianBootstrap(window=100, draws=100, paths=50)]
    blocks = backtest(r, agents, **kw)
    days = backtest(r, [DayByDay(a) for a in agents], **kw)
    np.testing.assert_array_equal(forecast_matrix(blocks), forecast_matrix(days))
    for name in blocks.logscore:
        np.testing.assert_array_equal(blocks.logscore[name], days.logscore[name])
        assert blocks.timings[name].fits == days.timings[name].fits == 9  # 140 days / 17
        assert blocks.timings[name].update == 0.0 < days.timings[name].update


def test_a_block_of_the_wrong_length_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="forecast_block returned 16 forecasts"):
        backtest(simulated(200, 2), [ShortBlock(window=80)], window=120, refit_every=17,
                 progress=False, baseline=None, n_sim=10)


def test_the_callers_agents_are_left_unfitted(known_mean_normal: Any) -> None:
    agent = known_mean_normal()
    backtest(simulated(150, 4), [agent, agent], window=100, progress=False, baseline=None,
             n_sim=10)
    assert not agent.is_fitted


def test_arch_baseline_reproduces_the_issue_figures() -> None:
    """arch GARCH(1,1)-t, last 2,500 S&P 500 days: 37 breaches at 99% (Kupiec p = 0.024)."""
    r = load("sp500").iloc[-3500:]
    res = backtest(r, [], window=1000, refit_every=20, progress=False, n_sim=200)
    base = res.baseline
    assert base is not None and res.rows == (base,)
    hits99, hits975 = res.series[base][0.99].hits, res.series[base][0.975].hits
    assert hits99.size == 2500 and res.dates[-1] == r.index[-1]
    assert int(hits99.sum()) == 37 and int(hits975.sum()) == 88
    ev = res.evaluation[base]
    assert ev[0.99].tests[Test.KUPIEC].pvalue == pytest.approx(0.024, abs=5e-4)
    assert ev[0.99].tests[Test.CHRISTOFFERSEN].pvalue == pytest.approx(0.018, abs=5e-4)
    assert ev[0.975].tests[Test.KUPIEC].pvalue == pytest.approx(0.002, abs=5e-4)
    assert ev[0.99].tests[Test.KUPIEC].pvalue == kupiec(hits99, 0.99).pvalue
    assert not res.passed(base, 0.99, Test.KUPIEC)
    assert res.timings[base].fits == 125


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"window": 1000}, InvalidReturns),
        ({"window": 1}, InvalidParameter),
        ({"refit_every": 0}, InvalidParameter),
        ({"horizon": 0}, InvalidParameter),
        ({"alphas": (1.5,)}, InvalidParameter),
        ({"baseline": "rugarch"}, InvalidParameter),
        ({"consensus": {"KnownMeanNormal": mean_combiner}}, InvalidParameter),
    ],
)
def test_bad_settings_raise(known_mean_normal: Any, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        backtest(simulated(150, 5), [known_mean_normal()], **{"window": 100, "progress": False,
                                                             "baseline": None, **kwargs})


def test_bad_inputs_raise(known_mean_normal: Any) -> None:
    with pytest.raises(InvalidParameter):
        backtest(simulated(150, 5), [object()], window=100, progress=False)  # type: ignore[list-item]
    r = simulated(150, 5)
    r[120] = np.nan
    with pytest.raises(InvalidReturns):
        backtest(r, [known_mean_normal()], window=100, progress=False)
    with pytest.raises(InvalidReturns):
        backtest(pd.Series(simulated(150, 5) * 100), [known_mean_normal()], window=100,
                 progress=False)
    assert check_alphas((0.99,)) == (0.99,)


class DiesInWorker(NormalInverseGamma):
    """Kills its own process on its 10th update, when it runs in a worker.

    The test's pid travels with the instance (a spawned worker re-imports
    this module, so a module-level pid would be its own).
    """

    parent = 0

    def update(self, r: float) -> float:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 10 and os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().update(r)


def test_a_dead_worker_is_a_clear_error() -> None:
    """A worker killed mid-row (OOM killer, SIGKILL) is WorkerFailed, saying what to try."""
    r = simulated(150, 5)
    dies = DiesInWorker()
    dies.parent = os.getpid()
    with pytest.raises(WorkerFailed, match="worker process died.*workers=1"):
        backtest(r, [NormalInverseGamma(), dies], window=120, baseline=None,
                 progress=False, n_sim=10, workers=2)


def test_workers_fork_only_while_it_is_safe(monkeypatch) -> None:
    """fork (no re-imports) with no other thread and no JAX backend here; spawn otherwise."""
    import importlib

    import jax.numpy as jnp

    driver = importlib.import_module("swarmvar.validation._backtest_pool")  # where it is read

    jnp.zeros(1).block_until_ready()
    assert driver._jax_started()  # the check sees a running backend (JAX's API still has it)
    assert _pool_context().get_start_method() == "spawn"
    monkeypatch.setattr(driver, "_jax_started", lambda: False)
    assert _pool_context().get_start_method() == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert _pool_context().get_start_method() == "spawn"
    finally:
        stop.set()
        other.join()


def test_a_script_without_main_guard_runs_on_forked_workers(tmp_path) -> None:
    """Forked workers do not re-run the calling script, so no __main__ guard is needed."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import numpy as np\n"
        "from swarmvar.models import BayesianBootstrap, NormalInverseGamma\n"
        "from swarmvar.validation import backtest\n"
        "r = np.random.default_rng(0).standard_normal(150) * 0.01\n"
        "res = backtest(r, [NormalInverseGamma(), BayesianBootstrap()], window=120,\n"
        "               baseline=None, progress=False, n_sim=10, workers=2)\n"
        "print('rows:', ','.join(res.rows))\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert "rows: NormalInverseGamma,BayesianBootstrap" in out.stdout, out.stderr[-2000:]
