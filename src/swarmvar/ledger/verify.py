"""Full verification of stored rows: the hash chain, and the Merkle nodes kept beside it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .entry import ZERO_HASH, EntryKind, preimage
from .merkle import HashAlgorithm, empty_root, fold
from .store import Frontier, Row

_KINDS = frozenset(k.value for k in EntryKind)


@dataclass(frozen=True)
class Verification:
    """Outcome of checking a ledger.

    Attributes
    ----------
    ok : bool
    size : int
        Entries checked (up to the first bad one when not ok).
    first_bad : int or None
        Index of the first entry that fails, when not ok.
    reason : str or None
        What is wrong with it.
    root : bytes or None
        Merkle root recomputed from the entries, when ok.
    """

    ok: bool
    size: int
    first_bad: int | None = None
    reason: str | None = None
    root: bytes | None = None

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            root = self.root.hex() if self.root is not None else "-"
            return f"ok: {self.size} entries verify; root {root}"
        return f"entry {self.first_bad} is bad: {self.reason}"


def verify_rows(rows: Iterable[Row], algorithm: HashAlgorithm) -> Verification:
    """Recompute every entry hash, chain link and stored Merkle node from ``rows``.

    Parameters
    ----------
    rows : iterable of Row
        All stored rows in index order, starting at 0.

    Returns
    -------
    Verification
        Not ok at the first row whose index, kind, previous hash, hash or
        Merkle nodes differ from what its contents and predecessors imply.
    """
    new = algorithm.new()
    prev = ZERO_HASH
    frontier: Frontier = []
    expected = 0
    for idx, timestamp, kind, data, previous, digest, nodes in rows:
        bad = None
        if idx != expected:
            return Verification(
                False, expected, expected, f"entry {expected} is missing (next stored is {idx})"
            )
        if kind not in _KINDS or (kind == EntryKind.GENESIS.value) != (idx == 0):
            bad = f"kind {kind!r} is not allowed at index {idx}"
        elif previous != prev:
            bad = "previous_hash is not the hash of the entry before it (reordered or rewritten)"
        elif new(preimage(idx, timestamp, kind, data, previous)).digest() != digest:
            bad = "hash does not match the entry's contents (data, kind, timestamp or hash changed)"
        if bad is not None:
            return Verification(False, expected, idx, bad)
        cur = new(b"\x00" + digest).digest()
        level = 0
        done = b""
        while frontier and frontier[-1][0] == level:
            cur = new(b"\x01" + frontier.pop()[1] + cur).digest()
            level += 1
            done += cur
        if done != nodes:
            return Verification(
                False, expected, idx, "stored Merkle nodes differ from the recomputed ones"
            )
        frontier.append((level, cur))
        prev = digest
        expected += 1
    root = fold([h for _, h in frontier], algorithm) if frontier else empty_root(algorithm)
    return Verification(True, expected, None, None, root)
