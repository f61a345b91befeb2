"""Mesh (layer 4 face): swarm nodes agreeing across machines over signed ZeroMQ messages.

* :mod:`.wire` — the signed envelope, the node key ring, replay protection,
  FIFO delivery per peer;
* :mod:`.transport` — ROUTER/DEALER sockets, backpressure or the design's
  adaptive delay, send-side fault injection;
* :mod:`.membership` — SWIM-style heartbeats and suspicion;
* :mod:`.rounds` — approximate agreement rounds over the mesh
  (the statistics are :mod:`swarmvar.consensus.agreement`);
* :mod:`.stats` — signed conjugate-statistics CRDT contributions, their
  merge bounded against lying nodes, serving under the partition rule
  (:mod:`swarmvar.consensus.partition`);
* :mod:`.heads` — ledger gossip: signed heads and consistency proofs;
* :mod:`.imports` — ledger merge: peers' own entries imported with proofs;
* :mod:`.ledgered` — contributions held to their owner's imported ledger;
* :mod:`.node` — :class:`MeshNode`, the loop that runs all of these;
* :mod:`.admin` — admin commands (``inject_data`` among them) and the client;
* :mod:`.cluster` — the cluster file and key files.

See docs/mesh.md.
"""

from .admin import AdminClient, inject_data
from .cluster import Cluster, free_ports, load_cluster, read_key, write_cluster, write_key
from .membership import MemberEvent, MemberState, Timeouts
from .node import MeshNode, NodeConfig
from .rounds import AgreementRun, RoundsOutcome
from .transport import FaultPlan, SendPolicy
from .wire import MAX_MESSAGE_BYTES, Inbox, Message, MessageKind, NodeKeyRing, Refusal, seal

__all__ = [
    "MAX_MESSAGE_BYTES", "AdminClient", "AgreementRun", "Cluster", "FaultPlan", "Inbox",
    "MemberEvent", "MemberState", "MeshNode", "Message", "MessageKind", "NodeConfig",
    "NodeKeyRing", "Refusal", "RoundsOutcome", "SendPolicy", "Timeouts", "inject_data",
    "free_ports", "load_cluster", "read_key", "seal", "write_cluster", "write_key",
]
