"""Merkle trees exactly as RFC 6962 / RFC 9162 section 2.1 define them.

Leaves are hashed ``H(0x00 || d)`` and interior nodes ``H(0x01 || left || right)``;
a list of ``n > 1`` leaves is split at ``k``, the largest power of two smaller
than ``n``. The hash function is selectable: SHA3-256 (swarmvar's default) or
SHA-256 (so that Certificate Transparency's published vectors reproduce).

Two families of functions live here:

* over a plain list of leaf hashes (``root``, ``inclusion_proof``,
  ``consistency_proof``): the reference, O(n) per call;
* over *ranges* and *perfect subtrees* (``inclusion_ranges``,
  ``consistency_ranges``, ``perfect_cover``, ``fold``): every proof node is
  the hash of an aligned range ``[start, end)`` of leaves, and every such
  range is the right fold of at most ``log2(n)`` perfect subtrees. A store
  that keeps the hash of each perfect subtree therefore answers roots and
  proofs with O(log n) reads (see ``store.py``).

Verifiers follow the iterative algorithms of RFC 9162 sections 2.1.3.2 and
2.1.4.2 and raise :class:`~swarmvar.errors.InvalidProof` saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum

from ..errors import InvalidProof

#: (level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level).
NodeKey = tuple[int, int]


class HashAlgorithm(StrEnum):
    """Hash function of a chain and its Merkle tree (32-byte digests)."""

    SHA3_256 = "sha3-256"
    SHA256 = "sha-256"

    def new(self) -> Callable[[bytes], hashlib._Hash]:
        """The hashlib constructor of this algorithm."""
        return hashlib.sha3_256 if self is HashAlgorithm.SHA3_256 else hashlib.sha256

    @property
    def digest_size(self) -> int:
        return 32


def leaf_hash(data: bytes, algorithm: HashAlgorithm = HashAlgorithm.SHA3_256) -> bytes:
    """RFC 6962 leaf hash ``H(0x00 || data)``."""
    return algorithm.new()(b"\x00" + data).digest()


def node_hash(
    left: bytes, right: bytes, algorithm: HashAlgorithm = HashAlgorithm.SHA3_256
) -> bytes:
    """RFC 6962 interior node hash ``H(0x01 || left || right)``."""
    return algorithm.new()(b"\x01" + left + right).digest()


def empty_root(algorithm: HashAlgorithm = HashAlgorithm.SHA3_256) -> bytes:
    """Root of the empty tree, ``H()`` (the hash of no bytes)."""
    return algorithm.new()(b"").digest()


def split_point(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- reference functions over a list of leaf hashes ----------------------


def root(leaf_hashes: Sequence[bytes], algorithm: HashAlgorithm = HashAlgorithm.SHA3_256) -> bytes:
    """Merkle tree hash MTH of leaves given by their leaf hashes.

    Parameters
    ----------
    leaf_hashes : sequence of bytes, length n
        ``leaf_hash(d_i)`` of each leaf, in order.
    """
    if len(leaf_hashes) == 0:
        return empty_root(algorithm)
    return _mth(leaf_hashes, 0, len(leaf_hashes), algorithm)


def root_of_data(
    leaves: Sequence[bytes], algorithm: HashAlgorithm = HashAlgorithm.SHA3_256
) -> bytes:
    """Merkle tree hash MTH of raw leaf data (each hashed with :func:`leaf_hash`)."""
    return root([leaf_hash(d, algorithm) for d in leaves], algorithm)


def _mth(hashes: Sequence[bytes], start: int, end: int, algorithm: HashAlgorithm) -> bytes:
    n = end - start
    if n == 1:
        return hashes[start]
    k = split_point(n)
    return node_hash(
        _mth(hashes, start, start + k, algorithm),
        _mth(hashes, start + k, end, algorithm),
        algorithm,
    )


def _check_index(index: int, size: int) -> None:
    for value, what in ((index, "leaf index"), (size, "tree size")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidProof(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= index < size:
        raise InvalidProof(f"leaf index {index} is outside a tree of {size} leaves")


def inclusion_proof(
    index: int, leaf_hashes: Sequence[bytes], algorithm: HashAlgorithm = HashAlgorithm.SHA3_256
) -> list[bytes]:
    """RFC 6962 audit path PATH(index, D[n]) over a list of leaf hashes, bottom first."""
    _check_index(index, len(leaf_hashes))
    return [
        _mth(leaf_hashes, s, e, algorithm) for s, e in inclusion_ranges(index, len(leaf_hashes))
    ]


def consistency_proof(
    size1: int, leaf_hashes: Sequence[bytes], algorithm: HashAlgorithm = HashAlgorithm.SHA3_256
) -> list[bytes]:
    """RFC 6962 consistency proof PROOF(size1, D[n]) over a list of leaf hashes."""
    return [
        _mth(leaf_hashes, s, e, algorithm) for s, e in consistency_ranges(size1, len(leaf_hashes))
    ]


# --- ranges and perfect subtrees (what a store needs) --------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges ``[start, end)`` whose MTH form PATH(index, D[size]), bottom first."""
    _check_index(index, size)
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTH form PROOF(size1, D[size2]) (RFC 6962 SUBPROOF order).

    Empty when ``size1 == 0`` or ``size1 == size2``.
    """
    if not 0 <= size1 <= size2:
        raise InvalidProof(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, size2, size1, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                out.append((start, end))
            break
        k = split_point(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            complete = False
    out.reverse()
    return out


def perfect_cover(start: int, end: int) -> list[NodeKey]:
    """Perfect subtrees, left to right, whose right fold is MTH(D[start:end]).

    Valid for the ranges that occur in RFC 6962 trees: ``start`` a multiple of
    a power of two at least ``end - start`` (``start = 0`` always qualifies).
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative leaf range [{start}, {end})")
    if start and start % (1 << (end - start - 1).bit_length()):
        raise ValueError(f"leaf range [{start}, {end}) is not aligned to a subtree")
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def fold(hashes: Sequence[bytes], algorithm: HashAlgorithm = HashAlgorithm.SHA3_256) -> bytes:
    """Right fold ``node(h0, node(h1, ... node(h_{k-2}, h_{k-1})))`` of perfect-subtree hashes."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc, algorithm)
    return acc


def frontier_keys(size: int) -> list[NodeKey]:
    """Perfect subtrees whose fold is the root at ``size`` (one per set bit of size)."""
    return perfect_cover(0, size) if size else []


# --- verifiers (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -------------------


def _check_hash(value: bytes, what: str, algorithm: HashAlgorithm) -> None:
    if not isinstance(value, bytes) or len(value) != algorithm.digest_size:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise InvalidProof(f"{what} must be {algorithm.digest_size} bytes, got {size}")


def _sibling_sides(
    fn: int, sn: int, path: Sequence[bytes], what: str
) -> Iterator[tuple[bool, bytes]]:
    """RFC 9162's bit walk up the tree: each proof node, and whether it is a left sibling.

    ``fn`` is the index of the node the walk starts from and ``sn`` the last
    index at that level. Raises InvalidProof when ``path`` does not have
    exactly as many nodes as the walk from ``fn`` to the root needs.
    """
    for node in path:
        if sn == 0:
            raise InvalidProof(f"{what} has more nodes than the tree needs")
        left = bool(fn & 1) or fn == sn
        yield left, node
        if left:  # skip the levels where this node has no right sibling
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof(f"{what} has fewer nodes than the tree needs")


def root_from_inclusion_proof(
    index: int,
    size: int,
    leaf: bytes,
    proof: Sequence[bytes],
    algorithm: HashAlgorithm = HashAlgorithm.SHA3_256,
) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of ``size``."""
    _check_index(index, size)
    _check_hash(leaf, "leaf hash", algorithm)
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        raise InvalidProof(f"an inclusion proof is a sequence of hashes, not {type(proof)}")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]", algorithm)
    r = leaf
    for left, p in _sibling_sides(index, size - 1, proof, "inclusion proof"):
        r = node_hash(p, r, algorithm) if left else node_hash(r, p, algorithm)
    return r


def verify_inclusion(
    index: int,
    size: int,
    leaf: bytes,
    proof: Sequence[bytes],
    root_hash: bytes,
    algorithm: HashAlgorithm = HashAlgorithm.SHA3_256,
) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root_hash``.

    Raises
    ------
    InvalidProof
        Saying why the proof does not verify.
    """
    _check_hash(root_hash, "root", algorithm)
    got = root_from_inclusion_proof(index, size, leaf, proof, algorithm)
    if got != root_hash:
        raise InvalidProof(
            f"inclusion proof for leaf {index} of {size} leads to root {got.hex()}, "
            f"not {root_hash.hex()}"
        )


def verify_consistency(
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
    algorithm: HashAlgorithm = HashAlgorithm.SHA3_256,
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2``.

    Raises
    ------
    InvalidProof
        Saying why the proof does not verify.
    """
    for size, what in ((size1, "size1"), (size2, "size2")):
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidProof(f"{what} must be an int, not {type(size).__name__}")
    # Every hash's length first, on every path (transparency-dev/merkle checks
    # the shape before any early return).
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        kind = type(proof).__name__
        raise InvalidProof(f"a consistency proof is a sequence of hashes, not {kind}")
    _check_hash(root1, "root1", algorithm)
    _check_hash(root2, "root2", algorithm)
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]", algorithm)
    if not 0 <= size1 <= size2:
        raise InvalidProof(f"size1={size1} must be between 0 and size2={size2}")
    if size1 == size2:
        if proof:
            raise InvalidProof("trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise InvalidProof("trees of equal size have different roots")
        return
    if size1 == 0:
        # RFC 9162 defines consistency proofs for 0 < m < n; transparency-dev's
        # verifier refuses size1 = 0 ("meaningless"), and so does this one.
        raise InvalidProof(
            "a consistency proof from the empty tree (size1 = 0) is meaningless: "
            "RFC 9162 defines them for 0 < size1 < size2"
        )
    if not proof:
        raise InvalidProof(f"a consistency proof from {size1} to {size2} cannot be empty")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof[{i}]", algorithm)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: the old root is a node of the new tree
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # start from the old tree's last full subtree: path[0]
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for left, c in _sibling_sides(fn, sn, path[1:], "consistency proof"):
        if left:  # a node of both trees
            fr = node_hash(c, fr, algorithm)
            sr = node_hash(c, sr, algorithm)
        else:  # a node only the new tree has
            sr = node_hash(sr, c, algorithm)
    if fr != root1:
        raise InvalidProof(f"consistency proof does not lead to the old root at size {size1}")
    if sr != root2:
        raise InvalidProof(f"consistency proof does not lead to the new root at size {size2}")
