"""Emergence metrics on a synthetic backtest: gain and DM, MCS, diversity, weights, the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import MCS
from scipy import stats

from swarmvar.consensus import (
    DEFAULT_POLICY,
    LevelForecasts,
    consensus_levels,
    effective_agents,
    joint_losses,
    tempered_path,
)
from swarmvar.emergence import (
    EmergenceSummary,
    error_correlation,
    level_gain,
    mcs_pvalues,
    plot_weights,
    summarize,
)
from swarmvar.errors import InvalidParameter
from swarmvar.validation import BacktestResult, LevelSeries, diebold_mariano, fz0_loss

ALPHAS = (0.99, 0.975)
AGENTS = ("tight", "right", "wide")


def synthetic(days: int = 800, seed: int = 0) -> BacktestResult:
    """Three agents scaling the true Student-t VaR and ES by 0.6, 1.0, 1.6; the consensus row."""
    rng = np.random.default_rng(seed)
    sd = 0.01 * np.exp(np.concatenate([np.zeros(days // 2), np.full(days - days // 2, 0.7)]))
    r = sd * rng.standard_t(5, days) / np.sqrt(5 / 3)
    q = {a: sd * stats.t.ppf(a, 5) / np.sqrt(5 / 3) for a in ALPHAS}
    tq = {a: stats.t.ppf(a, 5) for a in ALPHAS}
    ratio = {a: (5 + tq[a] ** 2) / 4 * stats.t.pdf(tq[a], 5) / (1 - a) / tq[a] for a in ALPHAS}
    series: dict[str, dict[float, LevelSeries]] = {}
    for name, k in zip(AGENTS, (0.6, 1.0, 1.6), strict=True):
        series[name] = {}
        for a in ALPHAS:
            v, e = q[a] * k, q[a] * k * ratio[a]
            series[name][a] = LevelSeries(a, v, e, v * 0.9, v * 1.1, e * 0.9, e * 1.1, -r > v)
    levels = {a: LevelForecasts(np.column_stack([series[n][a].var for n in AGENTS]),
                                np.column_stack([series[n][a].es for n in AGENTS])) for a in ALPHAS}
    path = consensus_levels(r, levels, DEFAULT_POLICY)
    series["consensus"] = {a: LevelSeries(a, p.var, p.es, p.var_interval[:, 0],
                                          p.var_interval[:, 1], p.es_interval[:, 0],
                                          p.es_interval[:, 1], -r > p.var)
                           for a, p in path.items()}
    return BacktestResult(
        dates=pd.bdate_range("2020-01-01", periods=days), returns=r, alphas=ALPHAS, horizon=1,
        window=250, refit_every=20, baseline=None, series=series, logscore={}, evaluation={},
        timings={}, agents=AGENTS,
        consensus_weights={"consensus": {a: p.weights for a, p in path.items()}})


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return synthetic()


@pytest.fixture(scope="module")
def summary(result: BacktestResult) -> EmergenceSummary:
    return summarize(result, mcs_reps=200)


def test_gain_and_dm_match_a_direct_computation(result, summary):
    losses = -result.returns
    for g in summary.gains:
        agent = {n: fz0_loss(losses, result.series[n][g.alpha].var,
                             result.series[n][g.alpha].es, g.alpha) for n in AGENTS}
        best = min(agent, key=lambda n: agent[n].mean())
        cons = fz0_loss(losses, result.series["consensus"][g.alpha].var,
                        result.series["consensus"][g.alpha].es, g.alpha)
        dm = diebold_mariano(cons, agent[best])
        assert g.best_agent == best == "right"
        assert g.gain == pytest.approx(agent[best].mean() - cons.mean())
        assert g.dm_statistic == pytest.approx(dm.statistic)
        assert g.dm_pvalue == pytest.approx(dm.pvalue)
        assert g.dm_pvalue_better == pytest.approx(stats.norm.cdf(dm.statistic))
    assert list(summary.to_frame().index) == list(ALPHAS)


def test_mcs_pvalues_are_archs(result):
    a = 0.99
    losses = {r: fz0_loss(-result.returns, result.series[r][a].var, result.series[r][a].es, a)
              for r in result.rows}
    got = mcs_pvalues(losses, reps=200, seed=3)
    # f = 1 of 3 agents keeps the middle one: the consensus row is "right" exactly
    np.testing.assert_array_equal(losses["consensus"], losses["right"])
    distinct = {r: x for r, x in losses.items() if r != "consensus"}
    ref = MCS(pd.DataFrame(distinct), size=0.1, reps=200, seed=3)
    ref.compute()
    for r in distinct:
        assert got[r] == pytest.approx(float(ref.pvalues.loc[r].iloc[0]))
    assert got["consensus"] == got["right"] == 1.0
    assert got["tight"] < 0.1
    with pytest.raises(InvalidParameter):
        mcs_pvalues({"x": [1.0, 2.0]})


def test_weights_and_effective_agents_are_the_policys(result, summary):
    var = np.stack([np.column_stack([result.series[n][a].var for n in AGENTS]) for a in ALPHAS])
    es = np.stack([np.column_stack([result.series[n][a].es for n in AGENTS]) for a in ALPHAS])
    w = tempered_path(joint_losses(result.returns, var, es, ALPHAS), DEFAULT_POLICY.eta or 0.0,
                      DEFAULT_POLICY.window)
    np.testing.assert_allclose(summary.weights, w)
    np.testing.assert_allclose(summary.effective_agents, effective_agents(w))
    assert summary.used_effective_agents is not None
    assert np.all(summary.used_effective_agents <= 2.0 + 1e-9)  # f = 1 of 3: two survive
    assert 0.0 <= summary.turnover <= 1.0
    assert np.argmax(summary.weights[-1]) == 1


def test_error_correlation_against_numpy():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.02, 0.04, 300)
    var = truth[:, None] * (1 + rng.normal(0, 0.1, (300, 3)))
    got = error_correlation(var, np.zeros(300), 0.99, true_var=truth)
    np.testing.assert_allclose(got, np.corrcoef((var / truth[:, None] - 1).T), atol=1e-12)
    hits = error_correlation(var, rng.normal(0.03, 0.01, 300), 0.99)
    assert hits.shape == (3, 3) and np.allclose(np.diag(hits), 1.0)


def test_summary_finds_the_volatility_break(summary):
    assert summary.disagreement.shape == summary.effective_agents.shape == (800,)
    assert any(400 <= k <= 460 for k in summary.change_points)  # a 2x break in t(5) noise


def test_plot_weights_draws_a_figure(summary):
    fig = plot_weights(summary)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "agent weight"
    with pytest.raises(InvalidParameter):
        plot_weights("summary")  # type: ignore[arg-type]


def test_bad_calls_raise(result):
    with pytest.raises(InvalidParameter, match="BacktestResult"):
        summarize("result")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="no row"):
        summarize(result, consensus="swarm")
    with pytest.raises(InvalidParameter, match="agents"):
        summarize(result, agents=["tight", "nope"])
    with pytest.raises(InvalidParameter):
        level_gain(-result.returns, np.ones((800, 2)), -np.ones((800, 2)), ["a", "b"],
                   np.ones(800), np.ones(800), 0.99)
