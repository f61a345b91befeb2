"""The signed envelope, the key ring's checks, replay protection and FIFO delivery."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import InvalidParameter, RefusedMessage
from swarmvar.mesh import MAX_MESSAGE_BYTES, Inbox, MessageKind, NodeKeyRing, seal
from swarmvar.mesh.transport import adaptive_delay

KEYS = {n: Ed25519PrivateKey.generate() for n in ("a", "b", "c")}
ADMIN = Ed25519PrivateKey.generate()
RING = NodeKeyRing({n: k.public_key() for n, k in KEYS.items()}, {"root": ADMIN.public_key()})


def _msg(seq: int, epoch: int = 5, kind: MessageKind = MessageKind.HEARTBEAT) -> list[bytes]:
    return seal(KEYS["a"], "a", "b", epoch, seq, kind, {"x": seq})


def test_a_sealed_message_opens_at_its_receiver_only() -> None:
    m = RING.open(_msg(3), "b")
    assert (m.sender, m.receiver, m.epoch, m.seq, m.kind, dict(m.body)) == (
        "a", "b", 5, 3, MessageKind.HEARTBEAT, {"x": 3})
    with pytest.raises(RefusedMessage) as err:
        RING.open(_msg(3), "c")
    assert err.value.reason == "misdirected"


@pytest.mark.parametrize(("frames", "reason"), [
    ([b"x" * (MAX_MESSAGE_BYTES + 1), b"s" * 64], "oversized"),
    ([b"{}"], "malformed"),
    ([b"{}", b"short"], "malformed"),
    ([b"[1, 2]", b"s" * 64], "malformed"),
    ([b'{"v":1}', b"s" * 64], "malformed"),
    (seal(Ed25519PrivateKey.generate(), "a", "b", 1, 1, MessageKind.VALUE, {}), "forged"),
    (seal(Ed25519PrivateKey.generate(), "eve", "b", 1, 1, MessageKind.VALUE, {}),
     "unknown_sender"),
    (seal(KEYS["a"], "a", "b", 1, 1, MessageKind.ADMIN, {"op": "leave"}), "forbidden"),
])
def test_bad_messages_are_refused_with_their_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(RefusedMessage) as err:
        RING.open(frames, "b")
    assert err.value.reason == reason


def test_admin_messages_open_for_admin_keys() -> None:
    m = RING.open(seal(ADMIN, "root", "b", 1, 1, MessageKind.ADMIN, {"op": "status"}), "b")
    assert m.kind is MessageKind.ADMIN


def test_a_body_too_large_to_send_is_refused_before_sending() -> None:
    with pytest.raises(InvalidParameter, match="exceeds the mesh limit"):
        seal(KEYS["a"], "a", "b", 1, 1, MessageKind.STATS, {"pad": "x" * MAX_MESSAGE_BYTES})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=4))
def test_random_frames_never_do_more_than_get_refused(frames: list[bytes]) -> None:
    with pytest.raises(RefusedMessage):
        RING.open(frames, "b")


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused(position: int, flip: int) -> None:
    frames = _msg(1)
    blob = bytearray(frames[0] + frames[1])
    i = position % len(blob)
    blob[i] ^= flip
    header, sig = bytes(blob[: len(frames[0])]), bytes(blob[len(frames[0]):])
    with pytest.raises(RefusedMessage) as err:
        RING.open([header, sig], "b")
    assert err.value.reason in ("malformed", "forged", "unknown_sender", "misdirected")


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=40))
def test_inbox_delivers_in_order_once_whatever_the_arrival(rnd: random.Random, n: int) -> None:
    arrivals = list(range(1, n + 1)) + [rnd.randint(1, n) for _ in range(n // 2)]  # duplicates
    rnd.shuffle(arrivals)
    inbox = Inbox(reorder_wait=10.0)
    delivered, refused = [], 0
    for seq in arrivals:
        try:
            delivered += [m.seq for m in inbox.push(RING.open(_msg(seq), "b"), 0.0)]
        except RefusedMessage as exc:
            assert exc.reason == "replayed"
            refused += 1
    assert delivered == list(range(1, n + 1))
    assert refused == len(arrivals) - n


def test_inbox_skips_a_lost_message_after_the_wait_and_refuses_old_epochs() -> None:
    inbox = Inbox(reorder_wait=0.05)
    assert [m.seq for m in inbox.push(RING.open(_msg(1), "b"), 0.0)] == [1]
    assert inbox.push(RING.open(_msg(3), "b"), 0.01) == []  # 2 is missing
    assert inbox.expire(0.02) == []
    assert [m.seq for m in inbox.expire(0.1)] == [3]
    assert inbox.lost == 1
    with pytest.raises(RefusedMessage, match="replayed"):
        inbox.push(RING.open(_msg(2), "b"), 0.2)  # too late: treated as a replay
    # a new incarnation starts again from 1; the old one is then refused
    assert [m.seq for m in inbox.push(RING.open(_msg(1, epoch=6), "b"), 0.3)] == [1]
    with pytest.raises(RefusedMessage, match="epoch"):
        inbox.push(RING.open(_msg(9, epoch=5), "b"), 0.3)


def test_the_design_documents_adaptive_delay() -> None:
    assert adaptive_delay(100) == 0.001 and adaptive_delay(101) == 0.0003


def test_a_replay_is_refused_before_its_signature_is_checked() -> None:
    inbox = Inbox()
    inbox.push(RING.open(_msg(1), "b", inbox), 0.0)
    header, _ = _msg(1)
    with pytest.raises(RefusedMessage) as err:  # its signature is garbage: never looked at
        RING.open([header, b"\0" * 64], "b", inbox)
    assert err.value.reason == "replayed"
    with pytest.raises(RefusedMessage) as err:  # a new seq is checked in full
        RING.open([_msg(2)[0], b"\0" * 64], "b", inbox)
    assert err.value.reason == "forged"
