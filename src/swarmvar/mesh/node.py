"""A mesh node: one process, one loop — membership, agreement, CRDT, ledger gossip, admin.

The node's loop (:meth:`MeshNode.run`) polls its ROUTER, checks every
message (:mod:`.wire`), delivers each peer's messages in order, and on its
timers sends heartbeats, gossips its signed statistics contribution and its
signed ledger head, declares suspicions and deaths, and ends agreement
rounds. A refused message is counted by reason; an error while handling a
checked message is counted too (``internal``) and never stops the node.

Admin commands (ADMIN messages signed by an admin key, answered with a
signed REPLY): ``status``, ``agree`` (start an agreement run), ``observe``
(returns for this node's statistics), ``inject`` (the design documents'
``inject_data(genome, anoms=N, ml_weight=W)``), ``leave``. Everything that
changes the node's state is recorded in its ledger; on restart the node
rebuilds its observations from its ledger and catches up from its peers.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..arbiter import Genome
from ..consensus.agreement import rounds_needed
from ..consensus.partition import NormalStats, StalenessBound, StatsCRDT
from ..errors import LedgerCorrupted, RefusedMessage, SwarmVarError
from ..ledger import Ledger
from ..types import BeatReport
from .feed import BeatFeed
from .heads import HeadWatch, parse_head, parse_proof
from .imports import IMPORT_RECORD, REFUTED_RECORD, PeerLedgers
from .membership import MemberEvent, Membership, MemberState, Timeouts
from .rounds import AgreementRun, RoundsOutcome
from .stats import check_contribution, robust_read, serve, sign_contribution
from .transport import FaultPlan, SendPolicy, Transport
from .wire import Message, MessageKind, NodeKeyRing, Refusal, seal

log = logging.getLogger("swarmvar.mesh")

MAX_OBSERVATIONS = 1_000_000
MAX_RUNS_BUFFERED = 16
MAX_VALUES_BUFFERED = 100_000
MAX_FINISHED = 1000
#: seconds a leaving node's sockets keep sending what ZeroMQ still holds (its LEAVE)
LEAVE_LINGER = 1.0
#: Why no head is signed now: the ledger file is damaged, or cannot be checked just now
#: (locked past CHECK_TIMEOUT, no file descriptor left); counted and logged, never fatal.
UNSIGNABLE = (LedgerCorrupted, sqlite3.OperationalError)
#: Members asked about a suspected peer (SWIM's k for ping-req).
PROBE_HELPERS = 2
#: Agreement outcomes a status reply carries (the most recent).
STATUS_RUNS = 20
#: Seconds the ledger's damage check waits for another connection's lock before the
#: head is skipped (counted): well under a heartbeat, never the store's 60 s.
CHECK_TIMEOUT = 0.1
#: Size of one injected anomaly: a 10% daily loss.
ANOMALY_RETURN = -0.10


@dataclass(frozen=True)
class NodeConfig:
    """How one node runs.

    Attributes
    ----------
    node_id : str
    bind : str
        ZeroMQ address its ROUTER binds (``tcp://10.0.0.1:9000``).
    peers : mapping of str to str
        Peer id -> the address of its ROUTER.
    ring : NodeKeyRing
        Every node's and admin's public key.
    home : Path or None
        Folder of the node's ledger (``None``: in memory, lost on exit).
    timeouts : Timeouts
        Membership timing.
    policy : SendPolicy
    faults : FaultPlan
        Send-side faults (tests).
    gossip_every : float
        Seconds between statistics and ledger-head gossip.
    reorder_wait : float
        Seconds a message ahead of a gap waits.
    staleness : StalenessBound
        A replica not refreshed within ``max_age`` seconds is unavailable.
    alpha : float
        VaR level served.
    byzantine : int or None
        Byzantine nodes the served statistics are bounded against
        (:func:`.stats.robust_read`); ``None``: the most the cluster
        tolerates, ``(n - 1) // 3``.
    agree_every : int
        With a swarm feeding the node: start an agreement run on the swarm's
        consensus VaR every this many beats (run ``beat-<portfolio>-<seq>``,
        the same id on every node); 0: only when an admin asks.
    agree_eps, agree_spread, round_timeout : float
        Those runs' target spread, the bound on the honest spread they start
        from (VaR in return units) and each round's timeout in seconds.
    """

    node_id: str
    bind: str
    peers: Mapping[str, str]
    ring: NodeKeyRing
    home: Path | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    policy: SendPolicy = SendPolicy.BACKPRESSURE
    faults: FaultPlan = field(default_factory=FaultPlan)
    gossip_every: float = 0.25
    reorder_wait: float = 0.05
    staleness: StalenessBound = field(default_factory=lambda: StalenessBound(max_age=1.5))
    alpha: float = 0.99
    byzantine: int | None = None
    agree_every: int = 0
    agree_eps: float = 1e-9
    agree_spread: float = 1.0
    round_timeout: float = 5.0

    @property
    def f(self) -> int:
        """Byzantine nodes tolerated (the statistics' bounds, automatic agreement runs)."""
        if self.byzantine is not None:
            return self.byzantine
        return len(self.peers) // 3


class MeshNode:
    """One node (see the module doc). ``epoch`` must grow across restarts (use ``time_ns``)."""

    def __init__(self, config: NodeConfig, key: Ed25519PrivateKey, epoch: int,
                 context: zmq.Context[zmq.Socket[bytes]] | None = None,
                 feed: BeatFeed | None = None) -> None:
        from .wire import Inbox

        self.config = config
        self.feed = feed
        #: the swarm's latest consensus VaR (first level), if a swarm feeds this node
        self.estimate: float | None = None
        self.me = config.node_id
        self.key = key
        self.epoch = epoch
        self.ring = config.ring
        self._context = context or zmq.Context()
        self._own_context = context is None
        transport: Transport | None = None
        ledger: Ledger | None = None
        try:  # a failed bind or ledger open leaves no socket, context or file behind
            self.transport = transport = Transport(self._context, config.bind, config.peers,
                                       policy=config.policy, faults=config.faults)
            now = time.monotonic()
            self.inbox = Inbox(config.reorder_wait)
            self.members = Membership(list(config.peers), config.timeouts, now)
            self.refused: Counter[str] = Counter()
            self.accepted: Counter[str] = Counter()
            self._seq: Counter[str] = Counter()
            self.runs: dict[str, AgreementRun] = {}
            self.finished: dict[str, RoundsOutcome] = {}
            self._early: dict[str, list[tuple[str, int, float]]] = {}
            self.crdt = StatsCRDT()
            self._signed: dict[str, dict[str, Any]] = {}  # replica -> its signed wire form
            self.heads = HeadWatch()
            self._forks_recorded: set[str] = set()
            self.genome = Genome()
            self.anomalies = 0
            self.ml_weight = Genome().e
            self._observations: list[float] = []
            self._version = 0
            self.stop = False
            self._left = False
            self._next_probe: dict[str, float] = {}
            self._probe_turn = 0
            self._next_beat = 0.0
            self._next_gossip = 0.0
            self._last_head_size = -1
            #: ledger merge: import cursors, entries imported, the statistics they justify, and
            #: contributions refuted by them (left out of what is served)
            self.peer_ledgers = PeerLedgers(ANOMALY_RETURN)
            self.ledger = ledger = self._open_ledger()
            self._replay_ledger()
        except BaseException:
            if ledger is not None:
                ledger.close()
            if transport is not None:
                transport.close()
            if self._own_context:
                self._context.term()
            raise

    # --- ledger -------------------------------------------------------------

    def _open_ledger(self) -> Ledger:
        if self.config.home is None:
            return Ledger.in_memory(signing_key=self.key)
        return Ledger(self.config.home, signing_key=self.key, check_timeout=CHECK_TIMEOUT)

    def _replay_ledger(self) -> None:
        """Rebuild this node's observations and genome from its own ledger (restart)."""
        for entry in self.ledger.entries():
            data = entry.data
            if data.get("type") == "mesh.observe":
                self._observations.extend(float(v) for v in data["details"]["values"])
                self._version += 1
            elif data.get("type") == "mesh.inject_data":
                d = data["details"]
                self.genome = Genome(*d["genome"])
                self.anomalies += int(d["anoms"])
                self.ml_weight = float(d["ml_weight"])
                self._observations.extend([ANOMALY_RETURN] * int(d["anoms"]))
                self._version += 1
            elif data.get("type") in (IMPORT_RECORD, REFUTED_RECORD):
                self.peer_ledgers.replay(data["type"], data["details"])
        if self._version:
            self._publish_own()

    def _record(self, kind: str, details: Mapping[str, Any]) -> None:
        self.ledger.record_action(kind, {"node": self.me, **details})

    # --- sending -----------------------------------------------------------

    def send(self, peer: str, kind: MessageKind, body: Mapping[str, Any], now: float) -> None:
        if self._left:  # nothing after the LEAVE: a peer hearing it would take us back
            return
        self._seq[peer] += 1
        frames = seal(self.key, self.me, peer, self.epoch, self._seq[peer], kind, body)
        self.transport.enqueue(peer, frames, now)

    def broadcast(self, kind: MessageKind, body: Mapping[str, Any], now: float,
                  exclude: str | None = None) -> None:
        """Send to every peer but ``exclude`` (the sender of what is being passed on)."""
        for peer in self.config.peers:
            if peer != exclude:
                self.send(peer, kind, body, now)

    def outgoing_value(self, peer: str, run: str, round_: int, value: float) -> float | None:
        """The value sent to ``peer`` for a round (an honest node sends its own; None: nothing)."""
        return value

    def _send_value(self, run: AgreementRun, now: float) -> None:
        for peer in self.config.peers:
            v = self.outgoing_value(peer, run.run, run.round, run.value)
            if v is not None:
                self.send(peer, MessageKind.VALUE, {"run": run.run, "round": run.round,
                                                    "value": v}, now)

    # --- the loop ------------------------------------------------------------

    def run(self, max_seconds: float = 3600.0) -> None:
        """Serve until told to leave, or for at most ``max_seconds``."""
        deadline = time.monotonic() + max_seconds
        poller = zmq.Poller()
        poller.register(self.transport.router, zmq.POLLIN)
        wait = 0.0
        try:
            while not self.stop and time.monotonic() < deadline:
                poller.poll(max(0, min(10, int(wait * 1000))))
                wait = self.step(time.monotonic())
            if not self._left:
                self.leave(time.monotonic())
        finally:
            self.close()

    def step(self, now: float) -> float:
        """One pass of the loop; seconds until the next thing is due."""
        for raw in self.transport.recv():
            self.on_frames(raw, now)
        for message in self.inbox.expire(now):
            self._dispatch_safely(message, None, now)
        if self.feed is not None:
            for report in self.feed.drain():
                try:
                    self.on_beat(report)
                except RefusedMessage as exc:  # e.g. past the observation cap: count it, go on
                    self.refused[exc.reason] += 1
                    log.warning("%s: beat %s of %s refused: %s", self.me, report.seq,
                                report.portfolio, exc)
        self._timers(now)
        return min(self.transport.pump(now), 0.01)

    def on_frames(self, raw: list[bytes], now: float) -> None:
        routing_id, frames = raw[0], raw[1:]
        try:
            message = self.ring.open(frames, self.me, self.inbox)
            delivered = self.inbox.push(message, now)
        except RefusedMessage as exc:
            self.refused[exc.reason] += 1
            return
        for m in delivered:
            self._dispatch_safely(m, routing_id, now)

    def _dispatch_safely(self, m: Message, routing_id: bytes | None, now: float) -> None:
        try:
            self._dispatch(m, routing_id, now)
        except RefusedMessage as exc:
            self.refused[exc.reason] += 1
        except (SwarmVarError, KeyError, TypeError, ValueError, OverflowError) as exc:
            self.refused["internal"] += 1
            log.warning("%s: could not handle %s from %s: %s", self.me, m.kind.value, m.sender,
                        exc)

    def _dispatch(self, m: Message, routing_id: bytes | None, now: float) -> None:
        self.accepted[m.kind.value] += 1
        if m.kind is MessageKind.ADMIN:
            self._admin(m, routing_id, now)
            return
        if m.kind is MessageKind.REPLY:
            return
        for event in self.members.heard(m.sender, m.epoch, now):
            self._member_event(m.sender, event, now)
        if m.kind is MessageKind.LEAVE:
            for event in self.members.left(m.sender):
                self._member_event(m.sender, event, now)
        elif m.kind is MessageKind.VALUE:
            self._on_value(m, now)
        elif m.kind is MessageKind.STATS:
            self._on_stats(m, now)
        elif m.kind is MessageKind.HEAD:
            self._on_head(m, now)
        elif m.kind is MessageKind.PROOF_REQUEST:
            size1, size2 = int(m.body["size1"]), int(m.body["size2"])
            if 0 < size1 <= size2 <= self.ledger.size:
                proof = self.ledger.consistency_proof(size1, size2)
                self.send(m.sender, MessageKind.PROOF, proof.to_dict(), now)
        elif m.kind is MessageKind.PROBE_REQUEST:
            target = str(m.body["target"])
            if target in self.config.peers \
                    and self.members.state(target) is MemberState.ALIVE:
                epoch = self.inbox.epoch_of(target)
                self.send(m.sender, MessageKind.PROBE_ACK,
                          {"target": target, "age": self.members.quiet(target, now),
                           "epoch": -1 if epoch is None else epoch}, now)
        elif m.kind is MessageKind.PROBE_ACK:
            target, age, epoch = m.body["target"], m.body["age"], m.body["epoch"]
            if (isinstance(target, str) and target in self.config.peers
                    and isinstance(age, (int, float)) and 0 <= age < math.inf
                    and isinstance(epoch, int)):
                self.members.witnessed(target, now - float(age), epoch)
        elif m.kind is MessageKind.PROOF:
            if not self.heads.on_proof(m.sender, parse_proof(m.body)):
                self._report_forks()
        elif m.kind is MessageKind.ENTRIES_REQUEST:
            try:  # a batch carries a signed head: none over a damaged or unreadable file
                batch = self.peer_ledgers.answer(self.ledger, m.sender, m.body["start"], now)
            except UNSIGNABLE as exc:
                self._unsigned(exc, f"no entries sent to {m.sender}")
                return
            if batch is None:
                self.refused["throttled"] += 1  # a flood of requests; an honest peer re-asks
            else:
                self.send(m.sender, MessageKind.ENTRIES, batch, now)
        elif m.kind is MessageKind.ENTRIES:
            self._on_entries(m, now)

    def _member_event(self, peer: str, event: MemberEvent, now: float) -> None:
        self._record("mesh.member", {"peer": peer, "event": event.value})
        if event in (MemberEvent.DIED, MemberEvent.LEFT):
            self.transport.clear(peer)
        if event in (MemberEvent.JOINED, MemberEvent.RETURNED):  # catch-up: push our state
            self.send(peer, MessageKind.STATS, {"contributions": list(self._signed.values())},
                      now)
            head = self._signed_head()
            if head is not None:
                self.send(peer, MessageKind.HEAD, head, now)

    def _signed_head(self) -> dict[str, Any] | None:
        """Our signed head, or None (counted, logged) if the ledger file is damaged or
        cannot be checked now (locked past CHECK_TIMEOUT, no descriptor left): the node
        never vouches for a broken record, never waits on a lock, and keeps serving."""
        try:
            return self.ledger.signed_head().to_dict()
        except UNSIGNABLE as exc:
            self._unsigned(exc, "no head signed")
            return None

    def _unsigned(self, exc: Exception, what: str) -> None:
        """Count and log a head not signed: ``damaged ledger`` (refused until restored)
        or ``ledger unavailable`` (a lock or a passing error: the next head retries)."""
        if isinstance(exc, LedgerCorrupted):
            self.refused["damaged ledger"] += 1
            log.error("%s: %s: %s", self.me, what, exc)
        else:
            self.refused["ledger unavailable"] += 1
            log.warning("%s: %s: the ledger cannot be checked now: %s", self.me, what, exc)

    def _probe(self, now: float) -> None:
        """Ask two other alive members about each suspected peer (at most every half
        suspicion timeout per peer)."""
        alive = [p for p, s in self.members.states().items() if s is MemberState.ALIVE]
        for target in self.members.suspects():
            if now < self._next_probe.get(target, 0.0):
                continue
            self._next_probe[target] = now + self.config.timeouts.suspect_after / 2
            helpers = [p for p in alive if p != target]
            self._probe_turn += 1
            for i in range(min(PROBE_HELPERS, len(helpers))):
                helper = helpers[(self._probe_turn + i) % len(helpers)]
                self.send(helper, MessageKind.PROBE_REQUEST, {"target": target}, now)

    def _timers(self, now: float) -> None:
        if now >= self._next_beat:
            self._next_beat = now + self.config.timeouts.heartbeat
            self.broadcast(MessageKind.HEARTBEAT, {}, now)
            for peer, event in self.members.tick(now):
                self._member_event(peer, event, now)
            self._probe(now)
        if now >= self._next_gossip:
            self._next_gossip = now + self.config.gossip_every
            if self._signed:
                self.broadcast(MessageKind.STATS,
                               {"contributions": list(self._signed.values())}, now)
            head = self._signed_head()
            if head is not None:
                self.broadcast(MessageKind.HEAD, head, now)
        absent = {p for p, s in self.members.states().items()
                  if s in (MemberState.DEAD, MemberState.LEFT)}
        for run in list(self.runs.values()):
            while run.ready(now, absent):
                run.advance(now)
                if run.done:
                    self._finish(run)
                    break
                self._send_value(run, now)

    # --- agreement -----------------------------------------------------------

    def start_run(self, run_id: str, value: float, f: int, rounds: int, round_timeout: float,
                  now: float) -> None:
        participants = sorted([self.me, *self.config.peers])
        run = AgreementRun(run_id, participants, self.me, f, rounds, value, round_timeout, now)
        self.runs[run_id] = run
        for sender, round_, v in self._early.pop(run_id, []):
            try:
                run.receive(sender, round_, v)
            except RefusedMessage as exc:
                self.refused[exc.reason] += 1
        self._send_value(run, now)

    def _on_value(self, m: Message, now: float) -> None:
        run_id, round_, value = m.body["run"], m.body["round"], m.body["value"]
        if (not isinstance(run_id, str) or isinstance(round_, bool) or not isinstance(round_, int)
                or isinstance(value, bool) or not isinstance(value, (int, float))):
            self.refused[Refusal.MALFORMED.value] += 1
            return
        value = float(value)
        run = self.runs.get(run_id)
        if run is not None:
            run.receive(m.sender, round_, value)
        elif run_id not in self.finished:
            if len(self._early) < MAX_RUNS_BUFFERED or run_id in self._early:
                buffered = self._early.setdefault(run_id, [])
                if len(buffered) < MAX_VALUES_BUFFERED:
                    buffered.append((m.sender, round_, value))

    def _finish(self, run: AgreementRun) -> None:
        del self.runs[run.run]
        outcome = run.outcome()
        self.finished[run.run] = outcome
        while len(self.finished) > MAX_FINISHED:  # the oldest outcomes go (they are ledgered)
            del self.finished[next(iter(self.finished))]
        self._record("mesh.agreement", {"run": run.run, "rounds": run.rounds,
                                        "value": outcome.values[-1],
                                        "start": outcome.values[0],
                                        "muted": list(outcome.muted)})

    # --- statistics ------------------------------------------------------------

    def _publish_own(self) -> None:
        stats = NormalStats.of(self._observations)
        current = self.crdt.contributions.get(self.me)
        if current is None or current.version < self._version:
            self.crdt = self.crdt.update(self.me, stats, self._version)
        own = self.crdt.contributions[self.me]
        self._signed[self.me] = sign_contribution(self.key, self.me, own)

    def observe(self, values: list[float], beat: Mapping[str, Any] | None = None) -> None:
        """Add returns to this node's statistics (recorded first; ``beat``: the swarm's
        beat they came from, recorded with them)."""
        if len(self._observations) + len(values) > MAX_OBSERVATIONS:
            raise RefusedMessage(Refusal.OVERSIZED.value, f"a node holds at most "
                                 f"{MAX_OBSERVATIONS} observations")
        NormalStats.of(values)  # refuses NaN/inf before anything is stored
        self._record("mesh.observe", {"values": values} if beat is None
                     else {"values": values, "beat": dict(beat)})
        self._observations.extend(values)
        self._version += 1
        self._publish_own()

    def on_beat(self, report: BeatReport) -> None:
        """One beat of this node's swarm: its realized return, its consensus VaR."""
        var = report.consensus[0].var if report.consensus else math.nan
        if math.isfinite(var):
            self.estimate = float(var)
        if math.isfinite(report.realized):
            self.observe([float(report.realized)],
                         {"portfolio": report.portfolio, "seq": report.seq,
                          "as_of": report.as_of.isoformat(),
                          "var": float(var) if math.isfinite(var) else None})
        every = self.config.agree_every
        if every and report.seq % every == 0 and self.estimate is not None:
            run_id = f"beat-{report.portfolio}-{report.seq}"
            if run_id not in self.runs and run_id not in self.finished:
                n = len(self.config.peers) + 1
                f = min(self.config.f, (n - 1) // 3)
                try:
                    rounds = max(1, rounds_needed(self.config.agree_spread,
                                                  self.config.agree_eps, n, f))
                    self.start_run(run_id, self.estimate, f, rounds, self.config.round_timeout,
                                   time.monotonic())
                except SwarmVarError as exc:  # a bad configuration must not stop the node
                    self.refused["internal"] += 1
                    log.warning("%s: could not start run %s: %s", self.me, run_id, exc)

    def _on_stats(self, m: Message, now: float) -> None:
        items = m.body["contributions"]
        if not isinstance(items, list) or len(items) > 4 * (len(self.config.peers) + 1):
            self.refused[Refusal.MALFORMED.value] += 1
            return
        incoming: dict[str, Any] = {}
        for d in items:
            if not isinstance(d, dict):
                raise RefusedMessage(Refusal.MALFORMED.value, "contribution is not an object")
            replica, c = check_contribution(self.ring, d)
            if replica == self.me and c.version > self._version:
                # our own older life's contribution, from before a restart without a ledger
                continue
            incoming[replica] = (c, d)
        theirs = StatsCRDT({r: c for r, (c, _) in incoming.items()})
        merged = self.crdt.merge(theirs)
        for r, (c, d) in incoming.items():
            if merged.contributions.get(r) == c:
                self._signed[r] = d
        self.crdt = merged
        self._judge()

    def _judge(self) -> None:
        """Hold every peer's contribution to its own imported ledger; record a proven lie."""
        for r, c, want in self.peer_ledgers.judge(self.crdt, {self.me, *self.heads.forks}):
            self._record(REFUTED_RECORD, {
                "peer": r, "version": c.version,
                "claimed": [c.stats.count, c.stats.total, c.stats.total_sq],
                "ledgered": [want.count, want.total, want.total_sq],
                "signed": self._signed.get(r)})

    def _served_crdt(self) -> StatsCRDT:
        """The contributions served: all but those refuted by their owner's own ledger."""
        return self.peer_ledgers.served(self.crdt)

    def served(self, now: float) -> dict[str, Any]:
        replicas = sorted([self.me, *self.config.peers])
        bound = self.config.staleness
        fresh = {self.me} | {
            p for p in self.config.peers
            if self.members.state(p) is MemberState.ALIVE
            and not bound.is_stale(0, self.members.quiet(p, now))
        }
        crdt = self._served_crdt()
        if crdt.read().count == 0:
            return {"available": len(fresh), "total": len(replicas), "count": 0}
        s = serve(crdt, replicas, fresh, alpha=self.config.alpha, f=self.config.f)
        return {"point": s.point, "interval": list(s.interval), "available": s.available,
                "total": s.total, "degraded": s.degraded, "count": s.count}

    # --- ledger gossip ------------------------------------------------------------

    def _on_head(self, m: Message, now: float) -> None:
        key = self.ring.nodes[m.sender].public_bytes(Encoding.Raw, PublicFormat.Raw)
        head = parse_head(m.body, key)
        before = len(self.heads.forks)
        ask = self.heads.on_head(m.sender, head)
        if ask is not None:
            self.send(m.sender, MessageKind.PROOF_REQUEST, {"size1": ask[0], "size2": ask[1]},
                      now)
        if len(self.heads.forks) > before:
            self._report_forks()
        self._ask_entries(m.sender, head.size, now)

    def _report_forks(self) -> None:
        for peer, fork in self.heads.forks.items():
            if peer not in self._forks_recorded:
                self._forks_recorded.add(peer)
                self._record("mesh.fork_detected", {"peer": peer, "reason": fork.reason,
                                                    "earlier": fork.earlier.to_dict(),
                                                    "later": fork.later.to_dict()})

    # --- ledger merge --------------------------------------------------------------

    def _ask_entries(self, peer: str, size: int, now: float) -> None:
        """Ask ``peer`` for its entries past our cursor (one request at a time, re-asked
        after 2 s without an answer); never from a peer whose ledger forked."""
        start = self.peer_ledgers.wants(peer, size, now, peer in self.heads.forks)
        if start is not None:
            self.send(peer, MessageKind.ENTRIES_REQUEST, {"start": start}, now)

    def _on_entries(self, m: Message, now: float) -> None:
        peer = m.sender
        if peer in self.heads.forks:
            return
        key = self.ring.nodes[peer].public_bytes(Encoding.Raw, PublicFormat.Raw)
        batch = self.peer_ledgers.check(peer, m.body, key)
        if batch is None:
            return  # a stale answer (to a request asked again)
        # the head an import is proved against is held to the gossiped ones: a peer that
        # serves one ledger by gossip and a forked one by imports is caught here too
        before = len(self.heads.forks)
        ask = self.heads.on_head(peer, batch.head)
        if ask is not None:
            self.send(peer, MessageKind.PROOF_REQUEST, {"size1": ask[0], "size2": ask[1]},
                      now)
        if len(self.heads.forks) > before:
            self._report_forks()
            return
        if batch.items or batch.skipped:
            self._record(IMPORT_RECORD, batch.record())
        self.peer_ledgers.take(batch)
        self._judge()
        if batch.next < batch.head.size:
            self._ask_entries(peer, batch.head.size, now)

    # --- admin -------------------------------------------------------------------

    def handle_admin(self, body: Mapping[str, Any], now: float) -> dict[str, Any]:
        """Answer one admin command (see :mod:`.admin`)."""
        from .admin import handle_admin

        return handle_admin(self, body, now)

    def _admin(self, m: Message, routing_id: bytes | None, now: float) -> None:
        answer = self.handle_admin(m.body, now)
        if routing_id is not None:
            self._seq[m.sender] += 1
            body = {"re": m.seq, **answer}
            try:
                frames = seal(self.key, self.me, m.sender, self.epoch, self._seq[m.sender],
                              MessageKind.REPLY, body)
            except SwarmVarError as exc:  # too large for one message: say so instead
                frames = seal(self.key, self.me, m.sender, self.epoch, self._seq[m.sender],
                              MessageKind.REPLY, {"re": m.seq, "ok": False, "error": str(exc)})
            self.transport.reply(routing_id, frames)

    def status(self, now: float) -> dict[str, Any]:
        read = self.crdt.read()
        return {
            "node": self.me, "epoch": self.epoch,
            "members": {p: s.value for p, s in self.members.states().items()},
            "refused": dict(self.refused), "accepted": dict(self.accepted),
            "lost": self.inbox.lost, "sent": self.transport.sent,
            "dropped": self.transport.dropped, "queued": self.transport.queued,
            # factor is null when no shrink bound applies: with f = 0 every node gets the
            # same values, so one round agrees exactly (canonical JSON has no infinity)
            "runs": {r: {"values": list(o.values),
                         "factor": o.factor if math.isfinite(o.factor) else None,
                         "muted": list(o.muted)}
                     for r, o in list(self.finished.items())[-STATUS_RUNS:]},
            "active_runs": sorted(self.runs),
            "stats": {"count": read.count, "total": read.total, "total_sq": read.total_sq,
                      "versions": {r: c.version for r, c in self.crdt.contributions.items()}},
            "robust": self._robust_status(),
            "refuted": dict(self.peer_ledgers.refuted),
            "served": self.served(now),
            "imports": self.peer_ledgers.status(self.config.peers),
            "ledger": {"size": self.ledger.size,
                       "root": self.ledger.compute_merkle_root().hex()},
            "forks": {p: f.reason for p, f in self.heads.forks.items()},
            "genome": list(self.genome.as_tuple()), "anomalies": self.anomalies,
            "ml_weight": self.ml_weight, "estimate": self.estimate,
        }

    def _robust_status(self) -> dict[str, Any]:
        r = robust_read(self._served_crdt(), self.config.f)
        return {"f": r.f, "guaranteed": r.guaranteed, "bounded": list(r.bounded),
                "count": r.stats.count, "total": r.stats.total, "total_sq": r.stats.total_sq}

    def leave(self, now: float) -> None:
        """Say goodbye: the latest statistics, then LEAVE, flushed for at most 0.5 s.

        What was still queued for the peers (gossip, catch-up batches, heads) is dropped
        first: it is stale once the node leaves, and behind it a LEAVE could miss the
        flush and be lost at close (the peer would then see the node dead, not left)."""
        self.transport.clear_all()
        if self._signed:
            self.broadcast(MessageKind.STATS, {"contributions": list(self._signed.values())},
                           now)
        self.broadcast(MessageKind.LEAVE, {}, now)
        # the last message: the same step's timers (heartbeat, gossip) sent after it made
        # peers hear the node again (alive), then see it dead instead of left
        self._left = True
        end = time.monotonic() + 0.5
        while self.transport.queued and time.monotonic() < end:
            self.transport.pump(time.monotonic())
            time.sleep(0.001)
        self.stop = True

    def close(self) -> None:
        # after leave(): the LEAVE handed to ZeroMQ may not be on the wire yet (a loaded
        # machine); without a linger the close dropped it and peers saw the node dead
        self.transport.close(linger=LEAVE_LINGER if self._left else 0.0)
        self.ledger.close()
        if self._own_context:
            self._context.term()
