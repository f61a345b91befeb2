"""``swarmvar.var``: the swarm and its consensus from one call; Forecast's as_of and frames."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

import swarmvar
from swarmvar import data
from swarmvar.errors import InvalidParameter, SwarmVarError, UnknownAgent
from swarmvar.models import NormalInverseGamma
from swarmvar.types import Forecast, RiskMeasure

AGENTS = ["nig", "bootstrap", "NormalInverseGamma"]


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    return data.load("sp500").iloc[-900:]


def test_same_seed_same_numbers_and_a_tidy_frame(returns: pd.Series) -> None:
    one = swarmvar.var(returns, ["nig", "bootstrap"], alphas=(0.99, 0.975), seed=5,
                       consensus=False)
    two = swarmvar.var(returns, ["nig", "bootstrap"], alphas=(0.99, 0.975), seed=5,
                       consensus=False)
    pd.testing.assert_frame_equal(one.to_frame(), two.to_frame())
    other = swarmvar.var(returns, ["bootstrap"], alphas=(0.99,), seed=6, consensus=False)
    assert other.forecasts["BayesianBootstrap"].at(0.99).es_interval != \
        one.forecasts["BayesianBootstrap"].at(0.99).es_interval  # the seed matters
    frame = one.to_frame()
    assert list(frame.columns) == ["agent", "alpha", "var", "es", "var_lo", "var_hi", "es_lo",
                                   "es_hi", "weight", "as_of", "horizon"]
    assert len(frame) == 2 * 2 and frame["weight"].isna().all()  # no consensus asked for
    assert (frame["var_lo"] <= frame["var"]).all() and (frame["var"] <= frame["es"]).all()
    assert one.as_of == datetime(2018, 12, 31, tzinfo=UTC) and one.consensus is None
    fc = one.forecasts["NormalInverseGamma"]
    assert fc.as_of == one.as_of
    assert fc.to_frame()["var"].tolist() == [m.var for m in fc.levels]
    assert "as of 2018-12-31" in fc.summary() and "0.975" in fc.summary()


def test_consensus_of_three_agents_with_track_record_weights(returns: pd.Series) -> None:
    res = swarmvar.var(returns, ["nig", "bootstrap", "garch-t"], alphas=(0.99, 0.975), seed=0,
                       track_days=30)
    c = res.consensus
    assert isinstance(c, Forecast) and c.model == "consensus" and c.as_of == res.as_of
    views = [res.forecasts[n].at(0.99).var for n in res.forecasts]
    assert min(views) <= c.at(0.99).var <= max(views)  # inside the agents' range
    assert c.at(0.99).var >= c.at(0.975).var
    frame = res.to_frame()
    lines = frame[frame.agent != "consensus"]
    for alpha in (0.99, 0.975):
        used = lines[(lines.alpha == alpha) & lines.weight.notna()]
        assert used["weight"].sum() == pytest.approx(1.0)
    assert frame[frame.agent == "consensus"]["var"].tolist() == [c.at(0.99).var,
                                                                 c.at(0.975).var]
    text = res.summary()
    assert "consensus" in text and "GarchT" in text and "as of 2018-12-31" in text
    # an agent given as an instance (a variant) gets its own track record: with default
    # parameters, the very numbers of the named agent (fresh signing keys, same numbers)
    again = swarmvar.var(returns, [NormalInverseGamma(), "bootstrap", "garch-t"],
                         alphas=(0.99, 0.975), seed=0, track_days=30)
    assert again.consensus == c
    variant = swarmvar.var(returns, [NormalInverseGamma(forgetting=0.9), "bootstrap",
                                     "garch-t"], alphas=(0.99, 0.975), seed=0, track_days=30)
    assert variant.forecasts["NormalInverseGamma"] != res.forecasts["NormalInverseGamma"]


def test_bad_calls_raise_clear_errors(returns: pd.Series) -> None:
    with pytest.raises(UnknownAgent, match="no agent called 'oracle'"):
        swarmvar.var(returns, ["oracle"])
    with pytest.raises(InvalidParameter, match="more than once"):
        swarmvar.var(returns, AGENTS)
    with pytest.raises(InvalidParameter, match="horizon"):
        swarmvar.var(returns, ["nig"], horizon=0)
    with pytest.raises(InvalidParameter, match="seed"):
        swarmvar.var(returns, ["nig"], seed=-1)
    with pytest.raises(InvalidParameter):
        swarmvar.var(returns, "nig")  # type: ignore[arg-type]
    with pytest.raises(SwarmVarError):
        swarmvar.var(np.array([0.01, np.nan, 0.02]), ["nig"])
    few = swarmvar.var(returns.iloc[-400:], ["nig", "bootstrap"], consensus=True)
    assert few.consensus is None and "needs at least 3 agents" in few.note


def test_forecast_as_of_is_optional_and_serialized_only_when_set() -> None:
    m = RiskMeasure(0.99, 0.03, 0.04, (0.02, 0.035), (0.03, 0.05))
    plain = Forecast("x", 1, (m,))
    assert "as_of" not in plain.to_dict() and plain.to_frame()["as_of"].isna().all()
    dated = Forecast("x", 1, (m,), as_of=datetime(2020, 1, 2, tzinfo=UTC))
    assert dated.to_dict()["as_of"] == "2020-01-02T00:00:00+00:00"
    assert "as of 2020-01-02" in dated.summary()


def test_import_swarmvar_is_light() -> None:
    import subprocess
    import sys

    probe = ("import sys, swarmvar; print('pandas' in sys.modules, 'numpy' in sys.modules); "
             "swarmvar.var; print('swarmvar.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "False", "True"]
