"""A leveraged book's crash day during the beats: its agents must not fall silent.

The book's assets pass the tick door (``|r| <= 1`` each), but its own computed log
return on the crash day is about -1.05 (a 65% loss of its net value). The runtime
widens a book's agents (``PortfolioConfig.book``, ``sandboxing.AgentHost``:
``Agent.take_book_returns``), so they take it: forecasts and a consensus on every beat,
through a refit over a window holding the day (in a forager's process too) and a resume
from a checkpoint; a single series keeps the percent rule.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from swarmvar.data._returns import MAX_BOOK_RETURN
from swarmvar.errors import InvalidTick, TaskFailed
from swarmvar.models.registry import agent_class
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


def _swarm(home: Any, roles: RoleConfig | None = None) -> Swarm:
    return Swarm(LEVERED, home=home, agents=CHEAP, window=WINDOW, refit_every=4,
                 checkpoint_every=4, fsync=False, roles=roles or RoleConfig.quiet())


def _tick(frame: pd.DataFrame, i: int) -> Tick:
    row = frame.iloc[i]
    return Tick("lev", frame.index[i].to_pydatetime(), assets={"x": float(row["x"]),
                                                               "y": float(row["y"])})


def _beats(home: Any, frame: pd.DataFrame, rows: range,
           roles: RoleConfig | None = None) -> list[Any]:
    with _swarm(home, roles) as swarm:
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


def test_a_levered_book_streams_through_its_crash_day(tmp_path, assets):
    _stream_through_the_crash(tmp_path, assets)


def test_a_foragers_refit_over_the_crash_keeps_the_widening(tmp_path, assets):
    """``refit_lag`` > 0: the refit runs as a job (``run_refit``, from the agent's state)
    and is swapped in later; the widening rides in that state."""
    from swarmvar.swarm.roles import RefitJob, run_refit

    home = tmp_path / "home"
    roles = dataclasses.replace(RoleConfig.quiet(), refit_lag=2)
    reports = _beats(home, assets, range(WINDOW, WINDOW + BEATS), roles)
    events = [e for rep in reports for e in rep.events]
    assert any("refit-swapped" in e for e in events), events
    assert not any("refit-failed" in e or "refit-dropped" in e for e in events), events
    for r in reports:
        assert set(r.forecasts) == set(CHEAP), (r.seq, sorted(r.forecasts))
    # a job alone, in the book's words: the state it carries takes the crash day
    window = assets.iloc[CRASH - WINDOW + 1:CRASH + 1]
    book = PortfolioSpec("lev", positions=LEVERED["lev"]["positions"]).history(window)
    for widened in (True, False):
        agent = agent_class(CHEAP[0])()
        if widened:
            agent.take_book_returns()
        agent.fit(book.to_numpy()[:-1], seed=0)
        result = run_refit(RefitJob("lev", CHEAP[0], 0, WINDOW, 0, 2, agent.state(),
                                    book.to_numpy(), 0, "test"))
        if widened:
            assert result.state is not None, result.error
            assert agent_class(CHEAP[0]).from_state(result.state).return_bound == MAX_BOOK_RETURN
        else:  # a plain agent's state: the forager refuses the day in the percent words
            assert result.state is None and "divide" in str(result.error)


def test_only_a_book_over_assets_is_a_book(tmp_path):
    """Only a book over assets is widened: a typed series' agents refuse percent as before."""
    with Swarm(["s"], home=tmp_path / "home", agents=CHEAP, window=WINDOW, fsync=False,
               roles=RoleConfig.quiet()) as swarm:
        assert not any(c.book for c in swarm.configs.values())
    levered = _swarm(tmp_path / "lev")
    try:
        assert levered.configs["lev"].book
        assert "book" not in levered.configs["lev"].fingerprint()  # older homes resume
    finally:
        levered.close()


def test_a_book_host_widens_states_from_before_the_flag():
    """An older checkpoint's states carry no flag: restored or rebased, they are widened."""
    from swarmvar.swarm.sandboxing import AgentHost

    name = CHEAP[0]
    plain = agent_class(name)().fit(np.random.default_rng(0).normal(0, 0.01, WINDOW), seed=0)
    book, series = AgentHost(None, {}, book=True), AgentHost(None, {})
    assert book.new(name).return_bound == MAX_BOOK_RETURN
    assert book.restored(name, plain.state()).return_bound == MAX_BOOK_RETURN
    assert book.rebased(name, plain, plain.state()).return_bound == MAX_BOOK_RETURN
    assert book.restored(name, plain.state()).update(-1.05) < 0
    assert series.new(name).return_bound == 1.0
    assert series.restored(name, plain.state()).return_bound == 1.0


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


def test_a_sandboxed_book_agent_is_widened_inside_its_sandbox():
    """The host widens a sandboxed agent too: every fit and restore in its worker makes
    the agent widened, a recycled worker's (restored from the last state) as well."""
    from swarmvar import sandbox
    from swarmvar.models import NormalInverseGamma
    from swarmvar.swarm.sandboxed import SandboxedAgent

    history = np.random.default_rng(2).normal(0, 0.01, WINDOW)
    history[40] = -1.05  # a book's 65% loss
    profile = sandbox.Profile("live", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                              processes=64, file_bytes=1 << 20, tasks_per_worker=6)
    local = NormalInverseGamma().take_book_returns().fit(history, seed=1)
    with sandbox.create("none", profile) as box:
        with pytest.raises(TaskFailed, match="InvalidReturns: .*divide"):
            SandboxedAgent(box, agent="nig").fit(history, seed=1)  # plain: percent words
        remote = SandboxedAgent(box, agent="nig", checkpoint_every=3).take_book_returns()
        remote.fit(history, seed=1)
        for x in (0.01, -1.05, 0.02, 1.2, -0.01, -1.05, 0.0):  # the worker is recycled
            assert remote.update(x) == local.update(x)
        assert remote.forecast((0.99,), seed=3) == local.forecast((0.99,), seed=3)
        assert remote.state() == local.state()
        assert box.health().workers_started >= 2
    with sandbox.create("none", "realtime") as box:
        # widened after its fit (a plain state restored, then widened): the live agent too
        late = SandboxedAgent(box, agent="nig").fit(history[:40], seed=1)
        assert late.take_book_returns() is late and late.update(-1.05) < 0


@pytest.mark.parametrize("op", ["fit", "refit"])
def test_a_fit_whose_worker_is_recycled_right_after_is_not_lost(op):
    """A worker recycled after the fit's task (its quota) has lost the fitted agent: the
    fit is done again, never replaced by a restore of the state before it."""
    from swarmvar import sandbox
    from swarmvar.models import NormalInverseGamma
    from swarmvar.swarm.sandboxed import SandboxedAgent

    rng = np.random.default_rng(4)
    first, second = rng.normal(0, 0.01, WINDOW), rng.normal(0, 0.03, WINDOW)
    local = NormalInverseGamma().fit(first if op == "refit" else second, seed=1)
    if op == "refit":
        local.refit(second, seed=2)
    # the fit (or refit) is its worker's last task: fit + state before it (and, for a
    # refit, two forecasts, so that its own again fits a worker: restore, refit, state)
    quota = 3 if op == "fit" else 5
    profile = sandbox.Profile("live", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                              processes=64, file_bytes=1 << 20, tasks_per_worker=quota)
    with sandbox.create("none", profile) as box:
        if op == "fit":
            SandboxedAgent(box, agent="nig").fit(first, seed=1)  # tasks 1-2
            remote = SandboxedAgent(box, agent="nig").fit(second, seed=1)  # 3, then again
        else:
            remote = SandboxedAgent(box, agent="nig").fit(first, seed=1)  # tasks 1-2
            remote.forecast(seed=0), remote.forecast(seed=0)  # 3-4
            remote.refit(second, seed=2)  # 5, then again
        assert remote.state() == local.state()
        assert box.health().workers_started >= 2
