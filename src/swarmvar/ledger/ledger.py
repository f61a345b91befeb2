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
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice, repeat
from pathlib import Path
from types import TracebackType
from typing import Any, overload

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..canonical import Canonical
from ..errors import (
    EntryNotFound,
    InvalidEntry,
    InvalidParameter,
    InvalidProof,
    LedgerCorrupted,
    LedgerUnavailable,
    PayloadTooLarge,
    SwarmVarError,
)
from .damage import DamageMemo
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
from .sqlite import SQLiteStore, UnreadableEntry, at_target
from .store import Draft, Durability, LedgerStore, MemoryStore
from .verify import Verification, default_processes, verify_rows, verify_sqlite

DEFAULT_HOME = Path(".swarmvar")
LEDGER_FILE = "ledger.sqlite"
KEY_FILE = "ledger.key"
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
#: Kind (an EntryKind or its value; they hash alike) -> stored value, for appends.
_APPENDABLE = {k.value: k.value for k in EntryKind if k is not EntryKind.GENESIS}
#: Most entries one call may append (``add_entries``).
MAX_BATCH_ENTRIES = 1_000_000
#: Most bytes of canonical entry data one call may append: 256 MiB.
MAX_BATCH_BYTES = 256 << 20
#: URL schemes that name a PostgreSQL ledger (``postgresql://user@host/db``).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """True if ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


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
        A new ledger is only created where no file exists, whole (built
        beside it and linked into place). Whatever ``create`` says, a file
        that is not a whole ledger (0 bytes, another application's database,
        no ledger tables, metadata or genesis entry: truncated or damaged)
        raises LedgerCorrupted and nothing is written to it, so a damaged
        ledger is reported, never repaired or silently restarted. With
        ``create`` (a writer), an existing SQLite file is also checked
        with ``PRAGMA quick_check`` (:meth:`damage`) and refused if damaged.
    damage_memo : DamageMemo, optional
        Where :meth:`damage` answers are memoised per on-disk state of a
        SQLite ledger (default: the process's, shared by every ledger opened
        in it, so an unchanged file is checked once).
    check_timeout : float, optional
        Seconds :meth:`damage` waits for another connection's lock before
        raising ``sqlite3.OperationalError`` (default: the store's 60 s). A
        loop that must not stall (the mesh node's) gives a short one.

    ``home_or_path`` may also be a ``postgresql://`` URL: the ledger then
    lives in that database (tables ``ledger_meta`` and ``ledger_entries``),
    and heads are signed with ``signing_key`` (there is no key file).

    Raises
    ------
    LedgerNotFound
        No ledger there and ``create`` is False, or its folder cannot be made.
    LedgerCorrupted
        The file is not a whole ledger, (a writer) SQLite finds it damaged, or its file
        or home is gone or closed to this process.
    LedgerUnavailable
        Opening it met a lock held past the busy timeout or no file descriptor left.
    LedgerUnwritable
        Creating, opening or (later) reading or appending met its disk full, a read-only
        file (or transaction) or an I/O error: named, nothing written, not damage.
    LedgerUnreachable
        (A PostgreSQL URL) its server cannot be reached now, or the connection broke, on
        opening or (later) on a read or an append: nothing written (unless ``landed``), not
        damage; retry.
    LedgerFailed
        (A PostgreSQL URL) any other database error that is not damage (a lock or
        statement timeout, a refused privilege, ...), on opening or later: rolled back,
        the ledger said neither damaged nor intact.
    InvalidParameter
        (A PostgreSQL URL) the URL is malformed, its port or ``connect_timeout`` is not a
        number (its text is not echoed).
    LedgerClosed
        (A PostgreSQL URL) a call after :meth:`close`: the store never connects again.
    """

    path: Path | None
    _check_timeout: float | None = None

    def __init__(
        self,
        home_or_path: str | os.PathLike[str] = DEFAULT_HOME,
        *,
        hash_algorithm: HashAlgorithm | None = None,
        durability: Durability = Durability.PROCESS,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] = _utc_now,
        create: bool = True,
        damage_memo: DamageMemo | None = None,
        check_timeout: float | None = None,
    ):
        self._clock = clock
        self._key = signing_key
        self._check_timeout = check_timeout
        now = format_timestamp(clock())
        if is_postgres_url(home_or_path):
            from .postgres import PostgresStore  # psycopg only when asked for

            self.path = None
            store: LedgerStore = PostgresStore(
                str(home_or_path), now, hash_algorithm, durability, create=create
            )
            self._init(store, now, create)
            return
        path = ledger_path(home_or_path)
        existed = path.exists()
        if not existed:
            if not create:
                raise LedgerNotFound(f"no ledger at {path}; record something first or check --home")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerNotFound(
                    f"cannot make the ledger's folder {path.parent}: {exc}"
                ) from None
            _create_sqlite(path, now, hash_algorithm, durability)
        elif path.is_dir():
            raise LedgerNotFound(f"{path} is a directory, not a ledger file")
        self.path = path
        # a ledger is only ever created whole (above), so an existing file without
        # tables, metadata or genesis entry is a damaged one: never filled in again
        store = SQLiteStore(
            path, now, hash_algorithm, durability, create=False, damage_memo=damage_memo
        )
        self._init(store, now, False)
        if create and existed:  # about to append: refuse a file SQLite finds damaged
            try:
                self.refuse_damage("nothing was appended")
            except BaseException:  # damaged, or not checkable (sqlite3.OperationalError)
                self.close()
                raise

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

    def _init(self, store: LedgerStore, genesis_time: str | None, create: bool = True) -> None:
        self._store = store
        self.hash_algorithm = store.hash_algorithm
        try:
            empty = store.size() == 0
            if empty and not create:
                where = "" if self.path is None else f" at {self.path}"
                raise LedgerCorrupted(
                    f"the ledger{where} is empty: it has no entries, not even its genesis "
                    "entry (damaged or truncated); nothing was changed. To start a new "
                    "ledger, move the file away"
                )
            if empty:  # compare-and-append: only one process writes genesis
                genesis = canonical_data(genesis_data(self.hash_algorithm))
                stamp = genesis_time or self._now()
                store.append([(EntryKind.GENESIS.value, genesis, stamp)], if_size=0)
        except BaseException:
            store.close()
            raise

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

    @overload
    def add_entry(
        self, kind: EntryKind, data: Mapping[str, Any] | Canonical, *,
        timestamp: datetime | None = None
    ) -> Entry: ...

    @overload
    def add_entry(
        self, kind: EntryKind, data: Mapping[str, Any] | Canonical, *,
        timestamp: datetime | None = None, if_size: int
    ) -> Entry | None: ...

    def add_entry(
        self, kind: EntryKind, data: Mapping[str, Any] | Canonical, *,
        timestamp: datetime | None = None, if_size: int | None = None
    ) -> Entry | None:
        """Append one entry and return it (with its index and hash).

        With ``if_size`` (compare-and-append), append it only if the ledger holds
        exactly that many entries, at index ``if_size``; else append nothing and
        return None (another writer appended first: read the size again and retry).

        Raises
        ------
        InvalidEntry
            Unknown or genesis kind; data not a JSON object, not canonical
            JSON (NaN, inf, bytes, objects) or over 1 MiB. Nothing is written.
        InvalidParameter
            ``if_size`` is not an int of at least 1 (the genesis is always there).
        """
        if if_size is not None and (isinstance(if_size, bool) or not isinstance(if_size, int)
                                    or if_size < 1):
            raise InvalidParameter(f"if_size must be an int of at least 1 (a ledger's size), "
                                   f"not {if_size!r:.40}")
        draft = self._draft(kind, data, self._stamp(timestamp))
        rows = self._store.append([draft], if_size=if_size)
        if rows is None:
            assert if_size is not None
            return None
        return make_entry(*rows[0][:6])

    def add_entries(
        self,
        batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]],
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
        cls, batch: Iterable[tuple[EntryKind, Mapping[str, Any] | Canonical]], timestamp: str
    ) -> list[Draft]:
        """Drafts of a batch, checked together; on any error, one by one (same error).

        Raises PayloadTooLarge past MAX_BATCH_ENTRIES entries or MAX_BATCH_BYTES
        bytes of data (nothing is written).
        """
        if isinstance(batch, (str, bytes, Mapping)) or not isinstance(batch, Iterable):
            raise InvalidEntry(
                f"a batch is an iterable of (kind, data) pairs, not {type(batch).__name__}"
            )
        if isinstance(batch, list):
            items = batch
        else:
            items = list(islice(batch, MAX_BATCH_ENTRIES + 1))
        if len(items) > MAX_BATCH_ENTRIES:
            raise PayloadTooLarge(
                f"a batch of more than {MAX_BATCH_ENTRIES:,} entries; append it in smaller batches"
            )
        try:
            kinds = [_APPENDABLE[kind] for kind, _ in items]
            texts = canonical_datas([data for _, data in items])
        except (InvalidEntry, KeyError, TypeError, ValueError):
            drafts: list[Draft] = []
            for item in items:
                if not isinstance(item, tuple) or len(item) != 2:
                    raise InvalidEntry(
                        f"batch item {item!r:.80} is not a (kind, data) pair"
                    ) from None
                drafts.append(cls._draft(item[0], item[1], timestamp))
            kinds, texts = [d[0] for d in drafts], [d[1] for d in drafts]
        total = sum(map(len, texts))
        if total > MAX_BATCH_BYTES:
            raise PayloadTooLarge(
                f"a batch of {total:,} bytes of entry data, over the limit of "
                f"{MAX_BATCH_BYTES:,} bytes per call; append it in smaller batches"
            )
        return list(zip(kinds, texts, repeat(timestamp), strict=False))

    @staticmethod
    def _draft(kind: EntryKind, data: Mapping[str, Any] | Canonical, timestamp: str) -> Draft:
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
        """Entry ``index`` (negative counts from the end).

        Raises
        ------
        EntryNotFound
            If ``index`` is not an int or is outside the ledger (also an IndexError).
        """
        _check_int(index, "entry index")
        size = self.size
        i = index + size if index < 0 else index
        if not 0 <= i < size:
            raise EntryNotFound(f"no entry {index}: the ledger has {size} entries (0..{size - 1})")
        for row in self._store.rows(i, i + 1):
            return make_entry(*row[:6])
        raise LedgerCorrupted(f"entry {i} is missing from the store; run `swarmvar ledger verify`")

    def holds(self, index: int, kind: EntryKind | str, text: str) -> bool:
        """Whether entry ``index`` is of ``kind`` with canonical data ``text``
        (:func:`~swarmvar.ledger.entry.canonical_data`): where an append that may have
        landed (:func:`~swarmvar.errors.may_have_landed`) was tried with compare-and-append
        (``if_size=index``), whether it did. An append still committing is waited for
        first, so "no" is a fact: a store that has ``holds`` itself (PostgreSQL: the
        size read under ``LOCK TABLE ... IN SHARE MODE``, which waits for the append's
        lock) answers; SQLite and memory stores are read as they are (an append's
        transaction there ends before its call returns or raises).

        Raises
        ------
        EntryNotFound
            ``index`` is not an int or is negative.
        SwarmVarError
            The ledger cannot be read now (the store's error; a lock wait past its
            timeout): whether the entry is there is not known.
        """
        _check_int(index, "entry index")
        if index < 0:
            raise EntryNotFound(f"no entry {index}: a compare-and-append's index is >= 0")
        wanted = EntryKind(kind).value
        own = getattr(self._store, "holds", None)
        if own is not None:
            return bool(own(index, wanted, text))
        if self._store.size() <= index:
            return False
        for row in self._store.rows(index, index + 1):
            return (row[2], row[3]) == (wanted, text)
        raise LedgerCorrupted(f"entry {index} is missing from the store; "
                              "run `swarmvar ledger verify`")

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries with ``start <= index < stop``, in order (EntryNotFound for non-ints)."""
        _check_int(start, "start")
        if stop is not None:
            _check_int(stop, "stop")
        if start < 0 or (stop is not None and stop < 0):
            raise EntryNotFound(f"entries({start}, {stop}): indices start at 0")
        return self._entries(start, stop)

    def _entries(self, start: int, stop: int | None) -> Iterator[Entry]:
        for row in self._store.rows(start, stop):
            yield make_entry(*row[:6])

    # --- Merkle tree -----------------------------------------------------------

    def _size(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidProof(f"tree size must be an int, not {type(size).__name__}")
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
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidProof(f"entry index must be an int, not {type(index).__name__}")
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
        size1 = self._size(size1)
        if size1 > size2:
            raise InvalidProof(
                f"a consistency proof goes from an earlier size to a later one: the first "
                f"size must be <= the second, got {size1} and {size2} (swap them?)"
            )
        if size1 == 0:
            raise InvalidProof(
                f"a consistency proof needs 0 < size1 <= size2, got 0 and {size2} "
                "(every size is consistent with the empty tree; there is nothing to prove)"
            )
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

        A SQLite ledger's ``PRAGMA quick_check`` runs first, now: never a memoised
        or rate-capped answer (:meth:`damage`'s); its answer is kept in the damage
        memo, so damage it finds makes the next :meth:`signed_head` in this process
        refuse at once. A lock held past ``check_timeout``
        (or another error that says nothing about damage) is raised as
        ``sqlite3.OperationalError``, as :meth:`damage` raises it.
        """
        store = self._store
        try:
            size = store.size()
            # asked for a verification: check now, never a memoised or capped answer
            damage = (store.check_now(self._check_timeout)
                      if isinstance(store, SQLiteStore) else None)
            if damage is not None:
                return Verification(False, 0, None, damage)
            if isinstance(store, SQLiteStore):
                if processes is None:
                    processes = default_processes(size)
                if processes > 1:
                    result = verify_sqlite(store, processes)
                else:
                    result = verify_rows(store.rows(0, size), self.hash_algorithm)
            else:
                result = verify_rows(store.rows(0, size), self.hash_algorithm)
        except UnreadableEntry as exc:  # the entries before it verified
            return Verification(False, exc.index, exc.index, exc.reason)
        except LedgerCorrupted as exc:
            return Verification(False, 0, None, str(exc))
        if result.ok and result.size != size:
            # the rows read back are fewer than the ledger's size says: a damaged
            # page hid some (seen with single flipped bits)
            return Verification(
                False, result.size, result.size,
                f"the ledger holds {size} entries but only {result.size} could be read and "
                "verified; the file is damaged",
            )
        if result.ok and hasattr(store, "row_count"):
            try:
                count = store.row_count(below=size)
            except LedgerCorrupted as exc:
                return Verification(False, 0, None, str(exc))
            if count != size:
                return Verification(
                    False, size, None,
                    f"the ledger stores {count} entry rows but indices 0..{size - 1}: "
                    "rows outside the chain were added; the file is damaged",
                )
        if result.ok and result.size == 0:
            return Verification(False, 0, None, "the ledger is empty (no genesis entry)")
        return result

    def damage(self) -> str | None:
        """What the store's own integrity check finds wrong, or None if nothing.

        For a SQLite ledger, ``PRAGMA quick_check`` (page structure, record
        formats) on a fresh connection: about 0.3 s per 10^6 entries (see the
        ledger docs), run once per on-disk state of the file and its WAL; a
        check of an unchanged file costs two ``stat`` calls. A file that keeps
        changing is checked at most once per max(5 s, 20 x the last check's
        duration); sooner, the last answer stands (damage is refused within
        that bound, see :mod:`swarmvar.ledger.damage`). It does not read
        the entries' bytes as hashed data: changed bytes inside an entry are
        found by :meth:`verify_chain` alone. Stores without such a check
        (PostgreSQL, memory) return None.

        Raises ``sqlite3.OperationalError`` (nothing memoised) for an error
        that says nothing about damage: a lock held past ``check_timeout``,
        no file descriptor left.
        """
        store = self._store
        if not isinstance(store, SQLiteStore):
            return None
        return store.damage(self._check_timeout)

    def refuse_damage(self, not_done: str) -> None:
        """Raise :class:`LedgerCorrupted` if :meth:`damage` finds any, saying ``not_done``
        (e.g. ``"no head was signed over it"``) and how to recover."""
        damage = self.damage()
        if damage is not None:
            raise LedgerCorrupted(
                f"{damage}; {not_done}. Run `swarmvar ledger verify`, and restore the ledger "
                "from a backup or an export (or move it away to start a new one)"
            )

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
        """Sign the current (size, root, time) with the ledger's Ed25519 key.

        Raises
        ------
        LedgerCorrupted
            If :meth:`damage` finds the file damaged (a signature would vouch
            for a broken record); nothing is signed. The check costs two
            ``stat`` calls when the file is unchanged since the last one, a
            ``quick_check`` when it changed (at most one per max(5 s, 20 x its
            duration) per file: damage is refused within that bound).
        sqlite3.OperationalError
            If the check cannot run now (a lock held past ``check_timeout``,
            no file descriptor left); nothing is signed, nothing memoised.
        """
        self.refuse_damage("no head was signed over it")
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


#: Seconds after which a half-built ledger's temporary file (``.ledger.sqlite.new-*``, left
#: only by a creator killed mid-creation) is removed by the next creator.
STALE_CREATION_S = 3600.0


def _create_sqlite(
    path: Path, now: str, algorithm: HashAlgorithm | None, durability: Durability
) -> None:
    """Create a whole new ledger file at ``path`` (tables, metadata, genesis entry).

    It is built under a temporary name beside ``path`` and linked into place
    (no-clobber), so ``path`` never exists half-made: an existing file that
    is not a whole ledger is damage, not a creation in progress. If another
    process created ``path`` meanwhile, its ledger is kept and ours dropped.
    """
    prefix = f".{path.name}.new-"
    for old in path.parent.glob(prefix + "*.tmp*"):  # left by creators killed long ago
        try:  # by age, not by pid: a shared home's pids may be another machine's
            if old.stat().st_mtime < time.time() - STALE_CREATION_S:
                old.unlink(missing_ok=True)
        except OSError:
            continue
    tmp = path.with_name(f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            store = SQLiteStore(tmp, now, algorithm, durability)
            try:
                genesis = canonical_data(genesis_data(store.hash_algorithm))
                store.append([(EntryKind.GENESIS.value, genesis, now)], if_size=0)
            finally:
                store.close()  # the last connection: SQLite folds the WAL into the file
        except (LedgerUnavailable, LedgerCorrupted) as exc:  # met on tmp: the ledger's
            raise at_target(exc, tmp, path) from None
        try:
            os.link(tmp, path)  # atomic, and never replaces an existing file
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise LedgerNotFound(f"cannot create the ledger {path}: {exc}") from None
        if durability is Durability.POWER:
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with suppress(OSError):  # EROFS even for a file not there: not the error to tell
                leftover.unlink(missing_ok=True)


def _check_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryNotFound(f"{what} must be an int, not {type(value).__name__} {value!r:.40}")
