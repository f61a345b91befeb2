"""A real swarm feeding its mesh node: realized returns to the CRDT, consensus VaR as value."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.consensus.partition import NormalStats
from swarmvar.data import load
from swarmvar.mesh import MeshNode, NodeConfig, NodeKeyRing, free_ports
from swarmvar.mesh.feed import BeatFeed
from swarmvar.mesh.launch import serve_swarm_node
from swarmvar.swarm import Replay, RoleConfig, Swarm
from swarmvar.types import BeatReport

pytestmark = pytest.mark.timeout(200)
NAMES = ["s0", "p1", "p2", "p3"]
WINDOW, DAYS = 250, 8


def test_a_swarm_feeds_its_node_and_its_peers(tmp_path: Path) -> None:
    keys = {n: Ed25519PrivateKey.generate() for n in NAMES}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    addresses = {n: f"tcp://127.0.0.1:{p}" for n, p in zip(NAMES, free_ports(len(NAMES)),
                                                          strict=True)}

    def config(n: str) -> NodeConfig:
        return NodeConfig(n, addresses[n], {p: a for p, a in addresses.items() if p != n}, ring,
                          home=tmp_path / n)

    peers = [MeshNode(config(n), keys[n], epoch=time.time_ns()) for n in NAMES[1:]]
    threads = [threading.Thread(target=x.run, args=(120.0,), daemon=True) for x in peers]
    for t in threads:
        t.start()
    node = MeshNode(config("s0"), keys["s0"], epoch=time.time_ns(), feed=BeatFeed())
    series = load("sp500")
    reports: list[BeatReport] = []
    try:
        with Swarm(["sp500"], home=tmp_path / "swarm",
                   agents=("NormalInverseGamma", "BayesianBootstrap"),
                   policy=dataclasses.replace(DEFAULT_POLICY, f=0), window=WINDOW,
                   roles=RoleConfig.quiet(), fsync=False) as swarm:
            swarm.start({"sp500": series.iloc[:WINDOW]})
            source = Replay(series.iloc[: WINDOW + DAYS], portfolio="sp500", start=WINDOW)
            summary = serve_swarm_node(node, swarm, source, max_seconds=60,
                                       on_beat=reports.append)
        assert summary.total_beats == DAYS == len(reports)
        want = NormalStats.of([r.realized for r in reports])
        assert want.count == DAYS
        assert node.crdt.contributions["s0"].stats == want  # every realized return, exactly
        assert node.estimate == reports[-1].consensus[0].var  # its value for agreement runs
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                "s0" in x.crdt.contributions and x.crdt.contributions["s0"].stats == want
                for x in peers):
            time.sleep(0.05)
        assert all(x.crdt.contributions["s0"].stats == want for x in peers)
    finally:
        for x in peers:
            x.stop = True
        for t in threads:
            t.join(timeout=10)


def test_a_beat_the_node_cannot_take_is_counted_not_fatal(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A beat refused by the node (here: past its observation cap) must not end the node's
    loop (a thread beside the swarm: it would die silently while the swarm ran on)."""
    from datetime import UTC, datetime

    from swarmvar.mesh import node as node_module

    monkeypatch.setattr(node_module, "MAX_OBSERVATIONS", 2)
    keys = {n: Ed25519PrivateKey.generate() for n in ("s0", "p1")}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    a, b = free_ports(2)
    node = MeshNode(NodeConfig("s0", f"tcp://127.0.0.1:{a}", {"p1": f"tcp://127.0.0.1:{b}"},
                               ring), keys["s0"], epoch=time.time_ns(), feed=BeatFeed())
    try:
        for seq in range(1, 5):
            node.feed.push(BeatReport("sp500", seq, datetime(2020, 1, seq, tzinfo=UTC),
                                      0.01 * seq, {}, {}, {}, ()))
        node.step(time.monotonic())  # must not raise
        assert node.crdt.contributions["s0"].stats == NormalStats.of([0.01, 0.02])
        assert node.refused["oversized"] == 2 and node.feed.pending == 0
    finally:
        node.close()


def test_a_node_that_dies_stops_the_swarm_and_says_so(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """If the node's loop dies, the swarm beside it stops after the beat in progress (its
    beats would go nowhere) and the caller gets a MeshError naming the cause."""
    from swarmvar.errors import MeshError

    keys = {n: Ed25519PrivateKey.generate() for n in ("s0", "p1")}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    a, b = free_ports(2)
    node = MeshNode(NodeConfig("s0", f"tcp://127.0.0.1:{a}", {"p1": f"tcp://127.0.0.1:{b}"},
                               ring, home=tmp_path / "s0"), keys["s0"], epoch=time.time_ns(),
                    feed=BeatFeed())
    step = node.step

    def failing_step(now: float) -> float:
        # the loop dies once the node has taken in a beat (dying after a fixed number of
        # steps raced the swarm's first beat on a loaded machine: no beat at all, seq 0)
        if "s0" in node.crdt.contributions:
            raise OSError("the node's socket went away")
        return step(now)

    monkeypatch.setattr(node, "step", failing_step)
    series = load("sp500")
    with Swarm(["sp500"], home=tmp_path / "swarm", agents=("NormalInverseGamma",
                                                           "BayesianBootstrap"),
               policy=dataclasses.replace(DEFAULT_POLICY, f=0), window=WINDOW,
               roles=RoleConfig.quiet(), fsync=False) as swarm:
        swarm.start({"sp500": series.iloc[:WINDOW]})
        source = Replay(series.iloc[: WINDOW + 400], portfolio="sp500", start=WINDOW)
        with pytest.raises(MeshError, match="socket went away"):
            serve_swarm_node(node, swarm, source, max_seconds=60)
        assert 0 < swarm.seq["sp500"] < 400  # stopped early, each beat ledgered
