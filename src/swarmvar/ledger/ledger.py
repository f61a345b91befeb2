"""The ledger API: append, read, prove, verify, sign.

Typical use::

    from swarmvar.ledger import Ledger, EntryKind

    with Ledger.open("./.swarmvar") as ledger:        # <home>/ledger.sqlite
        entry = ledger.add_entry(EntryKind.FORECAST, forecast.to_dict())
        proof = ledger.inclusion_proof(entry.index)
        head = ledger.signed_head()
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import InvalidEntry, InvalidParameter, InvalidProof, SwarmVarError
from .entry import (
    Entry,
    EntryKind,
    canonical_data,
    canonical_datas,
    format_timestamp,
    genesis_data,
    make_entry,
    parse_kind,
)
from .head import SignedHead, load_or_create_key, sign_head
from .merkle import (
    HashAlgorithm,
    consistency_ranges,
    empty_root,
    fold,
    frontier_keys,
    inclusion_ranges,
    perfect_cover,
)
from .proofs import ConsistencyProof, InclusionProof
from .sqlite import SQLiteStore
from .store import Draft, Durability, LedgerStore, MemoryStore
from .verify import Verification, default_processes, verify_rows, verify_sqlite

DEFAULT_HOME = Path(".swarmvar")
LEDGER_FILE = "ledger.sqlite"
KEY_FILE = "ledger.key"
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
#: Kind (an EntryKind or its value; they hash alike) -> stored value, for appends.
_APPENDABLE = {k.value: k.value for k in EntryKind if k is not EntryKind.GENESIS}


class LedgerNotFound(SwarmVarError, FileNotFoundError):
    """No ledger at the given path, and creating one was not asked for."""


@dataclass(frozen=True)
class Manifest:
    """What a ledger holds, in one glance."""

    size: int
    root: bytes
    head_hash: bytes
    hash_algorithm: HashAlgorithm
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "head_hash": self.head_hash.hex(),
            "hash_algorithm": self.hash_algorithm.value,
            "created": self.created,
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


def ledger_path(home_or_path: str | os.PathLike[str]) -> Path:
    """The database file: the path if it ends in .sqlite/.db, else ``<home>/ledger.sqlite``."""
    path = Path(home_or_path)
    return path if path.suffix in _FILE_SUFFIXES else path / LEDGER_FILE


class Ledger:
    """A tamper-evident, append-only record: SHA3-256 hash chain plus RFC 6962 Merkle tree.

    Parameters
    ----------
    home_or_path : path, default ``./.swarmvar``
        A data home (the ledger is ``<home>/ledger.sqlite``, the signing key
        ``<home>/ledger.key``) or a ``.sqlite``/``.db`` file path.
    hash_algorithm : HashAlgorithm, optional
        For a new ledger (default SHA3-256); an existing one keeps its own.
    durability : Durability
        ``PROCESS`` (default) survives killed processes; ``POWER`` also fsyncs
        every commit.
    signing_key : Ed25519PrivateKey, optional
        Signs tree heads; default: loaded from, or created in, the key file.
    clock : callable returning an aware datetime, optional
        Source of entry timestamps (default: the system clock in UTC).
    create : bool
        If False, raise LedgerNotFound instead of creating a missing ledger.
    """

    def __init__(
        self,
        home_or_path: str | os.PathLike[str] = DEFAULT_HOME,
        *,
        hash_algorithm: HashAlgorithm | None = None,
        durability: Durability = Durability.PROCESS,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
        create: bool = True,
    ):
        path = ledger_path(home_or_path)
        if not path.exists():
            if not create:
                raise LedgerNotFound(f"no ledger at {path}; record something first or check --home")
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path: Path | None = path
        self._clock = clock
        self._key = signing_key
        now = format_timestamp(clock())
        self._init(SQLiteStore(path, now, hash_algorithm, durability), now)

    @classmethod
    def open(cls, home: str | os.PathLike[str] = DEFAULT_HOME, **kwargs: Any) -> Ledger:
        """The ledger of a data home, ``<home>/ledger.sqlite`` (created if missing)."""
        return cls(home, **kwargs)

    @classmethod
    def in_memory(
        cls,
        *,
        hash_algorithm: HashAlgorithm = HashAlgorithm.SHA3_256,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> Ledger:
        """A ledger that lives in process memory (tests, dry runs)."""
        now = clock()
        return cls.from_store(
            MemoryStore(format_timestamp(now), hash_algorithm),
            signing_key=signing_key or Ed25519PrivateKey.generate(),
            clock=clock,
            genesis_time=now,
        )

    @classmethod
    def from_store(
        cls,
        store: LedgerStore,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
        genesis_time: datetime | None = None,
    ) -> Ledger:
        """A ledger over any :class:`LedgerStore` (a genesis entry is added if it is empty)."""
        self = cls.__new__(cls)
        self.path = None
        self._clock = clock
        self._key = signing_key
        self._init(store, None if genesis_time is None else format_timestamp(genesis_time))
        return self

    def _init(self, store: LedgerStore, genesis_time: str | None) -> None:
        self._store = store
        self.hash_algorithm = store.hash_algorithm
        if store.size() == 0:  # compare-and-append: only one process writes genesis
            genesis = canonical_data(genesis_data(self.hash_algorithm))
            stamp = genesis_time or self._now()
            store.append([(EntryKind.GENESIS.value, genesis, stamp)], if_size=0)

    # --- lifecycle --------------------------------------------------------

    @property
    def store(self) -> LedgerStore:
        return self._store

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        return self._store.size()

    @property
    def size(self) -> int:
        """Number of entries, genesis included."""
        return self._store.size()

    def _now(self) -> str:
        return format_timestamp(self._clock())

    # --- appending -----------------------------------------------------------

    def add_entry(
        self, kind: EntryKind, data: Mapping[str, Any], *, timestamp: datetime | None = None
    ) -> Entry:
        """Append one entry and return it (with its index and hash).

        Raises
        ------
        InvalidEntry
            Unknown or genesis kind; data not a JSON object, not canonical
            JSON (NaN, inf, bytes, objects) or over 1 MiB. Nothing is written.
        """
        draft = self._draft(kind, data, self._stamp(timestamp))
        rows = self._store.append([draft])
        assert rows is not None
        return make_entry(*rows[0][:6])

    def add_entries(
        self,
        batch: Iterable[tuple[EntryKind, Mapping[str, Any]]],
        *,
        timestamp: datetime | None = None,
    ) -> range:
        """Append a batch atomically (one transaction, one timestamp); return its indices.

        Raises
        ------
        InvalidEntry
            If any item is invalid; then nothing of the batch is written.
        """
        drafts = self._drafts(batch, self._stamp(timestamp))
        if not drafts:
            return range(self.size, self.size)
        rows = self._store.append(drafts)
        assert rows is not None
        return range(rows[0][0], rows[0][0] + len(rows))

    def record_action(self, action_type: str, details: Mapping[str, Any]) -> Entry:
        """Record an action taken (``{"type": action_type, "details": details}``)."""
        return self.add_entry(EntryKind.ACTION, {"type": action_type, "details": dict(details)})

    def record_pulse(self, pulse: Mapping[str, Any]) -> Entry:
        """Record one beat of the arbiter's pulse."""
        return self.add_entry(EntryKind.PULSE, pulse)

    def record_flow_result(self, flow: str, result: Mapping[str, Any]) -> Entry:
        """Record the result of a named flow (``{"flow": flow, "result": result}``)."""
        return self.add_entry(EntryKind.FLOW, {"flow": flow, "result": dict(result)})

    def _stamp(self, timestamp: datetime | None) -> str:
        return self._now() if timestamp is None else format_timestamp(timestamp)

    @classmethod
    def _drafts(
        cls, batch: Iterable[tuple[EntryKind, Mapping[str, Any]]], timestamp: str
    ) -> list[Draft]:
        """Drafts of a batch, checked together; on any error, one by one (same error)."""
        items = batch if isinstance(batch, list) else list(batch)
        try:
            kinds = [_APPENDABLE[kind] for kind, _ in items]
            texts = canonical_datas([data for _, data in items])
        except (InvalidEntry, KeyError, TypeError):
            return [cls._draft(kind, data, timestamp) for kind, data in items]
        return list(zip(kinds, texts, repeat(timestamp), strict=False))

    @staticmethod
    def _draft(kind: EntryKind, data: Mapping[str, Any], timestamp: str) -> Draft:
        try:
            value = _APPENDABLE[kind]
        except (KeyError, TypeError):  # genesis, or not a kind (parse_kind says why)
            value = parse_kind(kind).value
            if value not in _APPENDABLE:
                raise InvalidEntry(
                    "the genesis entry is written once, by the ledger itself"
                ) from None
        return (value, canonical_data(data), timestamp)

    # --- reading -------------------------------------------------------------

    def entry(self, index: int) -> Entry:
        """Entry ``index`` (negative counts from the end)."""
        size = self.size
        i = index + size if index < 0 else index
        if not 0 <= i < size:
            raise IndexError(f"no entry {index}: the ledger has {size} entries")
        for row in self._store.rows(i, i + 1):
            return make_entry(*row[:6])
        raise IndexError(f"entry {i} is missing from the store")

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries with ``start <= index < stop``, in order."""
        for row in self._store.rows(start, stop):
            yield make_entry(*row[:6])

    # --- Merkle tree -----------------------------------------------------------

    def _size(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InvalidProof(f"tree size {size} is outside 0..{current} (the ledger's size)")
        return size

    def compute_merkle_root(self, size: int | None = None) -> bytes:
        """Merkle root of the first ``size`` entries (default all); O(log n) reads."""
        size = self._size(size)
        if size == 0:
            return empty_root(self.hash_algorithm)
        return fold(self._store.node_hashes(frontier_keys(size)), self.hash_algorithm)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` entries (default all)."""
        size = self._size(size)
        covers = [perfect_cover(s, e) for s, e in inclusion_ranges(index, size)]
        roots = frontier_keys(size)
        keys = [k for cover in covers for k in cover] + roots
        hashes = self._store.node_hashes(keys)
        path, pos = self._fold_covers(covers, hashes)
        root = fold(hashes[pos:], self.hash_algorithm)
        entry_hash = self.entry(index).hash
        return InclusionProof(index, size, entry_hash, path, root, self.hash_algorithm)

    def consistency_proof(self, size1: int, size2: int | None = None) -> ConsistencyProof:
        """Proof that the first ``size1`` entries are a prefix of the first ``size2``."""
        size2 = self._size(size2)
        covers = [perfect_cover(s, e) for s, e in consistency_ranges(size1, size2)]
        keys = [k for cover in covers for k in cover]
        hashes = self._store.node_hashes(keys)
        path, _ = self._fold_covers(covers, hashes)
        return ConsistencyProof(
            size1,
            size2,
            path,
            self.compute_merkle_root(size1),
            self.compute_merkle_root(size2),
            self.hash_algorithm,
        )

    def _fold_covers(
        self, covers: list[list[tuple[int, int]]], hashes: list[bytes]
    ) -> tuple[tuple[bytes, ...], int]:
        path = []
        pos = 0
        for cover in covers:
            path.append(fold(hashes[pos : pos + len(cover)], self.hash_algorithm))
            pos += len(cover)
        return tuple(path), pos

    # --- verification and heads ------------------------------------------------

    def verify_chain(self, *, processes: int | None = None) -> Verification:
        """Recompute every hash, link and Merkle node; name the first bad entry.

        Parameters
        ----------
        processes : int, optional
            Split a SQLite ledger into this many index ranges verified at once,
            each in its own process (the outcome is the same). Default: one
            per CPU, at most 4, from 200,000 entries on; 1 below that.
        """
        store = self._store
        if isinstance(store, SQLiteStore):
            if processes is None:
                processes = default_processes(store.size())
            if processes > 1:
                return verify_sqlite(store, processes)
        return verify_rows(store.rows(0, None), self.hash_algorithm)

    def get_manifest(self) -> Manifest:
        """Size, root, head hash, hash algorithm and creation time."""
        size = self.size
        return Manifest(
            size,
            self.compute_merkle_root(size),
            self.entry(size - 1).hash,
            self.hash_algorithm,
            self._store.created,
        )

    def _signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            if self.path is None:
                raise InvalidParameter(
                    "this ledger has no key file; pass signing_key= to sign heads"
                )
            self._key = load_or_create_key(self.path.with_name(KEY_FILE))
        return self._key

    def signed_head(self) -> SignedHead:
        """Sign the current (size, root, time) with the ledger's Ed25519 key."""
        size = self.size
        root = self.compute_merkle_root(size)
        return sign_head(size, root, self._now(), self.hash_algorithm, self._signing_key())

    def check_head(self, head: SignedHead, trusted_key: bytes | None = None) -> Verification:
        """Does this ledger still extend an earlier signed head?

        Checks the head's signature, that the ledger has not shrunk below it,
        and a consistency proof from the head's size to the current size.
        Returns a failed :class:`Verification` naming the first entry the head
        covers that is missing or no longer consistent.
        """
        head.verify_signature(trusted_key)
        size = self.size
        if head.hash_algorithm is not self.hash_algorithm:
            return Verification(False, size, 0, "head and ledger use different hash algorithms")
        if size < head.size:
            return Verification(
                False,
                size,
                size,
                f"ledger has {size} entries but a signed head covers {head.size}: "
                f"entries {size}..{head.size - 1} were removed",
            )
        proof = self.consistency_proof(head.size, size)
        try:
            proof.verify(root1=head.root)
        except InvalidProof as exc:
            return Verification(
                False,
                size,
                None,
                f"ledger is not consistent with the head at size {head.size}: {exc}",
            )
        return Verification(True, size, None, None, proof.root2)
