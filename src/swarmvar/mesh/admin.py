"""Admin commands: what a node does with them, and the client that sends them.

Commands are ADMIN messages, so only keys with the admin role in the node
key ring are obeyed (others are refused as ``forbidden`` before they get
here); each is answered with a REPLY signed by the node.

* ``status`` — membership, counters, agreement outcomes, statistics, the
  served estimate, ledger size and root, detected forks;
* ``agree`` — start an agreement run (``run``, ``value``, ``f``, ``rounds``,
  ``round_timeout``; without ``value``, the node's swarm's consensus VaR);
* ``observe`` — returns (``values``) added to this node's statistics;
* ``inject`` — the design documents' ``inject_data(genome, anoms=N,
  ml_weight=W)``: sets the node's arbiter genome (core weights R, B, E, O),
  with the Entropy core's machine-learning threat-model weight ``E = W``,
  and adds ``N`` anomalous returns (``ANOMALY_RETURN`` each) to its
  statistics; recorded in the ledger like every other change;
* ``leave`` — announce leaving and stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import zmq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..arbiter import Genome
from ..errors import InvalidParameter, MeshTimeout, RefusedMessage, SwarmVarError
from .wire import Inbox, MessageKind, NodeKeyRing, seal

if TYPE_CHECKING:
    from .node import MeshNode

MAX_ANOMALIES = 10_000


def inject_data(node: MeshNode, genome: Genome, *, anoms: int, ml_weight: float) -> None:
    """Fault injection (admin only): a new genome with ``E = ml_weight`` and ``anoms`` anomalies."""
    from .node import ANOMALY_RETURN, MAX_OBSERVATIONS

    if isinstance(anoms, bool) or not isinstance(anoms, int) or not 0 <= anoms <= MAX_ANOMALIES:
        raise InvalidParameter(f"anoms must be an int in [0, {MAX_ANOMALIES}], got {anoms!r}")
    if len(node._observations) + anoms > MAX_OBSERVATIONS:  # the bound observe() keeps
        raise InvalidParameter(f"the node holds {len(node._observations)} observations; "
                               f"{anoms} more would pass its limit of {MAX_OBSERVATIONS}")
    if not (isinstance(ml_weight, float) and 0.0 < ml_weight < 1.0):
        raise InvalidParameter(f"ml_weight must be a number in (0, 1), got {ml_weight!r}")
    new = Genome(genome.r, genome.b, ml_weight, genome.o)
    node._record("mesh.inject_data", {"genome": list(new.as_tuple()), "anoms": anoms,
                                      "ml_weight": ml_weight})
    node.genome, node.ml_weight = new, ml_weight
    node.anomalies += anoms
    node._observations.extend([ANOMALY_RETURN] * anoms)
    node._version += 1
    node._publish_own()


def _number(body: Mapping[str, Any], name: str) -> float:
    v = body.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InvalidParameter(f"{name} must be a finite number, got {v!r:.40}")
    return float(v)


def handle_admin(node: MeshNode, body: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Run one admin command; ``{"ok": True, ...}`` or ``{"ok": False, "error": ...}``."""
    op = body.get("op")
    try:
        if op == "status":
            return {"ok": True, "status": node.status(now)}
        if op == "agree":
            run, f, rounds = body.get("run"), body.get("f"), body.get("rounds")
            if not isinstance(run, str) or not run or run in node.runs or run in node.finished:
                raise InvalidParameter(f"run must be a new non-empty id, got {run!r:.40}")
            if not isinstance(f, int) or not isinstance(rounds, int):
                raise InvalidParameter("f and rounds must be ints")
            if body.get("value") is None:  # the node's own swarm's estimate
                if node.estimate is None:
                    raise InvalidParameter("no value given and no swarm estimate yet")
                value = node.estimate
            else:
                value = _number(body, "value")
            node.start_run(run, value, f, rounds,
                           _number(body, "round_timeout"), now)
            return {"ok": True}
        if op == "observe":
            values = body.get("values")
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise InvalidParameter("values must be a non-empty list of numbers")
            node.observe([float(v) for v in values])
            return {"ok": True, "version": node._version}
        if op == "inject":
            g = body.get("genome")
            if not isinstance(g, list) or len(g) != 4:
                raise InvalidParameter("genome must be [R, B, E, O]")
            anoms = body.get("anoms")
            inject_data(node, Genome(*(float(x) for x in g)), anoms=anoms,  # type: ignore[arg-type]
                        ml_weight=_number(body, "ml_weight"))
            return {"ok": True, "version": node._version}
        if op == "leave":
            node.leave(now)
            return {"ok": True}
        raise InvalidParameter(f"unknown admin op {op!r:.40}; use status, agree, observe, "
                               "inject or leave")
    except (SwarmVarError, TypeError, ValueError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


class AdminClient:
    """Sends signed admin commands to nodes and waits for their signed replies.

    Parameters
    ----------
    admin_id : str
        This admin's id in the ring.
    key : Ed25519PrivateKey
        Its private key.
    ring : NodeKeyRing
    addresses : mapping of str to str
        Node id -> ROUTER address.
    """

    def __init__(self, admin_id: str, key: Ed25519PrivateKey, ring: NodeKeyRing,
                 addresses: Mapping[str, str]) -> None:
        self.admin_id, self.key, self.ring = admin_id, key, ring
        self.epoch = time.time_ns()
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._addresses = dict(addresses)
        self._seq: dict[str, int] = {}
        self._inbox = Inbox(reorder_wait=0.0)

    def _socket(self, node: str) -> zmq.Socket[bytes]:
        s = self._sockets.get(node)
        if s is None:
            s = self._context.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(self._addresses[node])
            self._sockets[node] = s
        return s

    def reset(self, node: str) -> None:
        """Drop the connection to ``node`` (after it restarted)."""
        s = self._sockets.pop(node, None)
        if s is not None:
            s.close(0)

    def request(self, node: str, op: str, timeout: float = 5.0, **body: Any) -> dict[str, Any]:
        """Send ``op`` to ``node``; its reply body. MeshTimeout after ``timeout`` seconds."""
        s = self._socket(node)
        self._seq[node] = self._seq.get(node, 0) + 1
        seq = self._seq[node]
        s.send_multipart(seal(self.key, self.admin_id, node, self.epoch, seq, MessageKind.ADMIN,
                              {"op": op, **body}))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not s.poll(int(left * 1000) + 1):
                continue
            frames = s.recv_multipart()
            try:
                m = self.ring.open(frames, self.admin_id)
            except RefusedMessage:
                continue
            if m.sender == node and m.kind is MessageKind.REPLY and m.body.get("re") == seq:
                return dict(m.body)
        raise MeshTimeout(f"{node} did not answer {op!r} within {timeout} s")

    def close(self) -> None:
        for s in self._sockets.values():
            s.close(0)
        self._context.term()


__all__ = ["AdminClient", "handle_admin", "inject_data"]
