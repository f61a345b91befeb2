"""A backtest's BMA consensus row past horizon 1 is refused before any row runs, in
``swarmvar.var``'s words. Was: every row ran, then "BMA weighting needs log_scores (T, n)"
with nothing saying why (the agents give a density of the next day only)."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

import swarmvar
from swarmvar.consensus import Aggregator, Weighting
from swarmvar.errors import InvalidParameter
from swarmvar.models import NormalInverseGamma, StudentT
from swarmvar.swarm.consensus import SWARM_POLICY
from swarmvar.validation import _backtest_pool, backtest

backtest_module = importlib.import_module("swarmvar.validation.backtest")

BMA = dataclasses.replace(SWARM_POLICY, aggregator=Aggregator.MEAN, f=0, f_steps=(),
                          weighting=Weighting.BMA)


def _returns() -> np.ndarray:
    return np.random.default_rng(2).standard_t(5, 160) * 0.01


def _agents() -> dict[str, object]:
    return {"nig": NormalInverseGamma(), "t": StudentT()}


def test_bma_past_horizon_one_is_refused_before_any_row_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_rows(*args: object, **kwargs: object) -> None:
        raise AssertionError("a row ran before the refusal")

    monkeypatch.setattr(_backtest_pool, "_run_rows", no_rows)
    monkeypatch.setattr(backtest_module, "_run_rows", no_rows)  # the name the driver calls
    with pytest.raises(InvalidParameter) as caught:
        backtest(_returns(), _agents(), window=100, horizon=5, baseline=None,
                 consensus={"bma": BMA}, progress=False, n_sim=10)
    said = str(caught.value)
    assert said.startswith("consensus 'bma': BMA weighting needs each agent's predictive "
                           "log score of every day")
    assert "no 5-day density" in said and "Weighting.TEMPERED" in said
    assert said.endswith("or Weighting.EQUAL for equal weights")
    # the same words as swarmvar.var's refusal, up to how each asks for equal weights
    with pytest.raises(InvalidParameter) as var_said:
        swarmvar.var(_returns(), agents=["nig", "student-t", "bootstrap"], horizon=5,
                     track_days=20, policy=BMA)
    head = str(var_said.value).split(", or track_days=0")[0]
    assert said.split(", or Weighting.EQUAL")[0] == f"consensus 'bma': {head}"


def test_bma_at_horizon_one_and_other_weights_past_it_still_run() -> None:
    """The refusal is BMA past horizon 1 only (the test can fail: both run to the end)."""
    one = backtest(_returns(), _agents(), window=100, horizon=1, baseline=None,
                   consensus={"bma": BMA}, progress=False, n_sim=10)
    assert np.all(np.isfinite(one.series["bma"][0.99].var))
    tempered = dataclasses.replace(BMA, weighting=Weighting.TEMPERED)
    five = backtest(_returns(), _agents(), window=100, horizon=5, baseline=None,
                    consensus={"tempered": tempered}, progress=False, n_sim=10)
    assert np.all(np.isfinite(five.series["tempered"][0.99].var))
