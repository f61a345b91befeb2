"""The consensus as a backtest forecaster: per-day robust paths without look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.consensus import Aggregator, Loss, Policy, Weighting, consensus_series
from swarmvar.errors import InvalidParameter, NotEnoughAgents


def forecasts(days: int = 120, n: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, size=days)
    scale = rng.uniform(0.7, 1.4, size=n)
    var = 0.0233 * scale[None, :] * rng.uniform(0.95, 1.05, size=(days, n))
    return r, var, var * 1.15


def test_equal_weight_trimmed_mean_path_matches_scipy():
    r, var, es = forecasts()
    path = consensus_series(r, var, es, 0.99, Policy(f=2, aggregator=Aggregator.TRIMMED_MEAN))
    np.testing.assert_allclose(path.var, stats.trim_mean(var, 2 / 7, axis=1), rtol=1e-12)
    np.testing.assert_allclose(path.es, stats.trim_mean(es, 2 / 7, axis=1), rtol=1e-12)
    np.testing.assert_allclose(path.weights.sum(axis=1), 1.0)


def test_byzantine_column_cannot_move_the_path_out_of_the_honest_range():
    r, var, es = forecasts()
    var[:, 6], es[:, 6] = 1e300, 1e300
    var[:, 5], es[:, 5] = 0.0, 0.0
    for aggregator in (Aggregator.MEDIAN, Aggregator.TRIMMED_MEAN):
        path = consensus_series(r, var, es, 0.99, Policy(f=2, aggregator=aggregator))
        honest = var[:, :5]
        assert np.all(path.var >= honest.min(axis=1)) and np.all(path.var <= honest.max(axis=1))


def test_track_record_weights_use_only_the_past():
    r, var, es = forecasts()
    policy = Policy(f=1, weighting=Weighting.TRACK_RECORD, loss=Loss.FZ0, window=60)
    base = consensus_series(r, var, es, 0.99, policy)
    shocked = r.copy()
    shocked[80] = -0.2  # a crash on day 80 changes weights from day 81 on, never before
    after = consensus_series(shocked, var, es, 0.99, policy)
    np.testing.assert_array_equal(base.var[:81], after.var[:81])
    assert not np.allclose(base.weights[81], after.weights[81])


def test_bma_path_and_validation():
    r, var, es = forecasts(days=30)
    log_scores = np.zeros_like(var)
    log_scores[:, 0] = 1.0  # agent 0 predicts best every day
    path = consensus_series(
        r,
        var,
        es,
        0.99,
        Policy(f=0, aggregator=Aggregator.MEAN, weighting=Weighting.BMA),
        log_scores=log_scores,
    )
    assert path.weights[0] == pytest.approx(np.full(7, 1 / 7))
    assert path.weights[-1, 0] > 0.99
    with pytest.raises(InvalidParameter, match="log_scores"):
        consensus_series(r, var, es, 0.99, Policy(f=0, weighting=Weighting.BMA))
    with pytest.raises(NotEnoughAgents):
        consensus_series(r, var[:, :4], es[:, :4], 0.99, Policy(f=2))
    with pytest.raises(InvalidParameter):
        consensus_series(r[:-1], var, es, 0.99, Policy(f=1))
