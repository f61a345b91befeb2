"""Local processes and Ray: the same numbers bit for bit; a killed host is restarted from its
checkpoint and catches up."""

from __future__ import annotations

import os
import signal

import pytest

from swarmvar.swarm import LocalExecutor
from swarmvar.types import Tick

from .conftest import CHEAP, make_swarm

PORTFOLIOS = ("a", "b", "c")
OFFSETS = {"a": 0, "b": 400, "c": 800}


def _run(home, sp500, executor, beats=24, kill_at=None, kill=None):
    out = []
    swarm = make_swarm(home, PORTFOLIOS, agents=CHEAP, executor=executor, checkpoint_every=12)
    with swarm:
        swarm.start({p: sp500.iloc[o: o + 250] for p, o in OFFSETS.items()})
        for i in range(beats):
            if i == kill_at and kill is not None:
                kill(executor)
            ticks = [Tick(p, sp500.index[o + 250 + i].to_pydatetime(),
                          value=float(sp500.iloc[o + 250 + i])) for p, o in OFFSETS.items()]
            reps = swarm.beat(ticks)
            out.append([(r.portfolio, r.seq, {a: f.levels for a, f in r.forecasts.items()},
                         r.consensus) for r in reps])
    return out


def test_worker_processes_give_the_same_numbers_and_survive_a_kill(tmp_path, sp500):
    inline = _run(tmp_path / "inline", sp500, LocalExecutor())

    def kill(executor):
        os.kill(executor.pids()[0], signal.SIGKILL)

    workers = _run(tmp_path / "workers", sp500, LocalExecutor(workers=2), kill_at=15, kill=kill)
    assert workers == inline


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_actors_give_the_same_numbers_and_survive_a_kill(tmp_path, sp500, ray_cluster):
    from swarmvar.swarm.ray_executor import RayExecutor

    inline = _run(tmp_path / "inline", sp500, LocalExecutor())

    def kill(executor):
        for actor in executor.actors().values():
            ray_cluster.kill(actor)
            break

    on_ray = _run(tmp_path / "ray", sp500, RayExecutor(shards=2), kill_at=15, kill=kill)
    assert on_ray == inline
