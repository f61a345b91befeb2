"""The consensus as a backtest forecaster: per-day robust paths without look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.consensus import (
    Aggregator,
    LevelForecasts,
    Loss,
    Policy,
    TrackRecord,
    Weighting,
    agent_weights,
    bma_weights,
    combine,
    consensus_levels,
    consensus_series,
    joint_weights,
    sign_measures,
    track_record_weights,
)
from swarmvar.consensus.series import rearrange_levels
from swarmvar.errors import InvalidParameter, NotEnoughAgents
from swarmvar.types import RiskMeasure

from .conftest import NOW


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


def test_each_day_is_what_combine_serves_for_the_same_signed_estimates(keys, ring):
    """The backtest row and the live consensus are one rule: same point and interval."""
    r, var, es = forecasts(days=5)
    lo, hi = var * 0.9, var * 1.2
    var_iv, es_iv = np.stack([lo, hi], axis=-1), np.stack([es * 0.9, es * 1.2], axis=-1)
    policy = Policy(f=2, aggregator=Aggregator.TRIMMED_MEAN)
    path = consensus_series(r, var, es, 0.99, policy, var_interval=var_iv, es_interval=es_iv)
    agents = sorted(keys)
    for t in range(5):
        measures = [
            (a, RiskMeasure(0.99, float(var[t, i]), float(es[t, i]),
                            (float(lo[t, i]), float(hi[t, i])),
                            (float(es_iv[t, i, 0]), float(es_iv[t, i, 1]))))
            for i, a in enumerate(agents)
        ]
        signed_ = sign_measures(measures, keys, portfolio="spx", horizon=1, as_of=NOW, seq=t + 1)
        live = combine(signed_, policy, keyring=ring, now=NOW)
        assert path.var[t] == pytest.approx(live.var, rel=1e-12)
        assert path.es[t] == pytest.approx(live.es, rel=1e-12)
        np.testing.assert_allclose(path.var_interval[t], live.var_interval, rtol=1e-12)
        np.testing.assert_allclose(path.es_interval[t], live.es_interval, rtol=1e-12)
        assert live.var_interval[0] <= live.var <= live.var_interval[1]


def test_interval_shapes_are_checked():
    r, var, es = forecasts(days=10)
    with pytest.raises(InvalidParameter, match="var_interval"):
        consensus_series(r, var, es, 0.99, Policy(f=1), var_interval=np.zeros((10, 7)))
    bad = np.stack([var, var], axis=-1)
    bad[3, 2, 1] = np.nan
    with pytest.raises(InvalidParameter, match="es_interval must be finite"):
        consensus_series(r, var, es, 0.99, Policy(f=1), es_interval=bad)


def test_rearrangement_uncrosses_levels_and_keeps_each_interval_with_its_point():
    alphas = np.array([0.99, 0.975, 0.95])
    var = np.array([[0.030, 0.050], [0.038, 0.040], [0.020, 0.030]])  # day 0: 97.5% > 99%
    es = var * 1.3
    es[0, 1], es[1, 1] = 0.045, 0.046  # day 1: every ES at 99% is below its VaR 0.05
    vi = np.stack([var * 0.9, var * 1.1], axis=-1)
    ei = np.stack([es * 0.9, es * 1.1], axis=-1)
    v, e, vi2, ei2 = rearrange_levels(alphas, var, es, vi, ei)
    np.testing.assert_array_equal(v[:, 0], [0.038, 0.030, 0.020])
    np.testing.assert_array_equal(vi2[0, 0], vi[1, 0])  # the interval moved with its point
    np.testing.assert_array_equal(v[:, 1], var[:, 1])  # day 1 was already ordered
    assert np.all(np.diff(v[np.argsort(alphas)], axis=0) >= 0)
    assert np.all(np.diff(e[np.argsort(alphas)], axis=0) >= 0)
    assert np.all(e >= v) and np.all(ei2[..., 0] <= e) and np.all(e <= ei2[..., 1])
    assert e[0, 1] == 0.05
    # ordered input comes back unchanged
    sv = np.sort(var, axis=0)[::-1]
    band = np.stack([sv, sv], -1)
    same = rearrange_levels(alphas, sv, sv * 1.2, band, band * 1.2)
    np.testing.assert_array_equal(same[0], sv)


def test_several_levels_share_one_weight_per_agent_and_do_not_cross():
    r, var, es = forecasts(days=150)
    policy = Policy(f=1, weighting=Weighting.TRACK_RECORD, window=60)
    var975 = var * 0.84
    levels = {0.99: LevelForecasts(var, es), 0.975: LevelForecasts(var975, var975 * 1.18)}
    paths = consensus_levels(r, levels, policy)
    records = [TrackRecord(tuple("abcdefg"), r[:100][-60:], a, lv.var[:100][-60:],
                           lv.es[:100][-60:]) for a, lv in levels.items()]
    prior = agent_weights(list("abcdefg"), policy, records)
    want = joint_weights([track_record_weights(rec.returns, rec.var, rec.alpha, es=rec.es,
                                               loss=policy.loss) for rec in records])
    np.testing.assert_allclose(prior, want, rtol=1e-12)
    assert np.all(paths[0.99].var >= paths[0.975].var)
    assert np.all(paths[0.99].es >= paths[0.99].var)
    single = consensus_series(r, var, es, 0.99, policy)
    assert not np.allclose(single.var[1:], paths[0.99].var[1:])  # the other level counts


@pytest.mark.parametrize(("weighting", "loss", "window", "eta"), [
    (Weighting.TRACK_RECORD, Loss.FZ0, 60, None),
    (Weighting.TRACK_RECORD, Loss.FZ0, None, None),
    (Weighting.TRACK_RECORD, Loss.PINBALL, 25, None),
    (Weighting.TRACK_RECORD, Loss.PINBALL, 1, 40.0),
    (Weighting.BMA, Loss.FZ0, 60, None),
    (Weighting.BMA, Loss.FZ0, None, None),
])
def test_all_days_weights_equal_each_days_track_record_or_bma(weighting, loss, window, eta):
    """The path's weights (computed for all days at once) are, day by day, the public rules'."""
    r, var, es = forecasts(days=150)
    var975 = var * 0.84
    levels = {0.99: LevelForecasts(var, es), 0.975: LevelForecasts(var975, var975 * 1.18)}
    scores = np.random.default_rng(3).normal(3.0, 1.0, size=var.shape)
    policy = Policy(f=1, weighting=weighting, loss=loss, window=window, eta=eta)
    path = consensus_levels(r, levels, policy, log_scores=scores)
    for t in (0, 1, 2, 59, 60, 61, 100, 149):
        start = 0 if window is None else max(0, t - window)
        if t == 0:
            want = np.full(7, 1 / 7)
        elif weighting is Weighting.BMA:
            want = bma_weights(scores[start:t])
        else:
            want = joint_weights([
                track_record_weights(r[start:t], lv.var[start:t], a, es=lv.es[start:t],
                                     loss=loss, eta=eta) for a, lv in levels.items()])
        # the path's weights are those of the VaR's trimmed mean: the trimmed agents get 0
        used = path[0.99].weights[t] > 0
        np.testing.assert_allclose(path[0.99].weights[t][used] / path[0.99].weights[t].sum(),
                                   want[used] / want[used].sum(), rtol=1e-12)


@pytest.mark.parametrize(("aggregator", "n", "f"), [
    (Aggregator.TRIMMED_MEAN, 5, 1), (Aggregator.TRIMMED_MEAN, 7, 2), (Aggregator.MEAN, 4, 0),
    (Aggregator.MEDIAN, 5, 1), (Aggregator.MEDIAN, 6, 1),
])
def test_many_days_at_once_equal_each_days_rule_bit_for_bit(aggregator, n, f):
    """aggregate_many (the backtest path) is aggregate_rows (combine's rule) on every day: points
    and contributions bit for bit, intervals to rounding."""
    from swarmvar.consensus.combine import aggregate_many, aggregate_rows

    rng = np.random.default_rng(n + f)
    days = 300
    var = rng.lognormal(-3.8, 0.3, (days, n))
    var[::7, 1] = var[::7, 0]  # ties, broken by position as the stable sort breaks them
    es = var * rng.uniform(0.9, 1.4, (days, n))  # ES < VaR on some days: es = max(es, var)
    half = rng.uniform(0, 0.004, (days, n, 2))
    lows = np.stack([var - half[..., 0], es - half[..., 1]], axis=-1)
    lows[::11] = -np.abs(lows[::11])  # intervals reaching below zero stay as they are
    rows = np.stack([var, es, lows[..., 0], var + half[..., 0], lows[..., 1],
                     es + half[..., 1]], axis=-1)
    weights = rng.dirichlet(np.ones(n), days)
    weights[::5, 0] = 0.0
    if aggregator in (Aggregator.TRIMMED_MEAN, Aggregator.MEAN):
        weights[3, :] = 1e-320  # every surviving weight underflows: equal among survivors
    policy = Policy(aggregator=aggregator, f=f)
    for w in (weights, None):
        got = aggregate_many(rows, policy, w)
        for t in range(days):
            want = aggregate_rows(rows[t], policy, None if w is None else w[t])
            assert got[0][t] == want[0] and got[1][t] == want[1]
            # intervals: the same numbers to rounding (the live rule rescales before its
            # widening step, which is the identity here up to the last bit)
            np.testing.assert_allclose(got[2][t], want[2], rtol=1e-14, atol=0)
            np.testing.assert_allclose(got[3][t], want[3], rtol=1e-14, atol=0)
            np.testing.assert_array_equal(got[4][t], want[4])
