"""Property-based fuzzing of every agent: constructor, ``fit``, ``update``, ``forecast``,
``from_state``.

The single assertion everywhere: a :class:`~swarmvar.errors.SwarmVarError`,
or a correct result. A refused ``update`` leaves the agent as it was (its
state bytes unchanged); a state that is restored despite damage restores
exactly the original agent (the damage touched nothing the state means).
"""

from __future__ import annotations

import functools
import io
import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmvar.data import load
from swarmvar.errors import ConvergenceWarning, SwarmVarError
from swarmvar.models import agent_class
from swarmvar.models.base import MAX_HORIZON, Agent
from swarmvar.models.registry import AGENT_MODULES

NAMES = tuple(AGENT_MODULES)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

#: Small but real agents (the defaults' sampler settings cost seconds per fit).
SMALL: dict[str, dict[str, Any]] = {
    "NormalInverseGamma": {},
    "BayesianBootstrap": {"window": 100, "draws": 50, "paths": 50},
    "StudentT": {"particles": 100},
    "GarchT": {"particles": 100, "runs": 2},
    "GarchEVT": {"particles": 100, "runs": 2},
    "BetaSkewTEgarch": {"particles": 100, "runs": 2},
    "HarArch": {"particles": 100, "runs": 2},
    "MarkovSwitching": {"particles": 100, "runs": 2},
    "MarkovSwitchingGarch": {"particles": 100, "runs": 2},
}


@functools.cache
def _fitted_state(name: str) -> bytes:
    r = load("sp500").to_numpy()[-400:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small clouds: R-hat may doubt
        return agent_class(name)(**SMALL[name]).fit(r, seed=3).state()


def _agent(name: str) -> Agent:
    return agent_class(name).from_state(_fitted_state(name))


anything = st.one_of(
    st.none(), st.booleans(), st.text(max_size=6), st.binary(max_size=4),
    st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(0, 3), max_size=3), st.tuples(st.floats(0, 1)),
    st.sampled_from([np.float64("nan"), np.int64(7), np.array([1.0]), {"a": 1}, 1j, 0.5, 3]),
)


@FUZZ
@given(st.sampled_from(NAMES), st.data())
def test_constructor_of_any_parameters(name: str, data: st.DataObject) -> None:
    cls = agent_class(name)
    names = cls.parameter_names()
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    kwargs = {k: data.draw(anything, label=k) for k in chosen}
    try:
        agent = cls(**kwargs)
    except SwarmVarError as exc:
        assert str(exc)
        return
    # accepted: plain values that rebuild the same agent
    params = agent.params()
    assert cls(**params).params() == params
    for value in params.values():
        assert isinstance(value, (bool, int, float, str, tuple))
        if isinstance(value, float):
            assert math.isfinite(value)


returns_like = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60),
    st.lists(st.floats(-0.2, 0.2), min_size=0, max_size=260),
    st.lists(st.sampled_from([0.0, 0.01, -0.01]), max_size=260),
    anything,
    st.just(np.zeros((10, 2))),
)


@FUZZ
@given(st.sampled_from(NAMES), returns_like)
def test_fit_of_anything(name: str, returns: Any) -> None:
    agent = agent_class(name)(**SMALL[name])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent.fit(returns, seed=0)
    except SwarmVarError as exc:
        assert str(exc) and not agent.is_fitted
        return
    x = np.asarray(returns, dtype=float)
    assert x.ndim == 1 and x.size >= agent.min_observations and np.all(np.abs(x) <= 1)
    fc = agent.forecast((0.99,))
    assert all(math.isfinite(m.var) and m.es >= m.var - 1e-12 for m in fc.levels)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(NAMES), st.one_of(st.none(), st.integers(-2, 2**70), anything),
       st.booleans())
def test_fit_and_refit_with_any_seed(name: str, seed: Any, refit: bool) -> None:
    r = load("sp500").to_numpy()[-300:]
    agent = _agent(name) if refit else agent_class(name)(**SMALL[name])
    before = agent.state() if refit else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            (agent.refit if refit else agent.fit)(r, seed=seed)
    except SwarmVarError:
        assert agent.state() == before if refit else not agent.is_fitted
        return
    assert seed is None or isinstance(seed, (int, np.integer, np.random.Generator))
    assert agent.is_fitted and math.isfinite(agent.forecast((0.99,)).levels[0].var)


@FUZZ
@given(st.sampled_from(NAMES), st.one_of(anything, st.floats(-1.5, 1.5)))
def test_update_of_anything_leaves_a_refusing_agent_as_it_was(name: str, r: Any) -> None:
    agent = _agent(name)
    before = agent.state()
    try:
        logpdf = agent.update(r)
    except SwarmVarError:
        assert agent.state() == before
        return
    assert math.isfinite(logpdf) and abs(float(r)) <= 1


@FUZZ
@given(st.sampled_from(NAMES), returns_like)
def test_refit_of_anything_leaves_a_refusing_agent_as_it_was(name: str, returns: Any) -> None:
    agent = _agent(name)
    before = agent.state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent.refit(returns, seed=1)
    except SwarmVarError:
        assert agent.state() == before
        return
    x = np.asarray(returns, dtype=float)
    assert x.ndim == 1 and x.size >= agent.min_observations
    assert math.isfinite(agent.forecast((0.99,)).levels[0].var)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(NAMES),
       st.one_of(st.lists(st.floats(-0.05, 0.05), max_size=6),  # short: horizon 2 simulates
                 st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6), anything),
       st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-1, 5), anything),
                                     max_size=6)),
       st.sampled_from([1, 1, 2, 0, MAX_HORIZON + 1]))
def test_forecast_block_of_anything(name: str, returns: Any, seeds: Any, horizon: int) -> None:
    agent = _agent(name)
    before = agent.state()
    try:
        forecasts, dens = agent.forecast_block(returns, (0.99,), horizon, seeds=seeds)
    except SwarmVarError:
        assert agent.state() == before  # checked before any day is absorbed
        return
    x = np.asarray(returns, dtype=float)
    assert len(forecasts) == x.size == dens.size and np.all(np.isfinite(dens))
    assert all(f.horizon == horizon and math.isfinite(f.levels[0].var) for f in forecasts)


alphas_like = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    st.lists(st.floats(0.5, 0.999), min_size=1, max_size=3),
    anything,
)
horizon_like = st.one_of(st.integers(-3, 3), st.sampled_from([MAX_HORIZON + 1, 10**9, 10**30]),
                         anything)


@FUZZ
@given(st.sampled_from(NAMES), alphas_like, horizon_like, st.one_of(st.none(), anything))
def test_forecast_of_anything(name: str, alphas: Any, horizon: Any, seed: Any) -> None:
    agent = _agent(name)
    try:
        fc = agent.forecast(alphas, horizon, seed=seed)
    except SwarmVarError as exc:
        assert str(exc)
        return
    assert 1 <= fc.horizon <= MAX_HORIZON and fc.horizon == horizon
    for m in fc.levels:
        assert math.isfinite(m.var) and math.isfinite(m.es) and m.es >= m.var - 1e-12
        assert m.var_interval[0] <= m.var_interval[1] and m.es_interval[0] <= m.es_interval[1]


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    raw = bytearray(original)
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "splice"]))
    if how == "truncate":
        return bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(raw)
    if how == "garbage":
        return draw(st.binary(max_size=300))
    i = draw(st.integers(0, len(raw)))
    return bytes(raw[:i]) + draw(st.binary(min_size=1, max_size=20)) + bytes(raw[i:])


@pytest.mark.parametrize("name", NAMES)
def test_from_state_of_damaged_bytes(name: str) -> None:
    original = _fitted_state(name)

    @FUZZ
    @given(damaged(original))
    def check(data: bytes) -> None:
        try:
            agent = agent_class(name).from_state(data)
        except SwarmVarError:
            return
        assert agent.state() == original  # restored: only bytes that mean nothing changed

    check()


def _rebuilt(original: bytes, header_edit: Any, arrays_edit: Any = None) -> bytes:
    with np.load(io.BytesIO(original), allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes().decode())
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
    header = header_edit(header)
    if arrays_edit is not None:
        arrays = arrays_edit(arrays)
    buf = io.BytesIO()
    text = json.dumps(header) if not isinstance(header, bytes) else header
    raw = text.encode() if isinstance(text, str) else text
    np.savez(buf, __header__=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return buf.getvalue()


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=8,
)


@pytest.mark.parametrize("name", NAMES)
def test_from_state_of_malformed_headers_and_arrays(name: str) -> None:
    original = _fitted_state(name)

    @FUZZ
    @given(st.sampled_from(["format", "model", "params", "scalars", "header", "param",
                            "scalar", "array"]), json_value, st.data())
    def check(part: str, value: Any, data: st.DataObject) -> None:
        arrays_edit = None

        def edit(h: dict[str, Any]) -> Any:
            if part == "header":
                return value
            if part in ("param", "scalar"):
                inner = h["params" if part == "param" else "scalars"]
                key = data.draw(st.sampled_from(sorted(inner) or ["x"]))
                inner[key] = value
                return h
            if part != "array":
                h[part] = value
            return h

        if part == "array":
            def arrays_edit(a: dict[str, Any]) -> dict[str, Any]:
                if a:
                    key = data.draw(st.sampled_from(sorted(a)))
                    with np.errstate(all="ignore"):  # an int8 cast of -inf is the damage itself
                        options = [
                            a[key][:-1], np.full(a[key].shape, np.nan), a[key].astype(np.int8),
                            np.zeros((2, 2, 2)), np.array(["x"]), -np.abs(a[key])]
                    a[key] = data.draw(st.sampled_from(options))
                return a

        try:
            agent = agent_class(name).from_state(_rebuilt(original, edit, arrays_edit))
        except SwarmVarError:
            return
        fc = agent.forecast((0.99,))  # restored: it must work
        assert all(math.isfinite(m.var) and m.es >= m.var - 1e-12 for m in fc.levels)

    check()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_garch_t_state_with_no_usable_weights_is_refused(bad: float) -> None:
    """Found by the fuzz above: an all-NaN ``logw`` was restored and the forecast raised
    a raw ValueError."""
    from swarmvar.errors import InvalidState

    def weights(a: dict[str, Any]) -> dict[str, Any]:
        return {**a, "logw": np.full(a["logw"].shape, bad)}

    blob = _rebuilt(_fitted_state("GarchT"), lambda h: h, weights)
    with pytest.raises(InvalidState, match="log weights"):
        agent_class("GarchT").from_state(blob)
