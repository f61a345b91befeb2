"""Start one node from the cluster file and its key file (``swarmvar mesh node``), or a
node beside a running swarm (``swarmvar run --mesh``: :func:`check_swarm_node` before any
work, :func:`bind_swarm_node` once the swarm is built, then :func:`serve_swarm_node`;
:func:`swarm_node` is the first two at once)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import zmq

from ..consensus.partition import StalenessBound
from ..errors import InvalidParameter, MeshError
from .cluster import Cluster, load_cluster, read_key
from .feed import BeatFeed
from .membership import MemberState, Timeouts
from .node import MeshNode, NodeConfig
from .transport import FaultPlan, SendPolicy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..swarm import BadLine, RunSummary, Swarm
    from ..types import BeatReport, Tick
    from .wire import NodeKeyRing

log = logging.getLogger("swarmvar.mesh")


def node_config(cluster_path: str | os.PathLike[str], node_id: str, *,
                home: Path | None, bind: str | None = None,
                peers: Mapping[str, str] | None = None,
                timeouts: Timeouts | None = None, faults: FaultPlan | None = None,
                policy: SendPolicy = SendPolicy.BACKPRESSURE,
                staleness: float = 1.5) -> NodeConfig:
    """A node's configuration: its address from the cluster file unless ``bind`` is given
    (``tcp://*:PORT`` binds every interface), peers' addresses overridable by ``peers``."""
    return _config_of(load_cluster(cluster_path), node_id, home=home, bind=bind, peers=peers,
                      timeouts=timeouts, faults=faults, policy=policy, staleness=staleness)


def _config_of(cluster: Cluster, node_id: str, *, home: Path | None, bind: str | None = None,
               peers: Mapping[str, str] | None = None, timeouts: Timeouts | None = None,
               faults: FaultPlan | None = None, policy: SendPolicy = SendPolicy.BACKPRESSURE,
               staleness: float = 1.5) -> NodeConfig:
    """:func:`node_config` of a cluster file already read."""
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
    """Run a node until it is told to leave, gets SIGTERM/SIGINT, or ``max_seconds`` pass.
    A key file that is not ``config.node_id``'s (per the cluster's key ring) is refused."""
    key = read_key(key_path)
    check_own_key(key, config.ring, config.node_id, key_path, cluster="the cluster file",
                  flags=("--key", "--id"))
    node = node_class(config, key, epoch=time.time_ns())

    def _stop(signum: int, frame: FrameType | None) -> None:
        node.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.run(max_seconds)


def check_own_key(key: Ed25519PrivateKey, ring: NodeKeyRing, node_id: str,
                  key_path: str | os.PathLike[str], *, cluster: str | os.PathLike[str],
                  flags: tuple[str, str]) -> None:
    """Refuse a key file that is not ``node_id``'s: its public key must be the one the
    cluster's key ring gives the node, or its peers refuse every message it signs.
    ``flags`` name the key-file and node-id options in the message."""
    if key.public_key().public_bytes_raw() != ring.nodes[node_id].public_bytes_raw():
        raise InvalidParameter(f"the key file {key_path} is not node {node_id!r}'s: its public "
                               f"key is not the one {cluster} gives {node_id!r} (its peers "
                               f"would refuse every message it signs); give that node's key "
                               f"file ({flags[0]}) or the node it is ({flags[1]})")


def resolve_peers(cluster: Cluster, node_id: str, values: Sequence[str]) -> dict[str, str]:
    """``--peer`` values as peer id -> address: ``ID=tcp://HOST:PORT`` overrides the cluster
    file's address of ``ID``; a bare ``tcp://HOST:PORT`` must be a peer's address in the file."""
    peers = cluster.peers_of(node_id)
    out: dict[str, str] = {}
    for text in values:
        name, sep, address = text.partition("=")
        if not sep:
            name, address = "", text
            owners = [p for p, a in peers.items() if a == text]
            if len(owners) != 1:
                raise InvalidParameter(f"--peer {text}: no single peer has this address in the "
                                       f"cluster file; give it as ID={text}")
            name = owners[0]
        if not address.startswith("tcp://") or not name:
            raise InvalidParameter(f"--peer {text!r}: use ID=tcp://HOST:PORT or tcp://HOST:PORT")
        out[name] = address
    return out


@dataclass(frozen=True)
class SwarmNodeSettings:
    """The settings of a ``swarmvar run --mesh`` node, checked and read
    (:func:`check_swarm_node`); nothing made or bound yet (:func:`bind_swarm_node`).

    Attributes
    ----------
    config : NodeConfig
        Its configuration: the address it binds, its peers, the cluster's key
        ring, its agreement runs; ``config.home`` is ``HOME/mesh`` (its ledger).
    key : Ed25519PrivateKey
        Its signing key, read from its key file.
    """

    config: NodeConfig
    key: Ed25519PrivateKey = field(repr=False)


def check_swarm_node(home: str | os.PathLike[str], *, port: int | None = None,
                     peers: Sequence[str] = (), node_id: str | None = None,
                     cluster: str | os.PathLike[str] | None = None,
                     key: str | os.PathLike[str] | None = None, agree_every: int = 0,
                     agree_eps: float = 1e-9, round_timeout: float = 5.0) -> SwarmNodeSettings:
    """The settings of the mesh node of ``swarmvar run --mesh``, checked: the port, the
    cluster file, the node id, the key file, the peers. Reads those two files; creates
    nothing (not ``home``), binds nothing. ``swarmvar run`` asks it before any work.

    Parameters
    ----------
    home : path
        The swarm's data home; the node's own ledger will live in ``home/mesh``.
    port : int or None
        Bind ``tcp://*:PORT`` (default: the node's address in the cluster file).
    peers : sequence of str
        ``--peer`` values (:func:`resolve_peers`).
    node_id : str or None
        This node's id; default: the one node of the cluster file whose
        address ends with ``:PORT``.
    cluster, key : path or None
        The cluster file and this node's key file (default
        ``home/mesh/cluster.json`` and ``home/mesh/node.key``).
    agree_every : int
        Start an agreement run on the consensus VaR every this many beats (0: never).
    agree_eps, round_timeout : float
        Those runs' target spread and round timeout (seconds).

    Returns
    -------
    SwarmNodeSettings
        What :func:`bind_swarm_node` builds the node from.

    Raises
    ------
    InvalidParameter
        A missing or bad cluster or key file, a key not the node's, an unknown node or
        peer, a bad port.
    """
    mesh_home = Path(home) / "mesh"
    cluster_path = Path(cluster) if cluster is not None else mesh_home / "cluster.json"
    key_path = Path(key) if key is not None else mesh_home / "node.key"
    if port is not None and (isinstance(port, bool) or not 1 <= port <= 65535):
        raise InvalidParameter(f"--mesh-port must be a TCP port 1..65535, got {port!r}")
    if isinstance(agree_every, bool) or agree_every < 0:
        raise InvalidParameter(f"--mesh-agree-every must be >= 0, got {agree_every!r}")
    if not (0 < agree_eps < 1 and 0 < round_timeout < 3600):
        raise InvalidParameter("agreement needs 0 < eps < 1 and a round timeout in (0, 3600) s")
    spec = load_cluster(cluster_path)
    if node_id is None:
        mine = [n for n, a in spec.addresses.items()
                if port is not None and a.rsplit(":", 1)[-1] == str(port)]
        if len(mine) != 1:
            raise InvalidParameter(f"cannot tell which node of {cluster_path} this is from "
                                   f"--mesh-port {port}; give --mesh-id")
        node_id = mine[0]
    if node_id not in spec.addresses:
        raise InvalidParameter(f"no node {node_id!r} in {cluster_path} (nodes: "
                               f"{sorted(spec.addresses)})")
    if not key_path.exists():
        raise InvalidParameter(f"no key file {key_path}; make one with `swarmvar mesh keygen "
                               f"{key_path}` and put its public key in {cluster_path}")
    node_key = read_key(key_path)
    check_own_key(node_key, spec.ring, node_id, key_path, cluster=cluster_path,
                  flags=("--mesh-key", "--mesh-id"))
    config = _config_of(spec, node_id, home=mesh_home,
                        bind=None if port is None else f"tcp://*:{port}",
                        peers=resolve_peers(spec, node_id, peers))
    config = dataclasses.replace(config, agree_every=agree_every, agree_eps=agree_eps,
                                 round_timeout=round_timeout)
    return SwarmNodeSettings(config, node_key)


def bind_swarm_node(settings: SwarmNodeSettings) -> MeshNode:
    """The node of checked ``settings``, bound and ready (its loop not yet running): makes
    its folder (``HOME/mesh``), opens its ledger there, binds its address.

    Raises
    ------
    MeshError
        Its address cannot be bound (the port is taken, or the host is not this machine's);
        its folder is left as made (empty), nothing stays bound.
    """
    config = settings.config
    if config.home is not None:
        config.home.mkdir(parents=True, exist_ok=True)
    try:  # a failed bind closes the node's sockets and ends its own context
        return MeshNode(config, settings.key, epoch=time.time_ns(), feed=BeatFeed())
    except zmq.ZMQError as exc:
        raise MeshError(f"the mesh node {config.node_id} cannot bind {config.bind}: "
                        f"{exc.strerror}; choose another --mesh-port (or stop what holds "
                        "it)") from None


def swarm_node(home: str | os.PathLike[str], *, port: int | None = None,
               peers: Sequence[str] = (), node_id: str | None = None,
               cluster: str | os.PathLike[str] | None = None,
               key: str | os.PathLike[str] | None = None, agree_every: int = 0,
               agree_eps: float = 1e-9, round_timeout: float = 5.0) -> MeshNode:
    """The mesh node of ``swarmvar run --mesh``, bound and ready (its loop not yet running):
    :func:`check_swarm_node` (same parameters, same refusals), then :func:`bind_swarm_node`.
    """
    return bind_swarm_node(check_swarm_node(
        home, port=port, peers=peers, node_id=node_id, cluster=cluster, key=key,
        agree_every=agree_every, agree_eps=agree_eps, round_timeout=round_timeout))


#: At most this many seconds past ``linger`` for the agreement runs still open to finish
#: (each is waited for only until its own bound, :func:`runs_end`).
RUNS_GRACE = 60.0


def runs_end(node: MeshNode) -> float:
    """When the agreement runs open on ``node`` have ended at the latest (its monotonic
    clock; ``-inf`` with none open): each run's current round ends by its start plus the
    round timeout, each round left after it by one timeout more (``rounds.py``), plus a
    little for the node's loop to notice."""
    runs = list(node.runs.values())  # the node's thread adds and removes runs
    return max((r.started + (r.rounds - r.round) * r.round_timeout + 0.5 for r in runs),
               default=-math.inf)


def serve_swarm_node(node: MeshNode, swarm: Swarm, source: Iterable[Tick | BadLine], *,
                     beats: int | None = None, max_seconds: float = 86_400.0,
                     on_beat: Callable[[BeatReport], None] | None = None,
                     should_stop: Callable[[], bool] | None = None, pace: Any = None,
                     linger: float = 0.0, wait_peers: float = 0.0) -> RunSummary:
    """Run ``swarm`` (already started) over ``source`` with ``node`` beside it.

    The node's loop runs in a thread; each beat goes to it through its
    :class:`~.feed.BeatFeed` (one is attached if it has none): realized
    return -> its statistics, consensus VaR -> its agreement value.
    ``on_beat`` is called with each report too; ``should_stop`` and
    ``pace`` go to ``Swarm.run``. Returns the swarm's run summary; the
    swarm stops when the node is told to leave; the node keeps serving
    (agreement runs, gossip, ledger merge) ``linger`` seconds after the
    swarm ends (unless told to stop), and with ``linger > 0`` until its open
    agreement runs finish (each until its own bound, :func:`runs_end`; at most
    :data:`RUNS_GRACE` seconds more), then stops. With ``wait_peers`` the first
    beat waits (at most that many seconds) until every peer is heard, so that
    nodes started together beat together.
    """
    feed = node.feed if node.feed is not None else BeatFeed()
    node.feed = feed

    def beat(report: BeatReport) -> None:
        feed.push(report)
        if on_beat is not None:
            on_beat(report)

    died: list[BaseException] = []

    def serve() -> None:
        try:
            node.run(max_seconds)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            died.append(exc)
            log.error("mesh node %s stopped: %s", node.me, exc)

    thread = threading.Thread(target=serve, name="mesh-node", daemon=True)
    thread.start()

    def stop() -> bool:  # a node that died stops the swarm too: beats nobody sends are lost
        return (node.stop or bool(died) or (should_stop is not None and should_stop()))

    until = time.monotonic() + max(0.0, wait_peers)
    while time.monotonic() < until and not stop() and thread.is_alive() and any(
            state is not MemberState.ALIVE for state in node.members.states().values()):
        time.sleep(0.05)

    try:
        extra = {} if pace is None else {"pace": pace}
        return swarm.run(source, beats=beats, on_beat=beat, should_stop=stop, **extra)
    finally:
        # let the node take in the last beats before it stops
        deadline = time.monotonic() + 5.0
        while node.feed.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        end = time.monotonic() + max(0.0, linger)
        # lingering, an agreement run still open (one started on the last beats, waiting for a
        # peer whose swarm is behind on a loaded machine) is let finish: each ends by itself
        # within its rounds' timeouts; stopping at the linger's end left it unfinished here
        # (until its own bound, runs_end; RUNS_GRACE only as the upper limit)
        cap = end + RUNS_GRACE if linger > 0 else end
        while not stop() and thread.is_alive():
            now = time.monotonic()
            if now >= cap or (now >= end and now >= runs_end(node)):
                break
            time.sleep(0.05)
        node.stop = True
        thread.join(timeout=10)
        if died:
            raise MeshError(f"mesh node {node.me} stopped with {type(died[0]).__name__}: "
                            f"{died[0]}; the swarm stopped after the beat in progress (every "
                            "beat so far is in its ledger)") from died[0]
