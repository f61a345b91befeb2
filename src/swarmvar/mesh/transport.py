"""ZeroMQ transport of one node: a ROUTER it binds, a DEALER to each peer, a send queue.

Why ROUTER/DEALER and not PUB/SUB: PUB drops whatever it sends before a
subscriber has connected (the slow-joiner problem, libzmq#4656), and a
returning node must get what is sent to it from the moment it is back.
Each peer has its own DEALER (so its own FIFO pipe); ``IMMEDIATE`` keeps
messages from queueing for a peer that is not connected (a dead peer gets
nothing stale when it returns; catch-up sends it the current state).

Send pacing, two policies (:class:`SendPolicy`):

* ``BACKPRESSURE`` (default): each peer's queue drains as fast as its socket
  takes messages; when ZeroMQ's high-water mark is reached the queue waits
  (and beyond ``max_queue`` drops its oldest message, counted);
* ``ADAPTIVE_DELAY``: the design documents' rule — one FIFO queue, one
  message per step, 0.3 ms between messages above 100 queued, else 1 ms.

``benchmarks/bench_mesh.py`` measures both; the fixed per-message delay caps
a node at 1,000-3,300 messages a second and adds up to a millisecond to every
hop, while backpressure only waits when a receiver is actually slower, so it
is the default.

:class:`FaultPlan` injects message-level faults on the send side (loss,
duplication, delay, reordering) from a seeded generator, for tests.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import zmq

from ..errors import InvalidParameter

ADAPTIVE_FAST = 0.0003
ADAPTIVE_SLOW = 0.001
ADAPTIVE_THRESHOLD = 100


class SendPolicy(Enum):
    BACKPRESSURE = "backpressure"
    ADAPTIVE_DELAY = "adaptive_delay"


def adaptive_delay(queued: int) -> float:
    """The design documents' pacing: 0.3 ms above 100 queued messages, else 1 ms."""
    return ADAPTIVE_FAST if queued > ADAPTIVE_THRESHOLD else ADAPTIVE_SLOW


@dataclass(frozen=True)
class FaultPlan:
    """Send-side faults: probabilities of loss, duplication and reordering, a delay bound (s)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise InvalidParameter(f"fault {name} must be a probability in [0, 1), got {v}")
        if not 0.0 <= self.delay <= 5.0:
            raise InvalidParameter(f"fault delay must be in [0, 5] seconds, got {self.delay}")

    @property
    def active(self) -> bool:
        return bool(self.loss or self.duplicate or self.reorder or self.delay)


class Transport:
    """Sockets and queues of one node (single-threaded: the node's loop calls everything)."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], bind: str,
                 peers: Mapping[str, str], *, policy: SendPolicy = SendPolicy.BACKPRESSURE,
                 faults: FaultPlan = FaultPlan(), hwm: int = 10_000,
                 max_queue: int = 100_000) -> None:
        self.policy = policy
        self.faults = faults
        self.max_queue = max_queue
        self._rng = random.Random(faults.seed)
        self.router = context.socket(zmq.ROUTER)
        self.dealers: dict[str, zmq.Socket[bytes]] = {}
        try:  # a failed bind or connect closes what was opened (the context can then end)
            self.router.setsockopt(zmq.LINGER, 0)
            self.router.setsockopt(zmq.RCVHWM, hwm)
            self.router.setsockopt(zmq.MAXMSGSIZE, 256 * 1024)  # hard cap below the parser's
            self.router.bind(bind)
            for peer, address in peers.items():
                s = context.socket(zmq.DEALER)
                self.dealers[peer] = s
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDHWM, hwm)
                s.setsockopt(zmq.IMMEDIATE, 1)
                s.setsockopt(zmq.RECONNECT_IVL, 50)
                s.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
                s.connect(address)
        except BaseException:
            self.router.close(linger=0)
            for s in self.dealers.values():
                s.close(linger=0)
            raise
        self._queues: dict[str, deque[list[bytes]]] = {p: deque() for p in peers}
        self._fifo: deque[tuple[str, list[bytes]]] = deque()
        self._held: list[tuple[float, int, str, list[bytes]]] = []
        self._counter = 0
        self._next_send = 0.0
        self.sent = 0
        self.dropped = 0

    def enqueue(self, peer: str, frames: list[bytes], now: float) -> None:
        """Queue a message for ``peer`` (faults applied here)."""
        if peer not in self.dealers:
            return
        copies = 1
        if self.faults.active:
            r = self._rng
            if r.random() < self.faults.loss:
                self.dropped += 1
                return
            if r.random() < self.faults.duplicate:
                copies = 2
            hold = r.uniform(0.0, self.faults.delay) if self.faults.delay else 0.0
            if r.random() < self.faults.reorder:
                hold += 0.005  # later messages overtake this one
            if hold > 0:
                for _ in range(copies):
                    self._counter += 1
                    heapq.heappush(self._held, (now + hold, self._counter, peer, frames))
                return
        for _ in range(copies):
            self._put(peer, frames)

    def _put(self, peer: str, frames: list[bytes]) -> None:
        if self.policy is SendPolicy.ADAPTIVE_DELAY:
            if len(self._fifo) >= self.max_queue:
                self._fifo.popleft()
                self.dropped += 1
            self._fifo.append((peer, frames))
            return
        q = self._queues[peer]
        if len(q) >= self.max_queue:
            q.popleft()
            self.dropped += 1
        q.append(frames)

    def clear(self, peer: str) -> int:
        """Drop everything queued for ``peer`` (declared dead: what it missed is stale)."""
        q = self._queues.get(peer)
        n = len(q) if q is not None else 0
        if q is not None:
            q.clear()
        kept = [(p, f) for p, f in self._fifo if p != peer]
        n += len(self._fifo) - len(kept)
        self._fifo = deque(kept)
        self.dropped += n
        return n

    def clear_all(self) -> int:
        """Drop everything queued or held back for every peer, without counting it as
        dropped (a leaving node's own stale messages, not losses); returns how many."""
        n = sum(len(q) for q in self._queues.values()) + len(self._fifo) + len(self._held)
        for q in self._queues.values():
            q.clear()
        self._fifo.clear()
        self._held.clear()
        return n

    @property
    def queued(self) -> int:
        return len(self._fifo) + sum(len(q) for q in self._queues.values()) + len(self._held)

    def pump(self, now: float) -> float:
        """Send what may be sent now; seconds until the next send is due (inf if none)."""
        while self._held and self._held[0][0] <= now:
            _, _, peer, frames = heapq.heappop(self._held)
            self._put(peer, frames)
        wait = self._held[0][0] - now if self._held else float("inf")
        if self.policy is SendPolicy.ADAPTIVE_DELAY:
            if self._fifo and now >= self._next_send:
                peer, frames = self._fifo[0]
                if self._try(peer, frames):
                    self._fifo.popleft()
                self._next_send = now + adaptive_delay(len(self._fifo))
            if self._fifo:
                wait = min(wait, max(0.0, self._next_send - now))
            return wait
        for peer, q in self._queues.items():
            while q and self._try(peer, q[0]):
                q.popleft()
            if q:
                wait = min(wait, 0.001)  # a full pipe: retry soon
        return wait

    def _try(self, peer: str, frames: list[bytes]) -> bool:
        try:
            self.dealers[peer].send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.sent += 1
        return True

    def recv(self, limit: int = 1000) -> list[list[bytes]]:
        """Up to ``limit`` received messages, each ``[routing id, frames...]``."""
        out = []
        for _ in range(limit):
            try:
                out.append(self.router.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        return out

    def reply(self, routing_id: bytes, frames: list[bytes]) -> None:
        try:
            self.router.send_multipart([routing_id, *frames], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError):
            self.dropped += 1

    def close(self, linger: float = 0.0) -> None:
        """Close the sockets; messages ZeroMQ still holds for a peer are sent for at most
        ``linger`` seconds (0: dropped; a leaving node's goodbye wants a moment)."""
        for s in self.dealers.values():
            s.close(int(1000 * linger))
        self.router.close(0)
