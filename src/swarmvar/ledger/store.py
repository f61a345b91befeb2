"""Where ledger entries live: a narrow store interface, and its two implementations.

A store keeps rows ``(index, timestamp, kind, data_json, previous_hash, hash,
nodes)``. ``nodes`` holds the hashes of the perfect Merkle subtrees that the
row's leaf completes: leaf ``i`` completes one subtree per trailing 1-bit of
``i`` (levels 1..t, 32 bytes each), so the subtree ``(level, j)`` lives in
row ``(j + 1) * 2**level - 1`` and any root or proof needs O(log n) row reads.
Level-0 nodes are leaf hashes ``H(0x00 || entry hash)``, computed on read.

Appends seal a batch inside one write transaction: read the head, chain the
new entries to it (:func:`seal_batch`), insert, commit. Two appenders
therefore never see the same head, and a batch is all or nothing.

:class:`MemoryStore` (tests, ephemeral use), :class:`SQLiteStore` (default;
one WAL-mode file) and ``PostgresStore`` (:mod:`.postgres`) share
:func:`seal_batch`. Stores may also offer ``damage() -> str | None`` (the
database's own integrity check) and ``row_count(below) -> int`` (rows with an
index below ``below``); verification uses them when present. A store may offer
``holds(index, kind, text) -> bool`` (whether the row at ``index`` is of ``kind`` with
canonical data ``text``): :meth:`~swarmvar.ledger.Ledger.holds` asks it instead of the
size it would read now, so it must wait for appends still in flight (another
connection's COMMIT) before answering "no", and raise when it cannot say.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import Any, Protocol

from ..errors import LedgerCorrupted
from .entry import ZERO_HASH, preimage
from .merkle import HashAlgorithm, NodeKey

#: (kind value, canonical data JSON, timestamp): an entry before it is chained.
Draft = tuple[str, str, str]
#: (index, timestamp, kind, data_json, previous_hash, hash, nodes): a stored entry.
Row = tuple[int, str, str, str, bytes, bytes, bytes]
#: Hashes of the perfect subtrees on the right edge of the tree, largest first:
#: one per set bit of the tree size, so the levels are implied by the size.
Frontier = list[bytes]

#: Batches from this size on are sealed with C-level maps a tree level at a
#: time (:func:`batch_nodes`); smaller ones entry by entry, with less setup.
_LEVELWISE_FROM = 16
_LEAF = b"\x00"  # RFC 6962 domain separation: leaf hash H(0x00 || d)
_NODE = b"\x01"  # interior node hash H(0x01 || left || right)


class Durability(StrEnum):
    """How hard a commit is pushed to disk (SQLite ``synchronous``)."""

    #: Survives a killed process; a power cut may lose the last commits (WAL, synchronous=NORMAL).
    PROCESS = "process"
    #: Survives a power cut too: fsync on every commit (synchronous=FULL).
    POWER = "power"


class LedgerStore(Protocol):
    """What the ledger needs from storage; append-only by construction."""

    @property
    def hash_algorithm(self) -> HashAlgorithm: ...

    @property
    def created(self) -> str: ...

    def size(self) -> int:
        """Number of stored entries."""
        ...

    def append(self, drafts: Sequence[Draft], *, if_size: int | None = None) -> list[Row] | None:
        """Chain and store ``drafts`` atomically; return the stored rows.

        With ``if_size``, write only if the store holds exactly that many
        entries, else write nothing and return None (compare-and-append).
        """
        ...

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        """Stored rows with ``start <= index < stop``, in index order."""
        ...

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """Hashes of the perfect subtrees ``keys``, in the same order."""
        ...

    def close(self) -> None: ...


def seal_batch(
    drafts: Sequence[Draft],
    size: int,
    head_hash: bytes,
    frontier: Frontier,
    algorithm: HashAlgorithm,
) -> tuple[list[Row], Frontier]:
    """Chain ``drafts`` onto a ledger of ``size`` entries whose last hash is ``head_hash``.

    Parameters
    ----------
    drafts : sequence of Draft, length m
    size : int
        Entries already stored.
    head_hash : bytes
        Hash of entry ``size - 1`` (:data:`ZERO_HASH` when empty).
    frontier : Frontier
        Perfect subtrees of the tree of ``size`` leaves (one per set bit).

    Returns
    -------
    rows : list of Row, length m
    frontier : Frontier
        For ``size + m`` leaves.
    """
    if len(drafts) < _LEVELWISE_FROM:
        return _seal_each(drafts, size, head_hash, frontier, algorithm)
    new = algorithm.new()
    prev = head_hash
    # The chain is sequential; the f-string is entry.preimage, inlined (a test
    # checks every hash against entry_hash).
    hashes = [
        prev := new(
            f'{{"data":{data_json},"index":{index},"kind":"{kind}",'
            f'"previous_hash":"{prev.hex()}","timestamp":"{timestamp}"}}'.encode()
        ).digest()
        for index, (kind, data_json, timestamp) in enumerate(drafts, size)
    ]
    nodes, frontier = batch_nodes(hashes, size, frontier, new)
    kinds, datas, stamps = zip(*drafts, strict=True)
    previous = [head_hash, *hashes[:-1]]
    end = size + len(hashes)
    rows = list(zip(range(size, end), stamps, kinds, datas, previous, hashes, nodes, strict=True))
    return rows, frontier


def _seal_each(
    drafts: Sequence[Draft],
    size: int,
    head_hash: bytes,
    frontier: Frontier,
    algorithm: HashAlgorithm,
) -> tuple[list[Row], Frontier]:
    """:func:`seal_batch` entry by entry: less setup, for a few drafts."""
    new = algorithm.new()
    frontier = list(frontier)
    rows: list[Row] = []
    prev = head_hash
    for index, (kind, data_json, timestamp) in enumerate(drafts, size):
        digest = new(preimage(index, timestamp, kind, data_json, prev)).digest()
        nodes = push_leaf(frontier, index, digest, new)
        rows.append((index, timestamp, kind, data_json, prev, digest, nodes))
        prev = digest
    return rows, frontier


def batch_nodes(
    hashes: Sequence[bytes], size: int, frontier: Frontier, new: Callable[[bytes], Any]
) -> tuple[list[bytes], Frontier]:
    """The Merkle nodes that appending leaves ``hashes`` after ``size`` leaves completes.

    The same bytes as :func:`push_leaf` leaf by leaf, computed a tree level at
    a time so that each level is a few C-level ``map`` calls: level ``L``
    gains the perfect subtrees ``j`` with ``size >> L <= j < (size + m) >> L``;
    the left child of the first is stored in the old ``frontier`` when
    ``size >> (L - 1)`` is odd; the subtree ``(L, j)`` is completed by leaf
    ``(j + 1) * 2**L - 1``, so each level's nodes go to every ``2**L``-th row.

    Returns
    -------
    nodes : list of bytes, one per leaf
        The concatenated hashes of the subtrees each leaf completes, lowest first.
    frontier : Frontier
        For ``size + m`` leaves.
    """
    digest = type(new(b"")).digest
    m = len(hashes)
    old = dict(zip(_set_bits(size), frontier, strict=True))
    nodes = [b""] * m
    top: Frontier = []  # the new frontier, smallest subtree first
    level_hashes = list(map(digest, map(new, map(_LEAF.__add__, hashes))))
    lo, hi, level = size, size + m, 0  # level_hashes: the new subtrees lo..hi-1 of this level
    while level_hashes:
        if lo & 1:  # the first new subtree's left sibling is in the old frontier
            level_hashes.insert(0, old[level])
            lo -= 1
        if hi & 1:
            top.append(level_hashes[-1])
        lefts = map(_NODE.__add__, level_hashes[0::2])
        level_hashes = list(map(digest, map(new, map(bytes.__add__, lefts, level_hashes[1::2]))))
        lo, hi, level = lo >> 1, hi >> 1, level + 1
        if level_hashes:
            rows = slice(((lo + 1) << level) - 1 - size, None, 1 << level)
            nodes[rows] = list(map(bytes.__add__, nodes[rows], level_hashes))
    # Nothing new from this level up: the old frontier's larger subtrees stay.
    top.reverse()
    return nodes, [old[kept] for kept in old if kept >= level] + top


def _set_bits(size: int) -> list[int]:
    """Levels of the frontier of ``size`` leaves: the set bits of ``size``, highest first."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def push_leaf(frontier: Frontier, index: int, digest: bytes, new: Callable[[bytes], Any]) -> bytes:
    """Add leaf ``index`` (entry hash ``digest``) to the RFC 6962 ``frontier`` in place.

    ``frontier`` must be that of the tree of ``index`` leaves. Returns the
    concatenated hashes of the perfect subtrees this leaf completes, lowest
    first (what the store keeps per row); the verifier recomputes the same
    bytes with this one function. Leaf ``index`` completes one subtree per
    trailing 1-bit of ``index``; half of all leaves complete none.
    """
    cur = new(b"\x00" + digest).digest()
    merges = (index ^ (index + 1)).bit_length() - 1
    if not merges:
        frontier.append(cur)
        return b""
    done = []
    for _ in range(merges):
        cur = new(b"\x01" + frontier.pop() + cur).digest()
        done.append(cur)
    frontier.append(cur)
    return b"".join(done)


def node_row(key: NodeKey) -> int:
    """Index of the row that stores perfect subtree ``key``."""
    level, j = key
    return ((j + 1) << level) - 1


def node_from_row(
    key: NodeKey, row_hash: bytes, row_nodes: bytes, algorithm: HashAlgorithm
) -> bytes:
    """Hash of subtree ``key`` from the (hash, nodes) columns of :func:`node_row`."""
    level = key[0]
    if level == 0:
        return algorithm.new()(b"\x00" + row_hash).digest()
    node = row_nodes[(level - 1) * 32 : level * 32]
    if len(node) != 32:
        raise LedgerCorrupted(
            f"entry {node_row(key)} lacks its level-{level} Merkle node; the store is damaged"
        )
    return node


class MemoryStore:
    """A store in process memory: same semantics as SQLite, nothing persisted."""

    def __init__(self, created: str, hash_algorithm: HashAlgorithm = HashAlgorithm.SHA3_256):
        self._rows: list[Row] = []
        self._frontier: Frontier = []
        self._lock = threading.Lock()
        self._created = created
        self._algorithm = hash_algorithm

    @property
    def hash_algorithm(self) -> HashAlgorithm:
        return self._algorithm

    @property
    def created(self) -> str:
        return self._created

    def size(self) -> int:
        return len(self._rows)

    def append(self, drafts: Sequence[Draft], *, if_size: int | None = None) -> list[Row] | None:
        with self._lock:
            size = len(self._rows)
            if if_size is not None and size != if_size:
                return None
            head = self._rows[-1][5] if self._rows else ZERO_HASH
            rows, frontier = seal_batch(drafts, size, head, self._frontier, self._algorithm)
            self._rows.extend(rows)
            self._frontier = frontier
            return rows

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        return iter(self._rows[start:stop])

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        out = []
        for key in keys:
            row = self._rows[node_row(key)]
            out.append(node_from_row(key, row[5], row[6], self._algorithm))
        return out

    def close(self) -> None:
        pass
