"""Ledger gossip on real ledgers: grown heads accepted by proof, rewritten ones caught."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from swarmvar.errors import RefusedMessage
from swarmvar.ledger import Ledger
from swarmvar.mesh import MeshNode, NodeConfig, NodeKeyRing, free_ports
from swarmvar.mesh.heads import HeadWatch, parse_head, parse_proof
from swarmvar.mesh.membership import MemberEvent, Membership, MemberState, Timeouts
from swarmvar.mesh.wire import MessageKind

KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _ledger(n: int, tag: str) -> Ledger:
    led = Ledger.in_memory(signing_key=KEY)
    for i in range(n):
        led.record_action(tag, {"i": i})
    return led


def _wire(led: Ledger) -> object:
    return parse_head(led.signed_head().to_dict(), RAW)


def test_a_growing_ledger_is_accepted_through_a_consistency_proof() -> None:
    led, watch = _ledger(3, "a"), HeadWatch()
    assert watch.on_head("p", _wire(led)) is None  # type: ignore[arg-type]
    size1 = led.size
    for i in range(5):
        led.record_action("b", {"i": i})
    ask = watch.on_head("p", _wire(led))  # type: ignore[arg-type]
    assert ask == (size1, led.size)
    proof = parse_proof(led.consistency_proof(*ask).to_dict())
    assert watch.on_proof("p", proof)
    assert watch.accepted["p"].size == led.size and watch.forks == {}


def test_rewritten_shrunk_and_equivocating_ledgers_are_forks() -> None:
    honest, rewritten = _ledger(4, "a"), _ledger(9, "z")
    watch = HeadWatch()
    watch.on_head("p", _wire(honest))  # type: ignore[arg-type]
    ask = watch.on_head("p", _wire(rewritten))  # type: ignore[arg-type]
    assert ask is not None
    assert not watch.on_proof("p", parse_proof(rewritten.consistency_proof(*ask).to_dict()))
    assert "no consistency" in watch.forks["p"].reason

    shrink = HeadWatch()
    shrink.on_head("q", _wire(rewritten))  # type: ignore[arg-type]
    shrink.on_head("q", _wire(honest))  # type: ignore[arg-type]
    assert "shrank" in shrink.forks["q"].reason

    same = HeadWatch()
    other = _ledger(4, "b")
    same.on_head("r", _wire(honest))  # type: ignore[arg-type]
    same.on_head("r", _wire(other))  # type: ignore[arg-type]
    assert "same size" in same.forks["r"].reason


def test_a_head_signed_by_another_key_is_refused() -> None:
    stranger = Ledger.in_memory(signing_key=Ed25519PrivateKey.generate())
    with pytest.raises(RefusedMessage, match="forged"):
        parse_head(stranger.signed_head().to_dict(), RAW)
    with pytest.raises(RefusedMessage, match="malformed"):
        parse_proof({"size1": 1})


def test_membership_suspects_kills_and_welcomes_back() -> None:
    m = Membership(["p", "q"], Timeouts(0.1, 0.5, 1.0), now=0.0)
    assert m.heard("p", 7, 0.0) == [MemberEvent.JOINED]
    assert m.alive() == ["p"]  # q was never heard
    assert m.tick(0.6) == [("p", MemberEvent.SUSPECTED)]
    assert m.heard("p", 7, 0.7) == [MemberEvent.CLEARED]
    assert ("p", MemberEvent.DIED) in m.tick(1.8)
    assert m.state("p") is MemberState.DEAD
    assert m.heard("p", 8, 2.0) == [MemberEvent.RETURNED]
    assert m.left("p") == [MemberEvent.LEFT] and m.state("p") is MemberState.LEFT
    # indirect probing: another member heard q lately, so q is suspected but not dead
    m.heard("q", 3, 2.0)
    assert m.tick(2.6) == [("q", MemberEvent.SUSPECTED)] and m.suspects() == ["q"]
    m.witnessed("q", 2.9, 3)
    assert m.tick(3.5) == [] and m.state("q") is MemberState.SUSPECT
    m.witnessed("q", 3.4, 2)  # an older epoch's news is ignored
    assert ("q", MemberEvent.DIED) in m.tick(4.0)
    # p left at epoch 8: a late message of that epoch is ignored, a new epoch returns it
    assert m.state("p") is MemberState.LEFT
    assert m.heard("p", 8, 4.1) == [] and m.state("p") is MemberState.LEFT
    assert m.heard("p", 9, 4.2) == [MemberEvent.RETURNED] and m.state("p") is MemberState.ALIVE
    with pytest.raises(Exception, match="heartbeat"):
        Timeouts(1.0, 0.5, 2.0)


def test_a_node_that_left_drops_its_queue_and_sends_nothing_after_the_leave() -> None:
    """leave() drops what was queued (not counted as lost), queues the LEAVE alone, and
    nothing is sealed after it (a peer hearing us would take us back)."""
    keys = {n: Ed25519PrivateKey.generate() for n in "ab"}
    ring = NodeKeyRing({n: k.public_key() for n, k in keys.items()})
    ports = free_ports(2)
    node = MeshNode(NodeConfig("a", f"tcp://127.0.0.1:{ports[0]}",
                               {"b": f"tcp://127.0.0.1:{ports[1]}"}, ring),
                    keys["a"], epoch=time.time_ns())
    try:
        node.send("b", MessageKind.STATS, {"contributions": []}, 1.0)
        assert node.transport.queued == 1
        node.leave(2.0)  # b is not there: nothing is taken off the queue during the flush
        assert node.transport.queued == 1 and node.transport.dropped == 0  # the LEAVE alone
        seq = dict(node._seq)
        node.broadcast(MessageKind.HEARTBEAT, {}, 3.0)
        assert node.transport.queued == 1 and dict(node._seq) == seq and node.stop
    finally:
        node.close()
