"""A leveraged book's crash day during the beats: its agents must not fall silent.

The book's assets pass the tick door (``|r| <= 1`` each), but its own computed log
return on the crash day is about -1.05 (a 65% loss of its net value). Agents widened
for books (``Agent.take_book_returns``) take it: forecasts and a consensus on every
beat, through a refit over a window holding the day and a resume from a checkpoint.
The runtime does not widen its book agents yet (``sandboxing.AgentHost.new``, not this
test's module): ``wired`` patches that one call in, and the unpatched run is the
regression this file guards (strict xfail: it flips to a failure once the runtime
widens its book agents, and the mark is removed then).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from swarmvar.errors import InvalidTick
from swarmvar.swarm import RoleConfig, Swarm
from swarmvar.swarm.ticks import PortfolioSpec
from swarmvar.types import Tick

from .conftest import CHEAP

WINDOW = 60
BEATS = 12
CRASH = WINDOW + 5  # the row where x loses 52% (its log return -0.73)
LEVERED = {"lev": {"positions": {"x": 100000, "y": -20000}}}


@pytest.fixture(scope="module")
def assets() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    days = pd.date_range("2020-01-01", periods=WINDOW + BEATS, freq="D")
    frame = pd.DataFrame({"x": rng.normal(0, 0.01, len(days)),
                          "y": rng.normal(0, 0.012, len(days))}, index=days)
    frame.iloc[CRASH, 0] = math.log(0.48)
    return frame


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's agents widened for books (the one call the runtime is to make)."""
    from swarmvar.swarm import sandboxing

    plain = sandboxing.AgentHost.new

    def new(self: Any, name: str) -> Any:
        agent = plain(self, name)
        widen = getattr(agent, "take_book_returns", None)
        return agent if widen is None else widen()

    monkeypatch.setattr(sandboxing.AgentHost, "new", new)


def _swarm(home: Any) -> Swarm:
    return Swarm(LEVERED, home=home, agents=CHEAP, window=WINDOW, refit_every=4,
                 checkpoint_every=4, fsync=False, roles=RoleConfig.quiet())


def _tick(frame: pd.DataFrame, i: int) -> Tick:
    row = frame.iloc[i]
    return Tick("lev", frame.index[i].to_pydatetime(), assets={"x": float(row["x"]),
                                                               "y": float(row["y"])})


def _beats(home: Any, frame: pd.DataFrame, rows: range) -> list[Any]:
    with _swarm(home) as swarm:
        swarm.start(frame.iloc[:WINDOW])
        return [swarm.step(_tick(frame, i)) for i in rows]


def _stream_through_the_crash(tmp_path: Any, assets: pd.DataFrame) -> None:
    value = PortfolioSpec("lev", positions=LEVERED["lev"]["positions"]).value_of(
        dict(assets.iloc[CRASH]))
    assert -1.1 < value < -1.0  # the book is past |r| <= 1, its assets are not
    home = tmp_path / "home"
    first = _beats(home, assets, range(WINDOW, CRASH + 3))  # the crash, a refit over it
    later = _beats(home, assets, range(CRASH + 3, WINDOW + BEATS))  # resumed, checkpointed
    reports = first + later
    assert [r.realized for r in reports][CRASH - WINDOW] == pytest.approx(value)
    for r in reports:
        assert not r.rejected, (r.seq, r.rejected)
        assert set(r.forecasts) == set(CHEAP), (r.seq, sorted(r.forecasts))
        assert r.consensus and all(math.isfinite(c.var) for c in r.consensus)
    crash = CRASH - WINDOW
    # the day is news to every agent: the next day's VaR is above the day before's
    for name in CHEAP:
        assert (reports[crash].forecasts[name].at(0.99).var
                > reports[crash - 1].forecasts[name].at(0.99).var), name


def test_a_levered_book_streams_through_its_crash_day(tmp_path, assets, wired):
    _stream_through_the_crash(tmp_path, assets)


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="the runtime does not widen its book agents yet (AgentHost.new)")
def test_the_runtime_as_it_is_leaves_the_agents_silent(tmp_path, assets):
    _stream_through_the_crash(tmp_path, assets)


def test_a_book_tick_past_the_books_bound_is_refused_in_its_words():
    spec = PortfolioSpec("lev", positions={"x": 100000, "y": -99900})  # 100 net
    with pytest.raises(InvalidTick, match="lose all its value"):
        spec.value_of({"x": math.log(0.9), "y": 0.0})  # -10,000 on 100 net
    with pytest.raises(InvalidTick, match=r"would gain 200 times its value \(a log return "
                                          r"of 5.3\), beyond \|r\| <= 5"):
        spec.value_of({"x": math.log(1.2), "y": 0.0})  # +20,000 on 100 net
    assert spec.value_of({"x": math.log(1.1), "y": 0.0}) == pytest.approx(math.log(101))
    with pytest.raises(InvalidTick, match="divide by 100"):
        spec.value_of({"x": 1.5, "y": 0.0})  # a typed percent asset: the door's words
