"""Start one node from the cluster file and its key file (what ``swarmvar mesh node`` runs)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from ..consensus.partition import StalenessBound
from ..errors import InvalidParameter
from .cluster import load_cluster, read_key
from .membership import Timeouts
from .node import MeshNode, NodeConfig
from .transport import FaultPlan, SendPolicy


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
