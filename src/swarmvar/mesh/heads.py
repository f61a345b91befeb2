"""Ledger gossip: peers' signed heads checked with consistency proofs (as Certificate
Transparency's gossip catches a forked log).

Each node broadcasts its ledger's :class:`~swarmvar.ledger.SignedHead`,
signed with its node key. A receiver keeps the last head it accepted from
each peer and, for a newer one:

* same size, different root: two signed heads that cannot both be true — a fork;
* smaller size: the ledger shrank — rewritten;
* larger size: it asks the peer for a consistency proof from the old size to
  the new and accepts the head only if the proof links the two signed roots;
  a proof that fails (or a peer that cannot produce one) is a fork.

A detected fork is kept with both heads as evidence; the node records it in
its own ledger and reports it (the ``status`` admin command).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidProof
from ..ledger import ConsistencyProof, HashAlgorithm, InvalidHead, SignedHead
from .wire import Refusal, refuse


@dataclass(frozen=True)
class Fork:
    """Evidence that a peer's ledger was rewritten or forked."""

    peer: str
    reason: str
    earlier: SignedHead
    later: SignedHead


def parse_head(d: Mapping[str, Any], trusted_key: bytes) -> SignedHead:
    """A gossiped head, its signature checked against the peer's node key."""
    try:
        head = SignedHead.from_dict(dict(d))
        head.verify_signature(trusted_key)
    except InvalidHead as exc:
        raise refuse(Refusal.FORGED, f"signed head: {exc}") from None
    return head


def parse_proof(d: Mapping[str, Any]) -> ConsistencyProof:
    try:
        return ConsistencyProof(int(d["size1"]), int(d["size2"]),
                                tuple(bytes.fromhex(p) for p in d["path"]),
                                bytes.fromhex(d["root1"]), bytes.fromhex(d["root2"]),
                                HashAlgorithm(d["hash_algorithm"]))
    except (KeyError, TypeError, ValueError):
        raise refuse(Refusal.MALFORMED, "malformed consistency proof") from None


class HeadWatch:
    """The last accepted head of each peer, pending proof requests and detected forks."""

    def __init__(self) -> None:
        self.accepted: dict[str, SignedHead] = {}
        self.pending: dict[str, SignedHead] = {}
        self.forks: dict[str, Fork] = {}

    def on_head(self, peer: str, head: SignedHead) -> tuple[int, int] | None:
        """Judge a new head; the (size1, size2) proof to request, if any."""
        old = self.accepted.get(peer)
        if old is None:
            self.accepted[peer] = head
            return None
        if head.size == old.size:
            if head.root != old.root:
                self._fork(peer, "two signed heads of the same size with different roots",
                           old, head)
            return None
        if head.size < old.size:
            self._fork(peer, f"the ledger shrank from {old.size} to {head.size} entries", old,
                       head)
            return None
        self.pending[peer] = head
        return (old.size, head.size)

    def on_proof(self, peer: str, proof: ConsistencyProof) -> bool:
        """Check a proof for the pending head; True if the head is now accepted."""
        old, new = self.accepted.get(peer), self.pending.get(peer)
        if old is None or new is None or (proof.size1, proof.size2) != (old.size, new.size):
            return False  # unasked for or outdated: ignored
        del self.pending[peer]
        try:
            proof.verify(root1=old.root, root2=new.root)
        except InvalidProof as exc:
            self._fork(peer, f"no consistency from size {old.size} to {new.size}: {exc}", old,
                       new)
            return False
        self.accepted[peer] = new
        return True

    def _fork(self, peer: str, reason: str, old: SignedHead, new: SignedHead) -> None:
        self.forks.setdefault(peer, Fork(peer, reason, old, new))
