"""A Byzantine mesh node for the tests: a real node whose agreement values lie.

Strategies (switched by the admin command ``strategy``):

* ``honest`` — behaves;
* ``lie`` — sends a value far outside the honest range to everyone;
* ``equivocate`` — sends different values to different peers, and to one
  peer a second, different value for the same round;
* ``silent`` — sends no agreement values (heartbeats go on);
* ``replay`` — sends no values of its own; re-sends the messages it got
  from honest nodes to other nodes, and its own earlier messages again;
* ``inflate`` — signs (with its own key: they verify) statistics of a
  million fake 5% losses as its CRDT contribution.

Run like ``swarmvar mesh node`` (same options).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import typer

from swarmvar.cli.mesh import node as node_command
from swarmvar.consensus.partition import Contribution, NormalStats
from swarmvar.mesh import MeshNode, MessageKind, launch, seal
from swarmvar.mesh.stats import sign_contribution


class ByzantineNode(MeshNode):
    strategy = "honest"
    _captured: list[list[bytes]]
    _own: list[tuple[str, list[bytes]]]

    def outgoing_value(self, peer: str, run: str, round_: int, value: float) -> float | None:
        s = self.strategy
        if s == "lie":
            return 1e6
        if s == "equivocate":
            peers = sorted(self.config.peers)
            return value - 10.0 if peers.index(peer) % 2 else value + 10.0
        if s in ("silent", "replay"):
            return None
        return value

    def send(self, peer: str, kind: MessageKind, body: Mapping[str, Any], now: float) -> None:
        self._seq[peer] += 1
        frames = seal(self.key, self.me, peer, self.epoch, self._seq[peer], kind, body)
        self.transport.enqueue(peer, frames, now)
        own = self.__dict__.setdefault("_own", [])
        if kind is MessageKind.VALUE and len(own) < 10_000:
            own.append((peer, frames))
        if self.strategy == "equivocate" and kind is MessageKind.VALUE \
                and peer == min(p for p in self.config.peers if not p.startswith("b")):
            self._seq[peer] += 1  # a second, different value for the same round
            second = dict(body, value=float(body["value"]) + 1.0)
            self.transport.enqueue(peer, seal(self.key, self.me, peer, self.epoch,
                                              self._seq[peer], kind, second), now)

    def on_frames(self, raw: list[bytes], now: float) -> None:
        captured = self.__dict__.setdefault("_captured", [])
        if len(raw) == 3 and len(captured) < 10_000 and b'"kind":"value"' in raw[1]:
            captured.append(raw[1:])
        super().on_frames(raw, now)

    def _timers(self, now: float) -> None:
        super()._timers(now)
        if self.strategy == "replay" and self.runs and now >= self.__dict__.get("_next", 0.0):
            self.__dict__["_next"] = now + 0.1
            captured = self.__dict__.get("_captured", [])
            for frames in captured[-20:]:  # honest nodes' signed values, to the wrong receivers
                for peer in self.config.peers:
                    self.transport.enqueue(peer, frames, now)
            for peer, frames in self.__dict__.get("_own", [])[-20:]:  # our own, again
                self.transport.enqueue(peer, frames, now)

    def handle_admin(self, body: Mapping[str, Any], now: float) -> dict[str, Any]:
        if body.get("op") == "strategy":
            self.strategy = str(body.get("name"))
            if self.strategy == "inflate":
                self._version += 1
                fake = Contribution(self._version, NormalStats(10**6, -5e4, 1e7))
                self._signed[self.me] = sign_contribution(self.key, self.me, fake)
            return {"ok": True}
        return super().handle_admin(body, now)


def _serve(config: Any, key_path: Any, *, max_seconds: float = 300.0,
           node_class: type[MeshNode] = MeshNode) -> None:
    serve = launch.__dict__["_original_serve_node"]
    serve(config, key_path, max_seconds=max_seconds, node_class=ByzantineNode)


if __name__ == "__main__":
    launch.__dict__["_original_serve_node"] = launch.serve_node
    launch.serve_node = _serve  # type: ignore[assignment]
    app = typer.Typer(add_completion=False)
    app.command()(node_command)
    sys.argv[0] = "byzantine_node"
    app()
