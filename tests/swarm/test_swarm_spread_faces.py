"""Spread (``Swarm(spread=K)``) beyond the Python API: Ray's shards enforce spread <= hosts
as the local workers do; a spread swarm runs under the mesh (``swarmvar run --mesh --spread
K``: the node takes the spread portfolio's beats). The service's desk runs every portfolio
whole in its process; its refusal of ``--spread`` is in tests/service/test_serve.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter
from swarmvar.ledger import Ledger

from .conftest import make_swarm
from .test_swarm_executors import ray_cluster  # noqa: F401 - the module's local Ray cluster

pytestmark = pytest.mark.timeout(180)


def test_ray_shards_refuse_more_groups_than_actors(tmp_path: Path,
                                                   ray_cluster: object) -> None:  # noqa: F811
    """Two actors cannot host three groups on different hosts: refused before the home is
    written or an actor started; two groups on two actors are accepted, on different
    actors; the CLI refuses ``--executor ray --workers 2 --spread 3`` as a usage error."""
    from swarmvar.swarm.executors import place
    from swarmvar.swarm.ray_executor import RayExecutor
    from swarmvar.swarm.spread import spread_groups

    executor = RayExecutor(shards=2)
    try:
        with pytest.raises(InvalidParameter, match=r"spread 3 .* executor has 2"):
            make_swarm(tmp_path / "a", spread=3, executor=executor)
        assert not (tmp_path / "a").exists() and executor.actors() == {}
    finally:
        executor.close()
    executor = RayExecutor(shards=2)
    with make_swarm(tmp_path / "b", spread=2, executor=executor) as swarm:
        groups = spread_groups(swarm.configs["sp500"], 2)
        assert sorted(place(g, executor.shards) for g in groups) == [0, 1]
    res = CliRunner().invoke(build_app(), ["run", "--home", str(tmp_path / "c"), "--executor",
                                           "ray", "--workers", "2", "--spread", "3", "--quiet"])
    assert res.exit_code == 2 and "--spread" in res.output
    assert not (tmp_path / "c").exists()


def test_a_spread_swarm_feeds_its_mesh_node_every_beat(tmp_path: Path, sp500: object) -> None:
    """What ``swarmvar run --mesh --workers 2 --spread 2`` runs (``serve_swarm_node``): the
    portfolio beats from both groups, each on its worker, and the node takes every beat -
    each realized return into its statistics, each consensus VaR recorded (``mesh.observe``)
    and the last one its value for agreement runs."""
    import threading
    import time

    from swarmvar.consensus.partition import NormalStats
    from swarmvar.mesh import MeshNode, NodeConfig, NodeKeyRing, free_ports
    from swarmvar.mesh.feed import BeatFeed
    from swarmvar.mesh.launch import serve_swarm_node
    from swarmvar.swarm import LocalExecutor, Replay

    from .test_swarm_spread import HISTORY, KILL_SETTINGS, started

    beats = 6
    keys = {n: Ed25519PrivateKey.generate() for n in ("s0", "p1")}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    addresses = {n: f"tcp://127.0.0.1:{p}" for n, p in zip(keys, free_ports(2), strict=True)}

    def config(n: str) -> NodeConfig:
        return NodeConfig(n, addresses[n], {m: a for m, a in addresses.items() if m != n}, ring,
                          home=tmp_path / n)

    peer = MeshNode(config("p1"), keys["p1"], epoch=time.time_ns())
    thread = threading.Thread(target=peer.run, args=(120.0,), daemon=True)
    thread.start()
    node = MeshNode(config("s0"), keys["s0"], epoch=time.time_ns(), feed=BeatFeed())
    reports: list = []
    try:
        with started(tmp_path / "swarm", sp500, executor=LocalExecutor(workers=2),
                     **KILL_SETTINGS) as swarm:
            source = Replay(sp500, portfolio="sp500", start=HISTORY, stop=HISTORY + beats)
            summary = serve_swarm_node(node, swarm, source, max_seconds=60,
                                       on_beat=reports.append)
    finally:
        peer.stop = True
        thread.join(timeout=10)
    assert summary.total_beats == beats == len(reports)
    assert all(c.available == c.total == 3 for r in reports for c in r.consensus)
    assert node.crdt.contributions["s0"].stats == NormalStats.of([r.realized for r in reports])
    assert node.estimate == reports[-1].consensus[0].var
    with Ledger(tmp_path / "s0", create=False) as ledger:
        assert ledger.verify_chain().ok
        seen = {e.data["details"]["beat"]["seq"]: e.data["details"]["beat"]["var"]
                for e in ledger.entries() if e.data.get("type") == "mesh.observe"}
    assert seen == {r.seq: r.consensus[0].var for r in reports}
    with Ledger.open(tmp_path / "swarm") as ledger:  # the swarm's beats came from both groups
        groups = [e.data["beat"]["groups"] for e in ledger.entries()
                  if e.kind == "consensus" and "beat" in e.data]
    assert groups == [["sp500#g0", "sp500#g1"]] * beats

