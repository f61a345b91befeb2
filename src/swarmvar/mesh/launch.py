"""Start one node from the cluster file and its key file (what ``swarmvar mesh node`` runs)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ..consensus.partition import StalenessBound
from ..errors import InvalidParameter
from .cluster import load_cluster, read_key
from .feed import BeatFeed
from .membership import Timeouts
from .node import MeshNode, NodeConfig
from .transport import FaultPlan, SendPolicy

if TYPE_CHECKING:
    from ..swarm import BadLine, RunSummary, Swarm
    from ..types import BeatReport, Tick


def node_config(cluster_path: str | os.PathLike[str], node_id: str, *,
                home: Path | None, bind: str | None = None,
                peers: Mapping[str, str] | None = None,
                timeouts: Timeouts | None = None, faults: FaultPlan | None = None,
                policy: SendPolicy = SendPolicy.BACKPRESSURE,
                staleness: float = 1.5) -> NodeConfig:
    """A node's configuration: its address from the cluster file unless ``bind`` is given
    (``tcp://*:PORT`` binds every interface), peers' addresses overridable by ``peers``."""
    cluster = load_cluster(cluster_path)
    addresses = cluster.peers_of(node_id)
    for peer, address in (peers or {}).items():
        if peer not in addresses:
            raise InvalidParameter(f"--peer {peer}=...: {peer!r} is not a peer in the cluster "
                                   f"file (peers: {sorted(addresses)})")
        addresses[peer] = address
    return NodeConfig(node_id, bind or cluster.addresses[node_id], addresses, cluster.ring,
                      home=home, timeouts=timeouts or Timeouts(), policy=policy,
                      faults=faults or FaultPlan(),
                      staleness=StalenessBound(max_age=staleness))


def serve_node(config: NodeConfig, key_path: str | os.PathLike[str], *,
               max_seconds: float = 86_400.0, node_class: type[MeshNode] = MeshNode) -> None:
    """Run a node until it is told to leave, gets SIGTERM/SIGINT, or ``max_seconds`` pass."""
    node = node_class(config, read_key(key_path), epoch=time.time_ns())

    def _stop(signum: int, frame: FrameType | None) -> None:
        node.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.run(max_seconds)


def serve_swarm_node(node: MeshNode, swarm: Swarm, source: Iterable[Tick | BadLine], *,
                     beats: int | None = None, max_seconds: float = 86_400.0,
                     on_beat: Callable[[BeatReport], None] | None = None) -> RunSummary:
    """Run ``swarm`` (already started) over ``source`` with ``node`` beside it.

    The node's loop runs in a thread; each beat goes to it through its
    :class:`~.feed.BeatFeed` (one is attached if it has none): realized
    return -> its statistics, consensus VaR -> its agreement value.
    ``on_beat`` is called with each report too. Returns the swarm's run
    summary; the node stops with the swarm, and the swarm stops when the
    node is told to leave.
    """
    feed = node.feed if node.feed is not None else BeatFeed()
    node.feed = feed

    def beat(report: BeatReport) -> None:
        feed.push(report)
        if on_beat is not None:
            on_beat(report)

    thread = threading.Thread(target=node.run, args=(max_seconds,), name="mesh-node",
                              daemon=True)
    thread.start()
    try:
        return swarm.run(source, beats=beats, on_beat=beat, should_stop=lambda: node.stop)
    finally:
        # let the node take in the last beats before it stops
        deadline = time.monotonic() + 5.0
        while node.feed.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        node.stop = True
        thread.join(timeout=10)
