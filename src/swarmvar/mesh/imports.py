"""Ledgers merged across the mesh: each node imports its peers' signed beats and estimates.

A node's own ledger records what it observed (``mesh.observe``: the beats'
realized returns with the swarm's consensus VaR, or returns sent by an
admin), what was injected (``mesh.inject_data``) and the agreements it
reached (``mesh.agreement``). Each node pulls these entries from every peer
(``ENTRIES_REQUEST`` from its cursor, answered by ``ENTRIES``): a batch
carries the peer's signed ledger head and, for every entry, the entry as
stored (its chained hash recomputed by the receiver) and an inclusion proof
against that head. The receiver checks the head's signature with the
peer's node key, every entry's hash and proof, and appends one
``mesh.imported`` entry to its own ledger holding the batch — the peer's
entries, their proofs and the signed head — so anyone can re-check it later
(:func:`check_import_record`). Nothing of the importer's own is rewritten:
imports are appended like any other entry, and ``ledger verify`` passes.

During a partition the sides cannot reach each other, so nothing is
imported across it; after the heal each node's cursor resumes where it
stopped and the other side's entries of the partition arrive. Imported
entries are never imported again by a third node (only a peer's own kinds
travel), so ledgers do not echo one another.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical_json
from ..consensus.partition import Contribution, NormalStats, StatsCRDT
from ..errors import InvalidProof, SwarmVarError
from ..ledger import HashAlgorithm, InclusionProof, InvalidHead, Ledger, SignedHead
from ..ledger.entry import canonical_data, entry_hash
from .ledgered import LedgeredStats
from .wire import Refusal, refuse

#: The entry types a node imports from its peers (their own beats, estimates, agreements).
IMPORTED_TYPES = frozenset({"mesh.observe", "mesh.inject_data", "mesh.agreement"})
#: The entry type an import is recorded under.
IMPORT_RECORD = "mesh.imported"
#: The entry type a contribution contradicted by its owner's ledger is recorded under.
REFUTED_RECORD = "mesh.stats_refuted"
#: Seconds before a request without an answer is asked again.
ASK_AGAIN = 2.0
#: Seconds between two batches served to one peer (a batch costs inclusion proofs).
ENTRIES_INTERVAL = 0.02
#: Entries a node scans for one request (bounds the work a request costs).
MAX_SCAN = 2000
#: Entries and bytes (canonical JSON) one batch carries, below the 64 KiB message limit.
MAX_BATCH_ENTRIES = 48
MAX_BATCH_BYTES = 40_000


def batch_for(ledger: Ledger, start: int) -> dict[str, Any]:
    """The answer to a request from ``start``: importable entries with proofs, signed head.

    Entries too large for a batch on their own are named in ``skipped``
    (index and hash) rather than sent; ``next`` is the first index not scanned.
    """
    head = ledger.signed_head()
    items: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    used, nxt = 0, start
    for entry in ledger.entries(start, min(head.size, start + MAX_SCAN)):
        if entry.data.get("type") not in IMPORTED_TYPES:
            nxt = entry.index + 1
            continue
        item = {"entry": entry.to_dict(),
                "proof": ledger.inclusion_proof(entry.index, head.size).to_dict()}
        size = len(canonical_json(item))
        if size > MAX_BATCH_BYTES:
            named = {"index": entry.index, "hash": entry.hash.hex()}
            cost = len(canonical_json(named))  # the skipped list counts toward the batch too
            if used + cost > MAX_BATCH_BYTES:
                break
            skipped.append(named)
            used += cost
            nxt = entry.index + 1
            continue
        if used + size > MAX_BATCH_BYTES:
            break
        items.append(item)
        used += size
        nxt = entry.index + 1
        if len(items) >= MAX_BATCH_ENTRIES:
            break
    return {"start": start, "next": nxt, "head": head.to_dict(), "entries": items,
            "skipped": skipped}


@dataclass(frozen=True)
class ImportBatch:
    """A checked batch of a peer's entries.

    Attributes
    ----------
    peer : str
    start, next : int
        The peer's ledger indices scanned: ``[start, next)``.
    head : SignedHead
        The peer's signed head the entries are proved against.
    items : tuple of dict
        ``{"entry": ..., "proof": ...}`` as received (checked).
    skipped : tuple of dict
        Entries named but too large to carry.
    """

    peer: str
    start: int
    next: int
    head: SignedHead
    items: tuple[dict[str, Any], ...]
    skipped: tuple[dict[str, Any], ...]

    def record(self) -> dict[str, Any]:
        """The details of the ``mesh.imported`` entry that keeps this batch."""
        return {"peer": self.peer, "start": self.start, "next": self.next,
                "head": self.head.to_dict(), "entries": list(self.items),
                "skipped": list(self.skipped)}


def _check_item(peer: str, item: Any, head: SignedHead, start: int, stop: int) -> None:
    if not isinstance(item, dict) or set(item) != {"entry", "proof"}:
        raise refuse(Refusal.MALFORMED, "an imported item is {entry, proof}")
    e, p = item["entry"], item["proof"]
    try:
        index, timestamp, kind, data = e["index"], e["timestamp"], e["kind"], e["data"]
        previous, stated = bytes.fromhex(e["previous_hash"]), bytes.fromhex(e["hash"])
        proof = InclusionProof(int(p["index"]), int(p["size"]), bytes.fromhex(p["entry_hash"]),
                               tuple(bytes.fromhex(x) for x in p["path"]),
                               bytes.fromhex(p["root"]), HashAlgorithm(p["hash_algorithm"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise refuse(Refusal.MALFORMED, "malformed imported entry or proof") from None
    if (not isinstance(index, int) or isinstance(index, bool) or not start <= index < stop
            or not isinstance(timestamp, str) or not isinstance(kind, str)
            or not isinstance(data, dict)):
        raise refuse(Refusal.MALFORMED, f"imported entry outside [{start}, {stop}) or bad fields")
    details = data.get("details")
    if data.get("type") not in IMPORTED_TYPES or not isinstance(details, dict) \
            or details.get("node") != peer:
        raise refuse(Refusal.FORGED, f"entry {index} is not one of {peer}'s own importable "
                     "entries")
    try:
        computed = entry_hash(index, timestamp, kind, canonical_data(data), previous,
                              head.hash_algorithm)
    except SwarmVarError as exc:
        raise refuse(Refusal.MALFORMED, f"imported entry {index}: {exc}") from None
    if computed != stated or proof.entry_hash != computed or proof.index != index \
            or proof.size != head.size:
        raise refuse(Refusal.FORGED, f"entry {index} of {peer} does not hash to what it states")
    try:
        proof.verify(head.root)
    except InvalidProof as exc:
        raise refuse(Refusal.FORGED, f"entry {index} of {peer} is not in its signed head: "
                     f"{exc}") from None


def check_batch(peer: str, body: Mapping[str, Any], peer_key: bytes,
                expect_start: int) -> ImportBatch:
    """Check an ``ENTRIES`` body from ``peer``; RefusedMessage if anything does not verify."""
    try:
        start, nxt = body["start"], body["next"]
        items, skipped = body["entries"], body["skipped"]
        head = SignedHead.from_dict(dict(body["head"]))
        head.verify_signature(peer_key)
    except InvalidHead as exc:
        raise refuse(Refusal.FORGED, f"imported head: {exc}") from None
    except (KeyError, TypeError, ValueError):
        raise refuse(Refusal.MALFORMED, "entries need start, next, head, entries, skipped") \
            from None
    if (not isinstance(start, int) or not isinstance(nxt, int) or isinstance(start, bool)
            or isinstance(nxt, bool) or start != expect_start
            or not start <= nxt <= head.size or not isinstance(items, list)
            or not isinstance(skipped, list) or len(items) > MAX_BATCH_ENTRIES
            or len(skipped) > MAX_SCAN):
        raise refuse(Refusal.MALFORMED, f"entries batch [{start!r:.20}, {nxt!r:.20}) does not "
                     f"follow cursor {expect_start}")
    for item in items:
        _check_item(peer, item, head, start, nxt)
    for x in skipped:
        if not (isinstance(x, dict) and set(x) == {"index", "hash"}
                and isinstance(x["index"], int) and not isinstance(x["index"], bool)
                and start <= x["index"] < nxt and isinstance(x["hash"], str)
                and len(x["hash"]) == 64 and all(c in "0123456789abcdef" for c in x["hash"])):
            raise refuse(Refusal.MALFORMED, "a skipped entry is {index, hash} inside the batch")
    # each entry once, in ledger order: repeated or reordered items would let a peer make
    # the importer recompute statistics its ledger does not hold (ledgered.py)
    indices = [item["entry"]["index"] for item in items]
    named = [x["index"] for x in skipped]
    if any(a >= b for a, b in zip(indices, indices[1:], strict=False)) or any(
            a >= b for a, b in zip(named, named[1:], strict=False)) or set(indices) & set(named):
        raise refuse(Refusal.MALFORMED, "a batch's entries and skipped entries must each come "
                     "once, in ledger order")
    return ImportBatch(peer, start, nxt, head, tuple(items), tuple(skipped))


def check_import_record(details: Mapping[str, Any], peer_key: bytes) -> int:
    """Re-check a stored ``mesh.imported`` entry's details; the number of entries it holds.

    Raises
    ------
    RefusedMessage
        If its head's signature, an entry's hash or an inclusion proof does not verify.
    """
    body = {k: details.get(k) for k in ("start", "next", "head", "entries", "skipped")}
    start = body["start"]
    if not isinstance(start, int) or isinstance(start, bool):
        raise refuse(Refusal.MALFORMED, "an import record needs an int start")
    batch = check_batch(str(details.get("peer")), body, peer_key, start)
    return len(batch.items)


class PeerLedgers:
    """One node's view of its peers' ledgers (the node's loop drives it, one thread).

    Per peer: the import cursor (``next``), the entries imported, the
    statistics its imported entries justify (:class:`~.ledgered.LedgeredStats`)
    and the contribution version refuted by them, if any.
    """

    def __init__(self, anomaly: float) -> None:
        self.next: Counter[str] = Counter()
        self.imported: Counter[str] = Counter()
        self.ledgered = LedgeredStats(anomaly)
        self.refuted: dict[str, int] = {}
        self._asked: dict[str, float] = {}
        self._answered: dict[str, float] = {}

    def replay(self, kind: str, details: Mapping[str, Any]) -> None:
        """Rebuild from one of this node's own ledger entries (restart)."""
        if kind == IMPORT_RECORD:
            peer = str(details["peer"])
            self.next[peer] = int(details["next"])
            self.imported[peer] += len(details["entries"])
            self.ledgered.add(peer, details["entries"], details["skipped"])
        elif kind == REFUTED_RECORD:
            self.refuted[str(details["peer"])] = int(details["version"])

    def wants(self, peer: str, size: int, now: float, forked: bool) -> int | None:
        """The start to ask ``peer`` for, given its head's ``size``; None: nothing to ask now
        (a forked peer, nothing new, or a request outstanding less than ``ASK_AGAIN``)."""
        if forked or size <= self.next[peer] or now - self._asked.get(peer, -math.inf) < ASK_AGAIN:
            return None
        self._asked[peer] = now
        return self.next[peer]

    def answer(self, ledger: Ledger, peer: str, start: Any, now: float) -> dict[str, Any] | None:
        """The batch to send ``peer`` from ``start``; None when ``peer`` asks too often.

        Raises
        ------
        RefusedMessage
            If ``start`` is not an index of the ledger.
        """
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= ledger.size:
            raise refuse(Refusal.MALFORMED, f"entries from {start!r:.20}: not an index")
        if now - self._answered.get(peer, -math.inf) < ENTRIES_INTERVAL:
            return None
        self._answered[peer] = now
        return batch_for(ledger, start)

    def check(self, peer: str, body: Mapping[str, Any], key: bytes) -> ImportBatch | None:
        """Check a batch from ``peer``; None if stale (not from its cursor: a request asked
        again). Record :meth:`ImportBatch.record` when it holds anything, then :meth:`take`."""
        if body.get("start") != self.next[peer]:
            return None
        self._asked.pop(peer, None)
        return check_batch(peer, body, key, self.next[peer])

    def take(self, batch: ImportBatch) -> None:
        """Move the cursor past a checked (and recorded) batch."""
        self.imported[batch.peer] += len(batch.items)
        self.ledgered.add(batch.peer, batch.items, batch.skipped)
        self.next[batch.peer] = batch.next

    def judge(self, crdt: StatsCRDT, skip: Collection[str]
              ) -> list[tuple[str, Contribution, NormalStats]]:
        """Newly refuted contributions (replica, claimed, ledgered); replicas in ``skip``
        (this node, forked peers) are not judged."""
        out = []
        for r, c in crdt.contributions.items():
            if r in skip or self.refuted.get(r) == c.version:
                continue
            if self.ledgered.judge(r, c) is False:
                self.refuted[r] = c.version
                out.append((r, c, self.ledgered.justified(r, c.version)))
        return out

    def served(self, crdt: StatsCRDT) -> StatsCRDT:
        """The contributions a node serves: all but those its owner's ledger refutes."""
        return StatsCRDT({r: c for r, c in crdt.contributions.items()
                          if self.refuted.get(r) != c.version})

    def status(self, peers: Collection[str]) -> dict[str, dict[str, int]]:
        return {p: {"next": self.next[p], "entries": self.imported[p]} for p in sorted(peers)}


__all__ = ["ASK_AGAIN", "ENTRIES_INTERVAL", "IMPORTED_TYPES", "IMPORT_RECORD", "REFUTED_RECORD",
           "ImportBatch", "PeerLedgers", "batch_for", "check_batch", "check_import_record"]
