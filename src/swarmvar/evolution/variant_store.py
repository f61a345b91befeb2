"""Where variants are kept: one narrow interface, an in-memory and a SQLite store.

Both stores enforce the same rules, checked by one shared test suite:
ids are unique, at most ``max_variants`` live variants (draft, canary,
active), a write carries the version it read (optimistic locking: a stale one
raises :class:`~swarmvar.errors.VersionConflict`), status moves follow
:data:`~swarmvar.evolution.variants.TRANSITIONS`, and promoting a variant
retires the previous active variant of the same agent class in the same
atomic step (one champion per agent class).
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..errors import CapacityExceeded, UnknownVariant, VersionConflict
from .db import Database
from .errors import InvalidTransition
from .variants import (
    LIVE,
    TRANSITIONS,
    CanaryProgress,
    Variant,
    VariantStatus,
    params_from_json,
)
from .versions import Version


class VariantStore(ABC):
    """Variants by id and by status, with optimistic locking."""

    def __init__(self, max_variants: int = 100) -> None:
        self.max_variants = max_variants

    @abstractmethod
    def add(self, variant: Variant) -> Variant:
        """Store a new variant (``CapacityExceeded`` past ``max_variants`` live ones)."""

    @abstractmethod
    def get(self, variant_id: str) -> Variant:
        """The stored variant (``UnknownVariant`` if there is none)."""

    @abstractmethod
    def list(self, status: VariantStatus | None = None) -> list[Variant]:
        """All variants (or those with ``status``), oldest first."""

    @abstractmethod
    def save(self, variant: Variant) -> Variant:
        """Write ``variant`` if the stored version is ``variant.version``; return it at +1."""

    @abstractmethod
    def _atomic(self) -> AbstractContextManager[object]:
        """A scope in which several reads and saves are all-or-nothing."""

    def promote(self, variant: Variant, now: float) -> Variant:
        """Make ``variant`` ACTIVE and retire the active one of its class, atomically.

        ``variant`` is the caller's copy (its version is checked, and other
        fields it changed, such as canary progress, are saved with it).
        """
        with self._atomic():
            self._check_write(self.get(variant.id), variant)
            promoted = variant.moved_to(VariantStatus.ACTIVE, now)
            for other in self.list(VariantStatus.ACTIVE):
                if other.agent_class == variant.agent_class and other.id != variant.id:
                    self.save(other.moved_to(VariantStatus.RETIRED, now))
            return self.save(promoted)

    def roll_back(self, variant: Variant, now: float) -> tuple[Variant, Variant | None]:
        """Mark ``variant`` ROLLED_BACK; if it was the champion, re-instate the last one.

        Returns the rolled-back variant and the re-instated one (or None).
        Atomic: both happen or neither.
        """
        with self._atomic():
            self._check_write(self.get(variant.id), variant)
            was_active = variant.status is VariantStatus.ACTIVE
            rolled = self.save(variant.moved_to(VariantStatus.ROLLED_BACK, now))
            if not was_active:
                return rolled, None
            retired = [v for v in self.list(VariantStatus.RETIRED)
                       if v.agent_class == variant.agent_class]
            if not retired:
                return rolled, None
            last = max(retired, key=lambda v: (v.updated, v.created, v.id))
            return rolled, self.save(last.moved_to(VariantStatus.ACTIVE, now))

    def _check_write(self, stored: Variant, new: Variant) -> None:
        if stored.version != new.version:
            raise VersionConflict(
                f"variant {new.id} changed since it was read (stored version {stored.version}, "
                f"yours {new.version}); read it again and retry"
            )
        if new.status != stored.status and new.status not in TRANSITIONS[stored.status]:
            raise InvalidTransition(
                f"variant {new.id} is {stored.status.value}; it cannot become {new.status.value}"
            )

    def _full(self, live: int) -> None:
        if live >= self.max_variants:
            raise CapacityExceeded(
                f"{live} live variants (draft, canary or active) reach max_variants="
                f"{self.max_variants}; retire or roll back one first"
            )


class MemoryVariantStore(VariantStore):
    """Variants in a dict, guarded by a lock (tests, single-process use)."""

    def __init__(self, max_variants: int = 100) -> None:
        super().__init__(max_variants)
        self._lock = threading.RLock()
        self._rows: dict[str, Variant] = {}

    def add(self, variant: Variant) -> Variant:
        with self._lock:
            if variant.id in self._rows:
                raise VersionConflict(f"variant {variant.id} already exists")
            self._full(sum(v.status in LIVE for v in self._rows.values()))
            self._rows[variant.id] = replace(variant, version=1)
            return self._rows[variant.id]

    def get(self, variant_id: str) -> Variant:
        try:
            return self._rows[variant_id]
        except KeyError:
            raise UnknownVariant(f"no variant with id {variant_id!r}") from None

    def list(self, status: VariantStatus | None = None) -> list[Variant]:
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda v: (v.created, v.id))
        return [v for v in rows if status is None or v.status is status]

    def save(self, variant: Variant) -> Variant:
        with self._lock:
            self._check_write(self.get(variant.id), variant)
            saved = replace(variant, version=variant.version + 1)
            self._rows[variant.id] = saved
            return saved

    def _atomic(self) -> AbstractContextManager[object]:
        return self._lock


class SqliteVariantStore(VariantStore):
    """Variants in the ``variants`` table of the lifecycle database."""

    def __init__(self, db: Database, max_variants: int = 100) -> None:
        super().__init__(max_variants)
        self.db = db
        # Decoded variants by id, reused while the stored version is unchanged:
        # a lookup then costs one indexed read of the version, not a JSON
        # decode. The version check keeps it correct across processes.
        self._decoded: dict[str, Variant] = {}

    def add(self, variant: Variant) -> Variant:
        stored = replace(variant, version=1)
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM variants WHERE id=?", (variant.id,)).fetchone():
                raise VersionConflict(f"variant {variant.id} already exists")
            live = conn.execute(
                "SELECT COUNT(*) FROM variants WHERE status IN (?,?,?)",
                tuple(s.value for s in sorted(LIVE, key=lambda s: s.value)),
            ).fetchone()[0]
            self._full(live)
            conn.execute("INSERT INTO variants VALUES (?,?,?,?,?,?,?,?)", _row(stored))
        return stored

    def get(self, variant_id: str) -> Variant:
        row = self.db.read_one("SELECT version FROM variants WHERE id=?", (variant_id,))
        if row is None:
            raise UnknownVariant(f"no variant with id {variant_id!r}")
        hit = self._decoded.get(variant_id)
        if hit is not None and hit.version == row[0]:
            return hit
        full = self.db.read_one(f"SELECT {_COLS} FROM variants WHERE id=?", (variant_id,))
        if full is None:  # deleted between the two reads
            raise UnknownVariant(f"no variant with id {variant_id!r}")
        variant = _variant(full)
        if len(self._decoded) >= 4 * self.max_variants:
            self._decoded.clear()
        self._decoded[variant_id] = variant
        return variant

    def list(self, status: VariantStatus | None = None) -> list[Variant]:
        if status is None:
            rows = self.db.read(f"SELECT {_COLS} FROM variants ORDER BY created, id")
        else:
            rows = self.db.read(
                f"SELECT {_COLS} FROM variants WHERE status=? ORDER BY created, id",
                (status.value,))
        return [_variant(r) for r in rows]

    def save(self, variant: Variant) -> Variant:
        with self.db.transaction() as conn:
            self._check_write(self.get(variant.id), variant)
            saved = replace(variant, version=variant.version + 1)
            cur = conn.execute(
                "UPDATE variants SET description=?, body=?, status=?, updated=?, version=? "
                "WHERE id=? AND version=?",
                (saved.description, saved.body().decode(), saved.status.value, saved.updated,
                 saved.version, saved.id, variant.version))
            if cur.rowcount != 1:  # pragma: no cover - guarded by BEGIN IMMEDIATE above
                raise VersionConflict(f"variant {variant.id} changed during the write")
        return saved

    def _atomic(self) -> AbstractContextManager[object]:
        return self.db.transaction()


_COLS = "id, agent_class, description, body, status, created, updated, version"


def _row(v: Variant) -> tuple[object, ...]:
    return (v.id, v.agent_class, v.description, v.body().decode(), v.status.value,
            v.created, v.updated, v.version)


def _variant(row: tuple[Any, ...]) -> Variant:
    vid, cls, desc, body, status, created, updated, version = row
    data = json.loads(str(body))
    canary = data.get("canary")
    return Variant(
        id=str(vid), agent_class=str(cls), description=str(desc),
        parameters=MappingProxyType(params_from_json(data["parameters"])),
        status=VariantStatus(status),
        created=float(created), updated=float(updated), version=int(version),
        requirements=MappingProxyType(
            {k: Version.parse(v) for k, v in data["requirements"].items()}),
        metadata=MappingProxyType(data["metadata"]),
        canary=CanaryProgress.from_json(canary) if canary else None,
    )
