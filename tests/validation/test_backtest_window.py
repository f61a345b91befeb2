"""``backtest`` refuses a fitting window shorter than an agent's ``min_observations`` once
the agents are resolved, before any fit runs (``swarmvar backtest --window 150`` used to fail
seconds in with GarchEVT's fit error), naming the agent and the smallest window."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter
from swarmvar.models import NormalInverseGamma
from swarmvar.models.registry import AGENT_MODULES, agent_class, most_needed
from swarmvar.validation import backtest
from swarmvar.validation.backtest import Baseline

RETURNS = np.random.default_rng(0).normal(0.0, 0.01, 400)


@pytest.fixture
def no_fit(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every registered agent's fit, refit and forecast replaced by one that records its
    call and fails loudly."""
    ran: list[str] = []
    for name in AGENT_MODULES:
        cls = agent_class(name)
        for method in ("fit", "refit", "forecast"):
            def fail(self: Any, *a: object, _m: str = method, **k: object) -> None:
                ran.append(f"{type(self).__name__}.{_m}")
                raise AssertionError("an agent ran")
            monkeypatch.setattr(cls, method, fail)
    return ran


def _message(window: int, agent: str, need: int) -> str:
    return (f"a window of {window} returns (window={window} in Python, --window {window} on "
            f"the command line) is too short: {agent} needs at least {need} returns to fit; "
            f"give a window of at least {need}")


def test_a_window_below_garch_evts_floor_is_refused_before_any_fit(no_fit: list[str]) -> None:
    roster = [agent_class(n)() for n in ("nig", "bb", "t", "garch", "evt", "egarch")]
    with pytest.raises(InvalidParameter) as info:
        backtest(RETURNS, roster, window=150, progress=False, baseline=Baseline.ARCH)
    assert str(info.value) == _message(150, "GarchEVT", 200)
    assert not no_fit


def test_the_row_name_is_named_and_the_first_wins_a_tie(no_fit: list[str]) -> None:
    rows = {"mine": agent_class("har")(), "yours": agent_class("garch")()}
    with pytest.raises(InvalidParameter, match="mine needs at least 100 returns"):
        backtest(RETURNS, rows, window=99, progress=False, baseline=None)
    with pytest.raises(InvalidParameter, match="GarchT needs at least 100 returns"):
        backtest(RETURNS, [agent_class("garch")(), agent_class("har")()], window=60,
                 progress=False, baseline=None)
    assert not no_fit


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.sampled_from(sorted(AGENT_MODULES)), min_size=1, max_size=5),
       gap=st.integers(1, 198))
def test_every_roster_below_its_floor_is_refused(names: list[str], gap: int) -> None:
    need, agent = most_needed(names)
    window = need - gap
    if window < 2:  # the driver's own whole-number floor answers first
        with pytest.raises(InvalidParameter, match="window must be a whole number >= 2"):
            backtest(RETURNS, [agent_class(n)() for n in names], window=window,
                     progress=False, baseline=None)
        return
    with pytest.raises(InvalidParameter) as info:
        backtest(RETURNS, [agent_class(n)() for n in names], window=window, progress=False,
                 baseline=None)
    assert str(info.value) == _message(window, agent, need)


def test_at_the_floor_the_backtest_runs(known_mean_normal: Any) -> None:
    """The check does not bite at the floor (a cheap agent whose floor is 10) and leaves
    rows that declare no minimum unchecked."""
    res = backtest(RETURNS[:60], [known_mean_normal(window=10)], window=10, refit_every=10,
                   alphas=(0.99,), progress=False, baseline=None, n_sim=50)
    assert len(res.dates) == 50
    with pytest.raises(InvalidParameter, match="KnownMeanNormal needs at least 10"):
        backtest(RETURNS[:60], [known_mean_normal(window=10)], window=9, progress=False,
                 baseline=None)

    class Wrapped:
        """A forecaster that is no Agent and declares no minimum (the Forecaster protocol),
        around NormalInverseGamma (which fits on 2 returns)."""

        name = "wrapped"

        def __init__(self) -> None:
            self.inner = NormalInverseGamma()

        def fit(self, returns: Any, *, seed: Any = None) -> Any:
            return self.inner.fit(returns, seed=seed)

        def refit(self, returns: Any, *, seed: Any = None) -> Any:
            return self.inner.refit(returns, seed=seed)

        def update(self, r: float) -> float:
            return float(self.inner.update(r))

        def forecast(self, alphas: Any = (0.99,), horizon: int = 1, *, seed: Any = None
                     ) -> Any:
            return self.inner.forecast(alphas, horizon, seed=seed)

    assert not hasattr(Wrapped(), "min_observations")
    res = backtest(RETURNS[:60], [Wrapped()], window=5, refit_every=10, alphas=(0.99,),
                   progress=False, baseline=None, n_sim=50)
    assert len(res.dates) == 55
