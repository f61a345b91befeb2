"""SWIM-style membership from heartbeats: alive, suspected, dead, left; joins and returns.

Every node sends a signed heartbeat to every peer each ``heartbeat``
seconds. A peer not heard from for ``suspect_after`` seconds is suspected;
for ``dead_after`` seconds, declared dead. A LEAVE message marks a peer as
left at once. Hearing a suspected peer again clears the suspicion; hearing a
dead or left peer again — necessarily in a new epoch, since old epochs are
refused as replays — is a return, after which the node pushes its state to it
(catch-up). Every node hears every other directly (the meshes here have a
handful of nodes) and, as SWIM's ping-req, checks indirectly: while a peer
is suspected the node asks two other members whether they hear it; one that
does answers how long ago, which keeps the peer suspected instead of dead (a
link broken in one direction is not a death). The clock is passed in;
nothing here reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import InvalidParameter


class MemberState(Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


class MemberEvent(Enum):
    JOINED = "joined"  # first heard
    SUSPECTED = "suspected"
    CLEARED = "cleared"  # suspicion withdrawn
    DIED = "died"
    LEFT = "left"
    RETURNED = "returned"  # heard again after dead or left (a new epoch)


@dataclass(frozen=True)
class Timeouts:
    """Membership timing (seconds)."""

    heartbeat: float = 0.1
    suspect_after: float = 0.6
    dead_after: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < self.suspect_after < self.dead_after:
            raise InvalidParameter("need 0 < heartbeat < suspect_after < dead_after, got "
                                   f"{self.heartbeat}, {self.suspect_after}, {self.dead_after}")


@dataclass
class _Member:
    state: MemberState
    heard: float
    epoch: int


class Membership:
    """One node's view of its peers (``peers`` excludes itself)."""

    def __init__(self, peers: list[str], timeouts: Timeouts, now: float) -> None:
        self.timeouts = timeouts
        # unknown until heard: counted as suspected from the start, dead after dead_after
        self._members = {p: _Member(MemberState.SUSPECT, now, -1) for p in peers}
        self._joined: set[str] = set()

    def heard(self, peer: str, epoch: int, now: float) -> list[MemberEvent]:
        """A checked message from ``peer`` arrived; the events it causes."""
        m = self._members.get(peer)
        if m is None:
            return []
        events = []
        if m.state is MemberState.LEFT and epoch <= m.epoch:
            return []  # a late message of a peer that left: only a new epoch returns it
        if peer not in self._joined:
            self._joined.add(peer)
            events.append(MemberEvent.JOINED)
        elif m.state in (MemberState.DEAD, MemberState.LEFT) or epoch > m.epoch >= 0:
            events.append(MemberEvent.RETURNED)
        elif m.state is MemberState.SUSPECT:
            events.append(MemberEvent.CLEARED)
        m.state, m.heard, m.epoch = MemberState.ALIVE, now, max(epoch, m.epoch)
        return events

    def witnessed(self, peer: str, heard: float, epoch: int) -> None:
        """Another member heard ``peer`` at ``heard`` (indirect probe): not dead yet.

        Only a suspected peer of the same or a newer epoch is refreshed, and it
        stays suspected (we still do not hear it ourselves).
        """
        m = self._members.get(peer)
        if m is not None and m.state is MemberState.SUSPECT and epoch >= m.epoch:
            m.heard = max(m.heard, heard)

    def suspects(self) -> list[str]:
        return [p for p, m in self._members.items()
                if m.state is MemberState.SUSPECT and p in self._joined]

    def left(self, peer: str) -> list[MemberEvent]:
        m = self._members.get(peer)
        if m is None or m.state is MemberState.LEFT:
            return []
        m.state = MemberState.LEFT
        return [MemberEvent.LEFT]

    def tick(self, now: float) -> list[tuple[str, MemberEvent]]:
        """Suspicions and deaths due by ``now``."""
        out = []
        for peer, m in self._members.items():
            quiet = now - m.heard
            if m.state is MemberState.ALIVE and quiet > self.timeouts.suspect_after:
                m.state = MemberState.SUSPECT
                out.append((peer, MemberEvent.SUSPECTED))
            if m.state is MemberState.SUSPECT and quiet > self.timeouts.dead_after:
                m.state = MemberState.DEAD
                out.append((peer, MemberEvent.DIED))
        return out

    def quiet(self, peer: str, now: float) -> float:
        """Seconds since ``peer`` was last heard (inf if never)."""
        m = self._members[peer]
        return now - m.heard if peer in self._joined else float("inf")

    def state(self, peer: str) -> MemberState:
        return self._members[peer].state

    def states(self) -> dict[str, MemberState]:
        return {p: m.state for p, m in self._members.items()}

    def alive(self) -> list[str]:
        """Peers alive or only suspected (still counted as members)."""
        return [p for p, m in self._members.items()
                if m.state in (MemberState.ALIVE, MemberState.SUSPECT) and p in self._joined]
