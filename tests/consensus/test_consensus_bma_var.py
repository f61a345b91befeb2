"""BMA weights through ``swarmvar.var``: the track record carries each agent's predictive
log score of every day at horizon 1 (so the weights are the posterior model probabilities
of those scores), and a horizon above 1, where there are none, is refused saying what to
use instead."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import swarmvar
import swarmvar.swarm
from swarmvar.api import _TRACK_REFIT
from swarmvar.consensus import Aggregator, Weighting, bma_weights
from swarmvar.errors import InvalidParameter, SwarmVarError
from swarmvar.models import agent_class
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import backtest

AGENTS = ["NormalInverseGamma", "BayesianBootstrap", "StudentT"]
BMA = dataclasses.replace(SWARM_POLICY, weighting=Weighting.BMA)
#: Every agent kept, weighted: the consensus's weights are the BMA weights themselves.
BMA_MEAN = dataclasses.replace(BMA, aggregator=Aggregator.MEAN, f=0, f_steps=())
DAYS = 50


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.random.default_rng(11).standard_t(5, 400) * 0.01


def _bma_of_the_record(x: np.ndarray, window: int | None) -> dict[str, float]:
    """The BMA weights of the agents' log scores over the record's days, computed apart:
    the driver with the record's schedule, ``bma_weights`` over its last days."""
    span = min(1000, x.size - DAYS)
    result = backtest(x[-(DAYS - 1 + span + 1):], {n: agent_class(n)() for n in AGENTS},
                      window=span, refit_every=_TRACK_REFIT, alphas=(0.99, 0.975),
                      baseline=None, seed=0, progress=False, n_sim=10, judge_prices=False)
    scores = np.column_stack([result.logscore[n] for n in AGENTS])
    assert scores.shape == (DAYS, 3) and np.all(np.isfinite(scores))
    if window is not None:
        scores = scores[-window:]
    return dict(zip(AGENTS, bma_weights(scores).tolist(), strict=True))


def test_bma_weights_are_the_posterior_of_the_records_log_scores(returns: np.ndarray
                                                                 ) -> None:
    res = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA_MEAN)
    assert res.agreed and res.record == DAYS
    assert res.note == (f"consensus: Bayesian model averaging weights (log scores over its "
                        f"last {DAYS} forecasts), out of sample")
    want = _bma_of_the_record(returns, BMA_MEAN.window)
    assert len({round(w, 6) for w in want.values()}) > 1  # not equal weights
    for c in res.agreed:
        assert c.weights.keys() == want.keys()
        assert all(c.weights[n] == pytest.approx(want[n], rel=1e-9, abs=1e-12)
                   for n in AGENTS), (c.weights, want)
        mixed = sum(want[n] * res.forecasts[n].at(c.alpha).var for n in AGENTS)
        assert c.var == pytest.approx(mixed, rel=1e-9)


def test_the_swarms_rule_with_bma_weights_agrees(returns: np.ndarray) -> None:
    """The default robust rule over BMA weights: a consensus (was: "no consensus: BMA
    weighting needs predictive log scores")."""
    res = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA)
    assert res.agreed and res.record == DAYS and "no consensus" not in res.note
    assert "Bayesian model averaging weights" in res.note


def test_bma_reads_a_cache_with_log_scores_and_weighs_as_fresh(returns: np.ndarray,
                                                              tmp_path: Path) -> None:
    """The track cache keeps each agent's log scores at horizon 1: a BMA call reads the
    record a tempered call wrote (was: BMA never read the cache) and gives the weights and
    numbers of a fresh record; the tempered call reading it back gets none of them."""
    cache = tmp_path / "track"
    tempered = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, track_cache=cache)
    assert "read from the cache" not in tempered.note
    (path,) = cache.glob("track-*.npz")
    with np.load(path) as npz:
        assert npz["log_scores"].shape == (DAYS, len(AGENTS))
    cached = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA_MEAN,
                          track_cache=cache)
    assert cached.note.endswith("; track record read from the cache"), cached.note
    fresh = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA_MEAN)
    assert cached.agreed and len({round(w, 6) for w in cached.agreed[0].weights.values()}) > 1
    assert [(c.var, c.es, c.weights) for c in cached.agreed] == [
        (c.var, c.es, c.weights) for c in fresh.agreed]
    again = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, track_cache=cache)
    assert again.note.endswith("; track record read from the cache")
    assert [(c.var, c.es, c.weights) for c in again.agreed] == [
        (c.var, c.es, c.weights) for c in tempered.agreed]


def test_a_cached_record_without_log_scores_is_rebuilt_for_bma(tmp_path: Path) -> None:
    """A file without log scores (as past horizon 1) is no record for BMA: ``load_track``
    gives None then, and the record of the other weightings otherwise."""
    from swarmvar.consensus import TrackRecord
    from swarmvar.validation.track_cache import load_track, save_track, track_key

    rng = np.random.default_rng(5)
    ids, levels = ("a", "b"), (0.99, 0.975)
    rets = rng.normal(0, 0.01, 8)
    key = track_key(rets, {i: ("m.A", {}) for i in ids}, levels, days=8, window=10,
                    horizon=1, step=1, refit_every=20, seed=0)
    bare = {a: TrackRecord(ids, rets, a, rng.uniform(0.01, 0.03, (8, 2)),
                           rng.uniform(0.03, 0.05, (8, 2))) for a in levels}
    save_track(tmp_path, key, bare)
    assert load_track(tmp_path, key, ids, levels, log_scores=True) is None
    got = load_track(tmp_path, key, ids, levels)
    assert got is not None and all(r.log_scores is None for r in got.values())
    scores = rng.normal(-3, 1, (8, 2))
    scores[2, 1] = -np.inf  # an agent that called the return impossible
    save_track(tmp_path, key, {a: dataclasses.replace(r, log_scores=scores)
                               for a, r in bare.items()})
    got = load_track(tmp_path, key, ids, levels, log_scores=True)
    assert got is not None
    for r in got.values():
        np.testing.assert_array_equal(r.log_scores, scores)
    plain = load_track(tmp_path, key, ids, levels)
    assert plain is not None and all(r.log_scores is None for r in plain.values())


def test_a_file_of_the_format_before_log_scores_is_not_read(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from swarmvar.consensus import TrackRecord
    from swarmvar.validation import track_cache

    ids, levels = ("a", "b"), (0.99,)
    rets = np.linspace(-0.02, 0.02, 4)
    key = track_cache.track_key(rets, {i: ("m.A", {}) for i in ids}, levels, days=4,
                                window=10, horizon=1, step=1, refit_every=20, seed=0)
    record = {0.99: TrackRecord(ids, rets, 0.99, np.full((4, 2), 0.02), np.full((4, 2), 0.03))}
    assert track_cache.CACHE_FORMAT == 2
    monkeypatch.setattr(track_cache, "CACHE_FORMAT", 1)
    track_cache.save_track(tmp_path, key, record)
    monkeypatch.setattr(track_cache, "CACHE_FORMAT", 2)
    assert track_cache.load_track(tmp_path, key, ids, levels) is None
    track_cache.save_track(tmp_path, key, record)  # the same file, rewritten: read
    assert track_cache.load_track(tmp_path, key, ids, levels) is not None


def test_bma_past_horizon_one_is_refused_before_any_fit(returns: np.ndarray,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the agents were fitted before the refusal")

    monkeypatch.setattr(swarmvar.swarm, "run_agents", no_fit)
    with pytest.raises(InvalidParameter, match="horizon 1 only") as caught:
        swarmvar.var(returns, agents=AGENTS, horizon=5, track_days=DAYS, policy=BMA)
    assert isinstance(caught.value, SwarmVarError)
    said = str(caught.value)
    assert "no 5-day density" in said and "Weighting.TEMPERED" in said
    assert "track_days=0" in said


def test_bma_without_a_track_record_is_equal_weights_at_any_horizon(returns: np.ndarray
                                                                    ) -> None:
    res = swarmvar.var(returns, agents=AGENTS, horizon=5, track_days=0, policy=BMA)
    assert res.agreed and res.record is None
    assert res.note == "consensus: equal weights (no track record: track_days=0)"
