"""Bad parameters, damaged states, horizons and degenerate series: clear errors, fast."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, SwarmVarError
from swarmvar.models import BayesianBootstrap, NormalInverseGamma, agent_class
from swarmvar.models import _garch_smc as smc
from swarmvar.models.base import MAX_HORIZON, check_variation
from swarmvar.models.registry import AGENT_MODULES

NAMES = tuple(AGENT_MODULES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", ["0.9", None, [0.5], True, float("nan"), 1j, b"1"])
def test_wrong_types_for_every_parameter_are_invalid_parameter(name, bad):
    cls = agent_class(name)
    for param in cls.parameter_names():
        if param == "asymmetric" and bad is True:
            continue  # a bool is right there
        if param == "sampler" and isinstance(bad, str):
            continue  # a string is the right type; the value is refused (below)
        with pytest.raises(InvalidParameter, match=param):
            cls(**{param: bad})
    if "sampler" in cls.parameter_names():
        with pytest.raises(InvalidParameter, match="sampler"):
            cls(sampler="0.9")


def test_sizes_are_capped_with_a_clear_error():
    with pytest.raises(InvalidParameter, match="window"):
        BayesianBootstrap(window=10**9)
    with pytest.raises(InvalidParameter, match="in memory"):
        BayesianBootstrap(window=100_000, draws=1000)
    with pytest.raises(InvalidParameter, match="particles"):
        agent_class("GarchT")(particles=10**7)
    with pytest.raises(InvalidParameter, match="particles x runs"):
        agent_class("StudentT")(particles=100_000, runs=8)


@pytest.mark.parametrize("horizon", [0, -1, MAX_HORIZON + 1, 10**9, 10**30, 2.0, "10"])
def test_horizon_outside_one_to_the_limit_is_refused(horizon):
    agent = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 100))
    with pytest.raises(InvalidParameter, match=f"1 to {MAX_HORIZON}"):
        agent.forecast((0.99,), horizon)
    assert agent.forecast((0.99,), MAX_HORIZON).horizon == MAX_HORIZON


def _state() -> bytes:
    return NormalInverseGamma().fit(np.random.default_rng(1).normal(0, 0.01, 50)).state()


def _with_header(edit) -> bytes:  # type: ignore[no-untyped-def]
    with np.load(io.BytesIO(_state())) as npz:
        header = json.loads(npz["__header__"].tobytes().decode())
    buf = io.BytesIO()
    raw = edit(header)
    np.savez(buf, __header__=np.frombuffer(raw, dtype=np.uint8))
    return buf.getvalue()


@pytest.mark.parametrize(("data", "match"), [
    (b"", "corrupt or truncated"),
    (b"PK\x03\x04garbage", "corrupt or truncated"),
    (_state()[:-10], "corrupt or truncated"),
    ("not bytes", "bytes"),
    (_with_header(lambda h: b"[1, 2]"), "JSON object"),
    (_with_header(lambda h: b"{not json"), "corrupt or truncated"),
    (_with_header(lambda h: json.dumps({**h, "format": 99}).encode()), "format 99"),
    (_with_header(lambda h: json.dumps({**h, "params": None}).encode()), "params"),
    (_with_header(lambda h: json.dumps({**h, "params": {"nope": 1}}).encode()), "nope"),
    (_with_header(lambda h: json.dumps({**h, "params": {"forgetting": "x"}}).encode()),
     "refuses"),
    (_with_header(lambda h: json.dumps({**h, "scalars": {"m": [1]}}).encode()), "state"),
])
def test_from_state_refuses_damage_as_invalid_state(data, match):
    with pytest.raises(InvalidState, match=match):
        NormalInverseGamma.from_state(data)


def test_every_single_bit_flip_of_a_state_is_caught_or_harmless():
    original = _state()
    caught = 0
    for i in range(0, len(original), 7):  # every 7th byte, one bit each
        flipped = bytearray(original)
        flipped[i] ^= 1 << (i % 8)
        try:
            agent = NormalInverseGamma.from_state(bytes(flipped))
        except SwarmVarError:
            caught += 1
            continue
        assert agent.state() == original  # a field the state does not read (e.g. a zip date)
    assert caught > len(original) // 7 * 0.8


@pytest.mark.parametrize("series", [
    np.zeros(300), np.full(300, 0.01), np.random.default_rng(2).normal(0, 1e-9, 300),
    np.where(np.random.default_rng(3).random(300) < 0.7, 0.0, 0.01),
])
@pytest.mark.parametrize("name", ["StudentT", "GarchT", "GarchEVT"])
def test_degenerate_series_are_refused_up_front(name, series):
    start = time.perf_counter()
    with pytest.raises(InvalidReturns, match="moves|no scale"):
        agent_class(name)().fit(series, seed=0)
    assert time.perf_counter() - start < 5.0  # refused, not sampled (two minutes before)


def test_the_models_that_can_take_a_constant_series_still_do():
    for agent in (NormalInverseGamma(), BayesianBootstrap()):
        fc = agent.fit(np.full(200, 0.001)).forecast((0.99,))
        assert np.isfinite(fc.levels[0].var)
    check_variation(np.tile([0.01, -0.01], 100), "x")  # half one value: allowed


def test_tempering_stops_at_its_stage_cap(monkeypatch):
    monkeypatch.setattr(smc, "MAX_STAGES", 0)
    r = load("sp500").to_numpy()[:300]
    for from_mode in (True, False):
        with pytest.raises(InvalidReturns, match="tempering stages"):
            smc.tempered_fit(r, 2, 100, np.random.default_rng(0), from_mode=from_mode)


def test_nig_memo_gives_the_numbers_a_fresh_lookup_gives():
    r = load("sp500").to_numpy()
    agent = NormalInverseGamma().fit(r[:1500], seed=0)
    for x in r[1500:1600]:
        agent.update(x)
        memo = agent.forecast((0.99, 0.975))
        fresh = NormalInverseGamma.from_state(agent.state()).forecast((0.99, 0.975))
        assert memo == fresh
        assert agent.forecast([0.99, 0.975]) == fresh  # a list: no memo, the same numbers
    assert agent.forecast((0.99,), 10) == NormalInverseGamma.from_state(
        agent.state()).forecast((0.99,), 10)


def test_bootstrap_h_day_paths_are_sums_of_window_draws():
    x = np.array([-0.02, -0.01, 0.0, 0.01, 0.03] * 10)
    agent = BayesianBootstrap(window=50, draws=200, paths=400).fit(x, seed=0)
    sums = agent._path_sums(x, 3, np.random.default_rng(1))  # noqa: SLF001
    assert sums.shape == (200, 400)
    grid = np.round(sums / 0.01)  # every sum of 3 window values is on the 0.01 grid
    np.testing.assert_allclose(sums, grid * 0.01, atol=1e-12)
    assert sums.min() >= 3 * x.min() - 1e-12 and sums.max() <= 3 * x.max() + 1e-12
    # the mean over draws and paths is 3 x the window mean (posterior mean weights 1/n)
    assert abs(sums.mean() - 3 * x.mean()) < 0.002
