"""Full verification of stored rows: the hash chain, and the Merkle nodes kept beside it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .entry import ZERO_HASH, EntryKind, preimage
from .merkle import HashAlgorithm, empty_root, fold
from .store import Frontier, Row, push_leaf

_KINDS = frozenset(k.value for k in EntryKind)
#: Kinds allowed at index 0, and after it.
_FIRST_KINDS = frozenset({EntryKind.GENESIS.value})
_LATER_KINDS = _KINDS - _FIRST_KINDS


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
    frontier: Frontier = []
    prev = ZERO_HASH
    expected = 0
    for idx, timestamp, kind, data, previous, digest, nodes in rows:
        if idx != expected:
            reason = f"entry {expected} is missing (next stored is {idx})"
            return Verification(False, expected, expected, reason)
        if (
            previous != prev
            or kind not in (_LATER_KINDS if idx else _FIRST_KINDS)
            or new(preimage(idx, timestamp, kind, data, previous)).digest() != digest
        ):
            return Verification(False, expected, idx, _why(idx, kind, previous, prev))
        if push_leaf(frontier, idx, digest, new) != nodes:
            reason = "stored Merkle nodes differ from the recomputed ones"
            return Verification(False, expected, idx, reason)
        prev = digest
        expected += 1
    root = fold(frontier, algorithm) if frontier else empty_root(algorithm)
    return Verification(True, expected, None, None, root)


def _why(idx: int, kind: str, previous: bytes, prev: bytes) -> str:
    """Which check an entry failed (the slow path, run once)."""
    if kind not in _KINDS or (kind == EntryKind.GENESIS.value) != (idx == 0):
        return f"kind {kind!r} is not allowed at index {idx}"
    if previous != prev:
        return "previous_hash is not the hash of the entry before it (reordered or rewritten)"
    return "hash does not match the entry's contents (data, kind, timestamp or hash changed)"
