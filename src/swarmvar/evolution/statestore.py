"""Agents' states, stored chunked, checksummed, compressed and optionally encrypted.

Layout under ``<root>`` (default ``<home>/states``)::

    objects/<uuid>.pack   one file per stored state version: its chunks, back to back
    tmp/<uuid>.part       a pack being written

and in the lifecycle database the index: ``state_versions`` (one row per
version), ``state_chunks`` (offset, stored length, codec and SHA-256 of each
chunk as stored) and ``state_current`` (which version is current).

A write is atomic: the pack is written to ``tmp/`` and renamed into
``objects/``; the pack and the directory are flushed to disk (unless
``StateConfig.fsync`` is off); only then are the index rows inserted and the
current pointer moved in one SQLite transaction. A process killed at any point leaves
either the old index (the new pack is an orphan that :meth:`StateStore.gc`
removes) or the new one. A read checks every chunk's SHA-256 before using it
and names the first bad chunk in :class:`~swarmvar.errors.CorruptState`.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptState, InvalidParameter, PayloadTooLarge, VersionConflict
from .config import StateConfig
from .crypto import StateKey
from .db import Database
from .errors import InvalidConfig, KeyRequired, UnknownState, WrongKey
from .packs import (
    Chunk,
    Codec,
    decode,
    encode,
    fsync_dir,
    fsync_file,
    parallel_map,
    state_digest,
)

_PACK = re.compile(r"^[0-9a-f]{32}\.(pack|part)$")
#: Most state bytes one put/put_many call may hold: 1 GiB.
MAX_PUT_BYTES = 1 << 30
#: Versions are stored as SQLite/PostgreSQL 64-bit integers.
_MAX_VERSION = (1 << 63) - 1


def check_now(now: object, what: str = "now") -> None:
    """A clock reading ``now``: finite seconds since the epoch, else InvalidParameter."""
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise InvalidParameter(f"{what}={now!r} must be a finite number of seconds since the "
                               "epoch (e.g. time.time())")


def _check_version(version: object, what: str, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if (isinstance(version, bool) or not isinstance(version, int)
            or not low <= version <= _MAX_VERSION):
        raise UnknownState(f"{what} {version!r} is not a stored version (an int from {low} "
                           f"to 2**63 - 1)")


@dataclass(frozen=True)
class StateRef:
    """One stored state version. ``size`` is in bytes, ``created`` in epoch seconds."""

    agent_id: str
    version: int
    size: int
    chunks: int
    digest: str
    encrypted: bool
    created: float


@dataclass(frozen=True)
class _Chunk:
    idx: int
    offset: int
    stored: int
    raw: int
    codec: Codec
    sha256: bytes


class StateStore:
    """Versioned agent states (opaque ``bytes``) with verified reads.

    Parameters
    ----------
    db : Database
        The lifecycle database holding the index.
    root : Path, optional
        Directory for pack files; defaults to ``<home>/states`` (required for
        an in-memory database).
    config : StateConfig
        Chunk size, compression, cache size, fsync.
    key : StateKey, optional
        Encrypt new states with AES-256-GCM and decrypt encrypted ones.
    """

    def __init__(self, db: Database, root: str | Path | None = None,
                 config: StateConfig | None = None, key: StateKey | None = None) -> None:
        if root is None and db.home is not None:
            root = db.home / "states"
        self.db = db
        self._root = None if root is None else Path(root)
        self.config = config or StateConfig()
        self.key = key
        if self._root is not None:
            try:
                (self._root / "objects").mkdir(parents=True, exist_ok=True)
                (self._root / "tmp").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidConfig(f"cannot use {self._root} for state packs: {exc}") from None
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The pack folder; an in-memory or server database without one can only
        read and prune the index (InvalidConfig on reading or writing states)."""
        if self._root is None:
            raise InvalidConfig("an in-memory or PostgreSQL database needs an explicit state "
                                "root directory for state packs (root=... / state_root=...)")
        return self._root

    # --- writing -------------------------------------------------------------

    def put(self, agent_id: str, data: bytes, *, now: float,
            expected_version: int | None = None) -> StateRef:
        """Store a new version of ``agent_id``'s state and make it current.

        Parameters
        ----------
        data : bytes
            The agent's ``state()``; any length, including 0.
        now : float
            Creation time, seconds since the epoch.
        expected_version : int, optional
            If given, the write fails with ``VersionConflict`` unless this is
            the current version (0 for "no state yet").
        """
        expected = None if expected_version is None else {agent_id: expected_version}
        return self.put_many({agent_id: data}, now=now, expected_versions=expected)[0]

    def put_many(self, states: Mapping[str, bytes], *, now: float,
                 expected_versions: Mapping[str, int] | None = None) -> list[StateRef]:
        """Store new states of several agents in one atomic step (e.g. one beat's).

        All packs are written and flushed together (concurrent flushes share
        the filesystem's journal commits) and then one transaction makes every
        new version current: all agents move, or none.

        Raises
        ------
        VersionConflict
            If an agent's current version is not its ``expected_versions`` entry.
        """
        check_now(now)
        self.root  # noqa: B018 - raises InvalidConfig when there is no pack folder
        if not isinstance(states, Mapping):
            raise CorruptState(f"states must map agent ids to bytes, not {type(states).__name__}")
        for agent_id, version in (expected_versions or {}).items():
            _check_version(version, f"expected version of {agent_id!r}", allow_zero=True)
        total = 0
        items = []
        for agent_id, data in states.items():
            if not isinstance(agent_id, str) or not agent_id:
                raise UnknownState(f"agent id must be non-empty text, not {agent_id!r}")
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise CorruptState(f"state of {agent_id} is {type(data).__name__}, not bytes")
            total += len(data)
            if total > MAX_PUT_BYTES:
                raise PayloadTooLarge(
                    f"states of {total:,} bytes in one call, over the limit of "
                    f"{MAX_PUT_BYTES:,}; store them in several calls")
            items.append((agent_id, bytes(data), uuid.uuid4().hex))
        written: list[str] = []
        try:
            encoded = []
            for agent_id, data, pack in items:
                chunks, blobs = encode(data, agent_id, pack, self.config, self.key)
                self._write_pack(pack, blobs)
                written.append(pack)
                encoded.append((agent_id, data, pack, chunks))
            if self.config.fsync:
                parallel_map(lambda p: fsync_file(self._pack_path(p)), written, workers=8)
                fsync_dir(self.root / "objects")
            refs = self._commit(encoded, now, expected_versions or {})
        except BaseException:
            for pack in written:
                self._pack_path(pack).unlink(missing_ok=True)
            raise
        for (agent_id, data, _, _), ref in zip(encoded, refs, strict=True):
            self._remember((agent_id, ref.version), data)
        return refs

    def _commit(self, encoded: list[tuple[str, bytes, str, list[Chunk]]], now: float,
                expected: Mapping[str, int]) -> list[StateRef]:
        key_id = self.key.key_id if self.key else None
        refs = []
        with self.db.transaction() as conn:
            for agent_id, data, pack, chunks in encoded:
                row = conn.execute("SELECT version FROM state_current WHERE agent_id=?",
                                   (agent_id,)).fetchone()
                current = int(row[0]) if row else 0
                if agent_id in expected and expected[agent_id] != current:
                    raise VersionConflict(f"state of {agent_id} is at version {current}, "
                                          f"not {expected[agent_id]}")
                top = conn.execute("SELECT MAX(version) FROM state_versions WHERE agent_id=?",
                                   (agent_id,)).fetchone()[0]
                version = int(top or 0) + 1
                digest = state_digest(len(data), chunks)
                conn.execute("INSERT INTO state_versions VALUES (?,?,?,?,?,?,?,?)",
                             (agent_id, version, pack, len(data), self.config.chunk_bytes,
                              digest, key_id, now))
                conn.executemany(
                    "INSERT INTO state_chunks VALUES (?,?,?,?,?,?,?,?)",
                    [(agent_id, version, c.idx, c.offset, c.stored, c.raw, int(c.codec),
                      c.sha256) for c in chunks])
                conn.execute("INSERT INTO state_current VALUES (?,?) ON CONFLICT(agent_id) "
                             "DO UPDATE SET version=excluded.version", (agent_id, version))
                refs.append(StateRef(agent_id, version, len(data), len(chunks), digest,
                                     key_id is not None, now))
        return refs

    def _write_pack(self, pack: str, blobs: Iterable[bytes | memoryview]) -> None:
        tmp = self.root / "tmp" / f"{pack}.part"
        with open(tmp, "wb") as fh:
            for blob in blobs:
                fh.write(blob)
        # Flushed (with the directory) by put_many before the index commit;
        # until then no reader can see the pack.
        os.replace(tmp, self._pack_path(pack))

    # --- reading -------------------------------------------------------------

    def ref(self, agent_id: str, version: int | None = None) -> StateRef:
        """The index entry of a version (the current one by default)."""
        if not isinstance(agent_id, str):
            raise UnknownState(f"agent id must be text, not {type(agent_id).__name__}")
        if version is not None:
            _check_version(version, "state version")
        if version is None:
            row = self.db.read_one("SELECT version FROM state_current WHERE agent_id=?",
                                   (agent_id,))
            if row is None:
                raise UnknownState(f"no stored state for agent {agent_id!r}")
            version = int(row[0])
        row = self.db.read_one(
            "SELECT size, digest, key_id, created, (SELECT COUNT(*) FROM state_chunks c WHERE "
            "c.agent_id=v.agent_id AND c.version=v.version) FROM state_versions v "
            "WHERE agent_id=? AND version=?", (agent_id, version))
        if row is None:
            raise UnknownState(f"agent {agent_id!r} has no state version {version}")
        size, digest, key_id, created, n = row
        return StateRef(agent_id, version, int(size), int(n), str(digest),
                        key_id is not None, float(created))

    def versions(self, agent_id: str) -> list[StateRef]:
        """Every stored version of an agent's state, oldest first."""
        rows = self.db.read("SELECT version FROM state_versions WHERE agent_id=? ORDER BY version",
                            (agent_id,))
        return [self.ref(agent_id, int(r[0])) for r in rows]

    def get(self, agent_id: str, version: int | None = None, *, cached: bool = True) -> bytes:
        """The state bytes, every chunk verified (``CorruptState`` names a bad one).

        A state found in the in-memory cache was verified when it was read or
        written; pass ``cached=False`` to read and verify it from disk again.
        """
        ref = self.ref(agent_id, version)
        if cached:
            with self._cache_lock:
                hit = self._cache.get((agent_id, ref.version))
                if hit is not None:
                    self._cache.move_to_end((agent_id, ref.version))
                    return hit
        row = self.db.read_one("SELECT pack, key_id FROM state_versions WHERE agent_id=? "
                               "AND version=?", (agent_id, ref.version))
        assert row is not None
        pack, key_id = str(row[0]), row[1]
        where = f"state of agent {agent_id!r} version {ref.version}"
        if key_id is not None:
            if self.key is None:
                raise KeyRequired(f"{where} is encrypted (key id {key_id}); give the key via "
                                  f"$SWARMVAR_STATE_KEY or a key file")
            if key_id != self.key.key_id:
                raise WrongKey(f"{where} was encrypted with key id {key_id}, but the key "
                               f"given has id {self.key.key_id}; use the key it was written with")
        try:
            chunks = [Chunk(int(i), int(o), int(s), int(r), Codec(int(c)), bytes(h))
                      for i, o, s, r, c, h in self.db.read(
                          "SELECT idx, offset, stored, raw, codec, sha256 FROM state_chunks "
                          "WHERE agent_id=? AND version=? ORDER BY idx", (agent_id, ref.version))]
        except (ValueError, TypeError) as exc:
            raise CorruptState(f"{where}: its chunk index is damaged ({exc}); e.g. an unknown "
                               "codec - restore it from a rollback point") from None
        data = decode(self._pack_path(pack), agent_id, pack, chunks, where,
                      self.key if key_id is not None else None)
        if len(data) != ref.size:
            raise CorruptState(f"{where} decodes to {len(data)} bytes, index says {ref.size}")
        self._remember((agent_id, ref.version), data)
        return data

    # --- housekeeping --------------------------------------------------------

    def prune(self, agent_id: str, keep: int, protected: Iterable[int] = ()) -> list[int]:
        """Drop all but the newest ``keep`` versions (never the current or ``protected``).

        Returns the versions dropped; their pack files go at the next :meth:`gc`.
        ``keep`` may be a numpy integer (``np.int64(3)``).

        Raises
        ------
        InvalidParameter
            ``keep`` not a whole number >= 1 (true/false and floats are not).
        UnknownState
            A ``protected`` version that is not a version number.
        """
        if isinstance(keep, bool) or not isinstance(keep, numbers.Integral) or keep < 1:
            raise InvalidParameter(f"keep={keep!r}: keep at least 1 version (an int >= 1)")
        keep = int(keep)
        spare = set(protected)
        for v in spare:
            _check_version(v, "protected version")
        with self.db.transaction() as conn:
            cur = conn.execute("SELECT version FROM state_current WHERE agent_id=?",
                               (agent_id,)).fetchone()
            if cur:
                spare.add(int(cur[0]))
            rows = conn.execute("SELECT version FROM state_versions WHERE agent_id=? "
                                "ORDER BY version DESC", (agent_id,)).fetchall()
            drop = [int(v) for (v,) in rows[keep:] if int(v) not in spare]
            for v in drop:
                conn.execute("DELETE FROM state_chunks WHERE agent_id=? AND version=?",
                             (agent_id, v))
                conn.execute("DELETE FROM state_versions WHERE agent_id=? AND version=?",
                             (agent_id, v))
        with self._cache_lock:
            for v in drop:
                old = self._cache.pop((agent_id, v), None)
                self._cached_bytes -= len(old) if old is not None else 0
        return drop

    def gc(self, older_than: float) -> int:
        """Delete pack files no index row refers to, last modified before ``older_than``.

        The age guard spares packs of writes still in flight. Returns the count.
        """
        check_now(older_than, "older_than")
        live = {str(r[0]) for r in self.db.read("SELECT pack FROM state_versions")}
        removed = 0
        for folder in (self.root / "objects", self.root / "tmp"):
            for path in folder.iterdir():
                if (_PACK.match(path.name) and path.stem not in live
                        and path.stat().st_mtime < older_than):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def _pack_path(self, pack: str) -> Path:
        return self.root / "objects" / f"{pack}.pack"

    def _remember(self, key: tuple[str, int], data: bytes) -> None:
        limit = self.config.cache_bytes
        if len(data) > limit:
            return
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > limit:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= len(old)
