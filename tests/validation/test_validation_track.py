"""swarmvar.var's h-day track record: non-overlapping h-day windows, scored as the backtest does."""

from __future__ import annotations

import math

import numpy as np
import pytest

import swarmvar
from swarmvar.api import _instance_track
from swarmvar.consensus import Aggregator, Policy, TrackRecord, Weighting, agent_weights
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.validation import backtest

MEAN = Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.TEMPERED, window=1000)


def simulated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # drifting volatility
    return vol * rng.standard_t(5, n) * math.sqrt(3 / 5)


def _agents() -> dict[str, NormalInverseGamma | BayesianBootstrap | None]:
    return {"NormalInverseGamma": None,
            "BayesianBootstrap": BayesianBootstrap(window=100, draws=100, paths=50)}


@pytest.mark.parametrize(("horizon", "days"), [(5, 40), (3, 31), (1, 12)])
def test_the_record_scores_the_last_non_overlapping_windows(horizon: int, days: int) -> None:
    x = simulated(400, 1)
    track, cached = _instance_track(x, _agents(), (0.99,), days=days, window=200,
                                    horizon=horizon, seed=2, workers=1, on_day=None)
    assert not cached
    rec = track[0.99]
    scored = math.ceil(days / horizon)
    assert rec.returns.shape == (scored,) and rec.var.shape == (scored, 2)
    # the last window ends on the last return; each window starts h days after the previous
    ends = [x.size - k * horizon for k in range(scored)][::-1]
    np.testing.assert_allclose(rec.returns, [x[e - horizon : e].sum() for e in ends],
                               rtol=1e-12, atol=0)
    # the numbers are the backtest's every-day run on those days (same seeds, same refits)
    need = (scored - 1) * horizon + 200 + horizon
    every = backtest(x[-need:], {"NormalInverseGamma": NormalInverseGamma(),
                                 "BayesianBootstrap": BayesianBootstrap(window=100, draws=100,
                                                                        paths=50)},
                     window=200, refit_every=20, alphas=(0.99,), horizon=horizon,
                     baseline=None, progress=False, n_sim=10, seed=2)
    for k, name in enumerate(rec.agent_ids):
        np.testing.assert_array_equal(rec.var[:, k], every.series[name][0.99].var[::horizon])
        np.testing.assert_array_equal(rec.es[:, k], every.series[name][0.99].es[::horizon])


def test_var_weighs_its_agents_by_the_h_day_record() -> None:
    x, h, days = simulated(420, 3), 5, 60
    progress: list[tuple[str, int, int]] = []
    res = swarmvar.var(x, [NormalInverseGamma(), BayesianBootstrap(window=100, draws=100,
                                                                   paths=50)],
                       alphas=(0.99, 0.975), horizon=h, track_days=days, policy=MEAN,
                       progress=lambda *a: progress.append(a))
    assert f"its last {days} days in 12 non-overlapping {h}-day windows, out of" in res.note
    assert ("track", 24, 24) in progress  # 12 forecast days x 2 agents
    window = min(1000, x.size - days - h + 1)
    track, _ = _instance_track(x, {"NormalInverseGamma": None,
                                "BayesianBootstrap": BayesianBootstrap(window=100, draws=100,
                                                                       paths=50)},
                            (0.99, 0.975), days=days, window=window, horizon=h, seed=0,
                            workers=1, on_day=None)
    want = agent_weights(list(track[0.99].agent_ids), MEAN,
                         [TrackRecord(r.agent_ids, r.returns, r.alpha, r.var, r.es)
                          for r in track.values()])
    got = [res.agreed[0].weights[n] for n in track[0.99].agent_ids]
    np.testing.assert_allclose(got, want, rtol=1e-12)
