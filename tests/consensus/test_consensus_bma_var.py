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


def test_bma_does_not_read_a_cache_without_log_scores(returns: np.ndarray,
                                                      tmp_path: Path) -> None:
    """The track cache keeps forecasts only: BMA builds its record each time (same weights),
    and what it wrote serves the other weightings."""
    cache = tmp_path / "track"
    first = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA_MEAN,
                         track_cache=cache)
    again = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, policy=BMA_MEAN,
                         track_cache=cache)
    assert first.agreed and "read from the cache" not in again.note
    assert [c.weights for c in again.agreed] == [c.weights for c in first.agreed]
    tempered = swarmvar.var(returns, agents=AGENTS, track_days=DAYS, track_cache=cache)
    assert tempered.note.endswith("; track record read from the cache")
    fresh = swarmvar.var(returns, agents=AGENTS, track_days=DAYS)
    assert [(c.var, c.es, c.weights) for c in tempered.agreed] == [
        (c.var, c.es, c.weights) for c in fresh.agreed]


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
