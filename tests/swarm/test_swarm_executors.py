"""Local processes and Ray: the same numbers bit for bit; a killed host is restored from its
checkpoint in the background and catches up while the other hosts beat on."""

from __future__ import annotations

import os
import signal
import time

import pytest

from swarmvar.swarm import LocalExecutor
from swarmvar.swarm.executors import HostLost, shard_of
from swarmvar.swarm.runtime import RESTORING
from swarmvar.types import Tick

from .conftest import CHEAP, make_swarm
from .test_swarm_restore_async import LOST, check_gated, gated_run, ledger_beats, reference

#: "a" and "b" share shard 1 of two, "d" is on shard 0
PORTFOLIOS = ("a", "b", "d")
OFFSETS = {"a": 0, "b": 400, "d": 800}


def _kill_actor(ray, actor) -> None:
    """``ray.kill`` and wait until the actor no longer answers: the kill is asynchronous, and
    an actor that still answers the next beat makes that beat's outcome a race."""
    ray.kill(actor)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_ready__.remote(), timeout=10)
        except Exception:  # RayActorError (or a timeout): the actor is gone
            return
        time.sleep(0.02)
    raise AssertionError("a killed Ray actor still answers after 60 s")


def _run(home, sp500, executor, beats=24, kill_at=None, kill=None):
    out = {}
    swarm = make_swarm(home, PORTFOLIOS, agents=CHEAP, executor=executor, checkpoint_every=12)
    with swarm:
        swarm.start({p: sp500.iloc[o: o + 250] for p, o in OFFSETS.items()})
        for i in range(beats):
            if i == kill_at and kill is not None:
                kill(executor)
            ticks = [Tick(p, sp500.index[o + 250 + i].to_pydatetime(),
                          value=float(sp500.iloc[o + 250 + i])) for p, o in OFFSETS.items()]
            for r in swarm.beat(ticks) + (swarm.settle() if i == beats - 1 else []):
                if not r.events or not r.events[0].startswith(RESTORING):
                    assert (r.portfolio, r.seq) not in out
                    out[(r.portfolio, r.seq)] = ({a: f.levels for a, f in r.forecasts.items()},
                                                 r.consensus)
    return out


def test_worker_processes_give_the_same_numbers_and_survive_a_kill(tmp_path, sp500):
    inline = _run(tmp_path / "inline", sp500, LocalExecutor())

    def kill(executor):  # the host of "a" and "b"; "d" beats on
        os.kill(executor.pids()[shard_of("a", 2)], signal.SIGKILL)

    workers = _run(tmp_path / "workers", sp500, LocalExecutor(workers=2), kill_at=15, kill=kill)
    assert workers == inline
    assert ledger_beats(tmp_path / "workers") == ledger_beats(tmp_path / "inline")


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_actors_give_the_same_numbers_and_survive_a_kill(tmp_path, sp500, ray_cluster):
    """An actor killed: restored in the background on a fresh actor, the other actor's
    portfolios beating meanwhile; then the numbers and the ledger of an uninterrupted run."""
    from swarmvar.swarm.ray_executor import RayExecutor

    from .test_swarm_restore_async import child

    frame = child.frame(sp500)
    beats = 20
    expected = reference(tmp_path / "reference", frame, beats)

    def kill(executor):
        _kill_actor(ray_cluster, executor.actors()[shard_of(LOST, 2)])

    got = gated_run(tmp_path / "ray", frame, RayExecutor(shards=2), kill, beats, kill_at=8)
    check_gated(got, expected, beats)
    assert ledger_beats(tmp_path / "ray") == ledger_beats(tmp_path / "reference")


def test_ray_actor_of_a_spread_group_killed_the_portfolio_serves_m_of_n(tmp_path, sp500,
                                                                        ray_cluster):
    """A portfolio spread over two actors: one killed, the portfolio beats on with the other
    actor's agents (2 of 3, degraded, intervals at least the full swarm's) while the lost
    group is restored on a fresh actor; then it is back with every agent."""
    from swarmvar.swarm.ray_executor import RayExecutor

    from .test_swarm_spread import (
        KILL_SETTINGS,
        _run,
        check_spread_gated,
        spread_gated_run,
    )

    beats, kill_at = 18, 5
    reference = _run(tmp_path / "reference", sp500, beats, **KILL_SETTINGS)

    def kill(executor, shard):
        _kill_actor(ray_cluster, executor.actors()[shard])

    got = spread_gated_run(tmp_path / "ray", sp500, RayExecutor(shards=2), kill, beats, kill_at)
    check_spread_gated(tmp_path / "ray", got, reference, beats, kill_at)


def test_a_shard_that_raises_in_the_call_where_another_dies_is_lost_with_it(tmp_path, sp500):
    """Worker processes: the host of "a" and "b" is killed and the host of "d" raises in the
    same call; HostLost names every portfolio of both (the raising one may have beaten part
    of its batch) and carries the error, which is not swallowed."""
    executor = LocalExecutor(workers=2)
    with make_swarm(tmp_path, PORTFOLIOS, agents=CHEAP, executor=executor) as swarm:
        swarm.start({p: sp500.iloc[o: o + 250] for p, o in OFFSETS.items()})
        os.kill(executor.pids()[shard_of("a", 2)], signal.SIGKILL)
        good = swarm._input("a", 0.001, sp500.index[250].to_pydatetime())
        with pytest.raises(HostLost) as lost:
            executor.beats([("a", good), ("d", None)])  # "d"'s host cannot beat None
        assert set(lost.value.portfolios) == set(PORTFOLIOS)
        assert len(lost.value.errors) == 1 and "shard 0 raised" in str(lost.value)
        swarm._lose(lost.value.portfolios)  # restored from their checkpoint, all of them
        swarm.settle(timeout=60)
        ticks = [Tick(p, sp500.index[o + 250].to_pydatetime(), value=float(sp500.iloc[o + 250]))
                 for p, o in OFFSETS.items()]
        assert [r.seq for r in swarm.beat(ticks)] == [1, 1, 1]


def test_a_ray_actor_lost_before_the_starts_checkpoint_is_fitted_again(tmp_path, sp500,
                                                                      ray_cluster):
    """The actor of "a" and "b" is killed right after the start's fit, before any checkpoint:
    the start fits them again on a fresh actor (nothing stored to restore from) and the
    beats equal an in-process run's."""
    from swarmvar.swarm.ray_executor import RayExecutor

    executor = RayExecutor(shards=2)
    start = executor.start
    killed: list[bool] = []

    def start_then_kill(requests):
        start(requests)
        if not killed:
            killed.append(True)
            _kill_actor(ray_cluster, executor.actors()[shard_of("a", 2)])

    executor.start = start_then_kill  # type: ignore[method-assign]
    got = _run(tmp_path / "ray", sp500, executor, beats=3)
    assert killed
    assert got == _run(tmp_path / "inline", sp500, LocalExecutor(), beats=3)
