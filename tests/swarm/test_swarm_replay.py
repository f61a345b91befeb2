"""What the runtime serves equals what the backtest forecast: same seeds, same refit rhythm."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.consensus import agent_weights
from swarmvar.consensus.tempered import joint_losses, tempered_path
from swarmvar.models import DEFAULT_AGENTS, agent_class
from swarmvar.swarm import LocalExecutor, Replay, RoleConfig, Swarm
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import backtest


def _replay_and_backtest(tmp_path, series, agents, window, days, seed, refit_every=20,
                         horizon=1):
    res = backtest(series.iloc[: window + days + horizon - 1],
                   {a: agent_class(a)() for a in agents},
                   window=window, refit_every=refit_every, baseline=None, horizon=horizon,
                   consensus={"consensus": SWARM_POLICY}, progress=False, n_sim=10, seed=seed)
    reports = []
    executor = LocalExecutor()
    # checkpoints only at the start: a checkpoint rebases agents on their restored copies
    with Swarm(["sp500"], home=tmp_path, agents=agents, window=window, seed=seed,
               refit_every=refit_every, executor=executor, roles=RoleConfig.quiet(),
               horizon=horizon,
               checkpoint_every=10**6, fsync=False) as swarm:
        swarm.start({"sp500": series.iloc[:window]})
        summary = swarm.run(Replay(series.iloc[: window + days + horizon - 1],
                                   portfolio="sp500", start=window), on_beat=reports.append)
        assert summary.total_beats == days + horizon - 1 and summary.stopped == "source"
        track = executor.local("sp500").track
        return res, reports, track


def _check_equal(res, reports, agents, days):
    h = res.horizon
    assert len(reports) == days + h - 1
    for k, rep in enumerate(reports[: days - 1]):  # report k forecasts backtest day k + 1
        i = k + 1
        for name in agents:
            for alpha in res.alphas:
                m, s = rep.forecasts[name].at(alpha), res.series[name][alpha]
                got = (m.var, m.es, *m.var_interval, *m.es_interval)
                want = (s.var[i], s.es[i], s.var_lo[i], s.var_hi[i], s.es_lo[i], s.es_hi[i])
                if name == "StudentT":
                    # the start checkpoint swaps each agent for its restored copy, and
                    # StudentT's state() drops its node cache: its ES moves by ~1 ulp
                    assert got[0] == want[0] and got[2:4] == want[2:4], (name, alpha, i)
                    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
                else:
                    assert got == want, (name, alpha, i)
        for c in rep.consensus:
            s = res.series["consensus"][c.alpha]
            np.testing.assert_allclose([c.var, c.es, *c.var_interval, *c.es_interval],
                                       [s.var[i], s.es[i], s.var_lo[i], s.var_hi[i], s.es_lo[i],
                                        s.es_hi[i]], rtol=1e-12, atol=0)
        # breaches: the realized h-day return against the forecast made h beats before
        s = res.series["consensus"]
        if k >= h - 1:
            for a_k, alpha in enumerate(res.alphas):
                assert rep.breaches["consensus"][a_k] == bool(s[alpha].hits[k - h + 1])
        else:
            assert rep.breaches == {}


def test_replay_equals_backtest_on_the_sp500(tmp_path, sp500):
    """The five agents, a 1000-day window, two refits inside: the backtest's numbers (bit for
    bit but StudentT's ES, see _check_equal)."""
    days = 30
    res, reports, _ = _replay_and_backtest(tmp_path, sp500, DEFAULT_AGENTS, 1000, days, seed=7)
    _check_equal(res, reports, DEFAULT_AGENTS, days)


def test_online_track_record_equals_the_batch_computation(tmp_path, sp500):
    """Rows appended beat by beat hold the backtest's forecasts and returns; the weights
    from them equal the backtest path's tempered weights (batch)."""
    agents = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")
    days = 60
    res, reports, track = _replay_and_backtest(tmp_path, sp500, agents, 250, days, seed=1)
    n = len(track)
    assert n == days  # every realized return scored once
    np.testing.assert_array_equal(track.returns, res.returns[:n])
    for alpha in res.alphas:
        v = np.column_stack([res.series[a][alpha].var[:n] for a in agents])
        e = np.column_stack([res.series[a][alpha].es[:n] for a in agents])
        np.testing.assert_array_equal(track.var[alpha], v)
        np.testing.assert_array_equal(track.es[alpha], e)
    online = agent_weights(list(agents), SWARM_POLICY, track.records())
    losses = joint_losses(res.returns[:n], np.stack(
        [np.column_stack([res.series[a][al].var[:n] for a in agents]) for al in res.alphas]),
        np.stack([np.column_stack([res.series[a][al].es[:n] for a in agents])
                  for al in res.alphas]), res.alphas)
    batch = tempered_path(np.vstack([losses, np.zeros((1, len(agents)))]),
                          SWARM_POLICY.eta, SWARM_POLICY.window)[n]
    np.testing.assert_allclose(online, batch, rtol=1e-12)


def test_replay_equals_backtest_at_a_five_day_horizon(tmp_path, sp500):
    """h-day forecasts are scored when their h-th return arrives, as the backtest's h-day
    weights see only realized losses."""
    agents = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")
    res, reports, track = _replay_and_backtest(tmp_path, sp500, agents, 250, 30, seed=2,
                                               horizon=5)
    _check_equal(res, reports, agents, 30)
    np.testing.assert_allclose(track.returns, res.returns[: len(track)], rtol=1e-13)


@pytest.mark.slow
def test_replay_equals_backtest_on_the_whole_sp500(tmp_path, sp500):
    """Every forecast day of the S&P 500 after a 1000-day window (~4,000 beats)."""
    days = sp500.size - 1000
    res, reports, _ = _replay_and_backtest(tmp_path, sp500, DEFAULT_AGENTS, 1000, days, seed=0)
    _check_equal(res, reports, DEFAULT_AGENTS, days)
