"""Signed mesh messages: the envelope, the node key ring, replay protection and FIFO order.

A message travels as two ZeroMQ frames ``[header, signature]``: ``header`` is
the canonical JSON of

    ``{"v": 1, "from": id, "to": id, "epoch": int, "seq": int, "kind": str, "body": {...}}``

and ``signature`` the sender's Ed25519 signature of those bytes. ``to`` is
signed, so a message meant for one peer cannot be replayed to another;
``epoch`` is the sender's incarnation (a new, larger number each time a node
starts, as SWIM's incarnation numbers), ``seq`` counts the sender's messages
to that receiver from 1 within an epoch.

:class:`NodeKeyRing.open` checks, in order: size (before parsing), frames,
JSON, fields, a known sender, the receiver, not a replay (when given the
inbox: cheap refusals before the costly one), the signature. :class:`Inbox`
then delivers each sender's messages in sequence order (FIFO per peer): a
duplicate or an old sequence number or epoch is a replay; a message ahead of
a gap waits up to ``reorder_wait`` seconds for the gap to fill, then the gap
is skipped (counted as lost). Every refusal raises
:class:`~swarmvar.errors.RefusedMessage` with its :class:`Refusal` reason;
the node counts them and carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..canonical import NotCanonical, canonical_json, loads
from ..errors import InvalidParameter, RefusedMessage

VERSION = 1
#: Largest message a node parses (bytes, header plus signature).
MAX_MESSAGE_BYTES = 64 * 1024
SIGNATURE_BYTES = 64
#: Messages held per sender while waiting for a gap to fill.
MAX_PENDING = 1024


class MessageKind(Enum):
    """What a mesh message carries."""

    HEARTBEAT = "heartbeat"  # membership: I am alive (body: members I see)
    LEAVE = "leave"  # membership: I am leaving
    VALUE = "value"  # agreement: my value in round r of run id
    STATS = "stats"  # CRDT: signed contributions of conjugate statistics
    HEAD = "head"  # ledger gossip: my signed head
    PROOF_REQUEST = "proof_request"  # ledger gossip: prove size1 -> size2
    PROOF = "proof"  # ledger gossip: a consistency proof
    ENTRIES_REQUEST = "entries_request"  # ledger merge: your importable entries from ``start``
    ENTRIES = "entries"  # ledger merge: entries with inclusion proofs and a signed head
    PROBE_REQUEST = "probe_request"  # membership: have you heard ``target`` lately?
    PROBE_ACK = "probe_ack"  # membership: yes, ``age`` seconds ago, in ``epoch``
    ADMIN = "admin"  # an admin's command (admin keys only)
    REPLY = "reply"  # a node's answer to an admin command


class Refusal(Enum):
    """Why a message was refused."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNKNOWN_SENDER = "unknown_sender"
    FORGED = "forged"
    MISDIRECTED = "misdirected"
    REPLAYED = "replayed"
    FORBIDDEN = "forbidden"  # an admin command from a key without the admin role
    EQUIVOCATION = "equivocation"  # two different values for one round from one sender


def refuse(reason: Refusal, detail: str) -> RefusedMessage:
    return RefusedMessage(reason.value, detail)


@dataclass(frozen=True)
class Message:
    """A checked message (its signature verified, its receiver this node)."""

    sender: str
    receiver: str
    epoch: int
    seq: int
    kind: MessageKind
    body: Mapping[str, Any]


def seal(
    key: Ed25519PrivateKey,
    sender: str,
    receiver: str,
    epoch: int,
    seq: int,
    kind: MessageKind,
    body: Mapping[str, Any],
) -> list[bytes]:
    """The two frames of a signed message (raises NotCanonical for a body with no JSON form)."""
    header = canonical_json({
        "v": VERSION, "from": sender, "to": receiver, "epoch": epoch, "seq": seq,
        "kind": kind.value, "body": dict(body),
    })
    if len(header) + SIGNATURE_BYTES > MAX_MESSAGE_BYTES:
        raise InvalidParameter(
            f"a {kind.value} message of {len(header)} bytes exceeds the mesh limit of "
            f"{MAX_MESSAGE_BYTES} bytes; send less per message"
        )
    return [header, key.sign(header)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class NodeKeyRing:
    """Public keys of the mesh: nodes (``node id -> key``) and admins (admin id -> key).

    Parameters
    ----------
    nodes : mapping of str to Ed25519PublicKey
        Every node of the mesh (including this one).
    admins : mapping of str to Ed25519PublicKey
        Keys allowed to send :attr:`MessageKind.ADMIN` commands.
    """

    nodes: Mapping[str, Ed25519PublicKey]
    admins: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = set(self.nodes) & set(self.admins)
        if clash:
            raise InvalidParameter(f"ids {sorted(clash)} are both nodes and admins; "
                                   "use distinct ids")
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "admins", MappingProxyType(dict(self.admins)))

    def key_of(self, sender: str) -> Ed25519PublicKey | None:
        return self.nodes.get(sender) or self.admins.get(sender)

    def open(self, frames: list[bytes], receiver: str, inbox: Inbox | None = None) -> Message:
        """Check one received message for ``receiver``; raise RefusedMessage if it fails.

        The message's sequence number is judged by :class:`Inbox`; given one
        here, a message it would refuse as a replay is refused before the
        (costly) signature check, so a flood of replays costs a parse each.
        """
        total = sum(len(f) for f in frames)
        if total > MAX_MESSAGE_BYTES:
            raise refuse(Refusal.OVERSIZED, f"{total} bytes > {MAX_MESSAGE_BYTES}")
        if len(frames) != 2 or len(frames[1]) != SIGNATURE_BYTES:
            raise refuse(Refusal.MALFORMED, f"expected [header, 64-byte signature], got "
                         f"{len(frames)} frames")
        header, signature = frames
        try:
            d = loads(header)
        except (NotCanonical, ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise refuse(Refusal.MALFORMED, f"header is not JSON: {exc!s:.80}") from None
        if not isinstance(d, dict) or set(d) != {"v", "from", "to", "epoch", "seq", "kind",
                                                  "body"}:
            raise refuse(Refusal.MALFORMED, "header must have exactly v, from, to, epoch, seq, "
                         "kind, body")
        sender, to, epoch, seq, kind, body = (d["from"], d["to"], d["epoch"], d["seq"],
                                             d["kind"], d["body"])
        if d["v"] != VERSION or not isinstance(sender, str) or not isinstance(to, str):
            raise refuse(Refusal.MALFORMED, "bad version, sender or receiver")
        if not (_is_int(epoch) and _is_int(seq) and epoch >= 0 and seq >= 1):
            raise refuse(Refusal.MALFORMED, "epoch must be an int >= 0 and seq an int >= 1")
        if not isinstance(body, dict):
            raise refuse(Refusal.MALFORMED, "body must be an object")
        try:
            message_kind = MessageKind(kind)
        except ValueError:
            raise refuse(Refusal.MALFORMED, f"unknown kind {kind!r:.40}") from None
        key = self.key_of(sender)
        if key is None:
            raise refuse(Refusal.UNKNOWN_SENDER, f"{sender!r:.40} is not in the key ring")
        if to != receiver:
            raise refuse(Refusal.MISDIRECTED, f"message for {to!r:.40} arrived at {receiver!r}")
        if inbox is not None and inbox.is_replay(sender, epoch, seq):
            raise refuse(Refusal.REPLAYED, f"{sender} epoch {epoch} seq {seq} already seen")
        try:
            key.verify(signature, header)
        except _BadSignature:
            raise refuse(Refusal.FORGED, f"signature of {sender!r} does not verify") from None
        if message_kind is MessageKind.ADMIN and sender not in self.admins:
            raise refuse(Refusal.FORBIDDEN, f"{sender!r} has no admin role")
        return Message(sender, to, epoch, seq, message_kind, body)


@dataclass
class _Stream:
    epoch: int
    delivered: int = 0
    pending: dict[int, tuple[Message, float]] = field(default_factory=dict)


class Inbox:
    """Per-sender FIFO delivery with replay protection (see the module doc).

    Parameters
    ----------
    reorder_wait : float
        Seconds a message ahead of a gap waits before the gap is declared lost.
    """

    def __init__(self, reorder_wait: float = 0.05) -> None:
        self.reorder_wait = reorder_wait
        self._streams: dict[str, _Stream] = {}
        self.lost = 0

    def is_replay(self, sender: str, epoch: int, seq: int) -> bool:
        """Whether :meth:`push` would refuse this message as a replay (no state changes)."""
        stream = self._streams.get(sender)
        if stream is None or epoch > stream.epoch:
            return False
        return epoch < stream.epoch or seq <= stream.delivered or seq in stream.pending

    def push(self, message: Message, now: float) -> list[Message]:
        """Messages now deliverable in order (possibly none); RefusedMessage for a replay."""
        stream = self._streams.get(message.sender)
        if stream is None or message.epoch > stream.epoch:
            stream = self._streams[message.sender] = _Stream(message.epoch)
        elif message.epoch < stream.epoch:
            raise refuse(Refusal.REPLAYED, f"{message.sender} epoch {message.epoch} is older "
                         f"than {stream.epoch}")
        if message.seq <= stream.delivered or message.seq in stream.pending:
            raise refuse(Refusal.REPLAYED, f"{message.sender} seq {message.seq} already seen")
        if len(stream.pending) >= MAX_PENDING:
            raise refuse(Refusal.OVERSIZED, f"{message.sender} has {MAX_PENDING} messages "
                         "waiting for a gap")
        stream.pending[message.seq] = (message, now)
        return self._drain(stream)

    def _drain(self, stream: _Stream) -> list[Message]:
        out = []
        while stream.delivered + 1 in stream.pending:
            stream.delivered += 1
            out.append(stream.pending.pop(stream.delivered)[0])
        return out

    def expire(self, now: float) -> list[Message]:
        """Skip gaps older than ``reorder_wait``; the messages behind them, in order."""
        out: list[Message] = []
        for stream in self._streams.values():
            while stream.pending:
                first = min(stream.pending)
                if now - min(t for _, t in stream.pending.values()) < self.reorder_wait:
                    break
                self.lost += first - stream.delivered - 1
                stream.delivered = first - 1
                out.extend(self._drain(stream))
        return out

    def epoch_of(self, sender: str) -> int | None:
        stream = self._streams.get(sender)
        return None if stream is None else stream.epoch


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def public_key_from_hex(text: str, what: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except (ValueError, TypeError):
        raise InvalidParameter(f"{what}: not a 32-byte hex Ed25519 public key") from None
