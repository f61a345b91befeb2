"""Which variant each agent runs, and rollback points that restore it atomically.

A rollback point snapshots the ``assignments`` table (agent -> variant) and
the current state version of every agent. :meth:`RollbackPoints.rollback`
restores both inside one SQLite transaction: every agent's assignment and
state pointer change together or not at all. State versions a point refers
to are protected from :meth:`~swarmvar.evolution.statestore.StateStore.prune`
(see :meth:`RollbackPoints.protected_versions`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical_json
from ..errors import CapacityExceeded, UnknownAgent
from .config import RollbackConfig
from .db import Database
from .errors import UnknownRollbackPoint, UnknownState


@dataclass(frozen=True)
class RollbackPoint:
    """A snapshot: ``assignments`` agent -> variant id, ``states`` agent -> state version."""

    id: str
    label: str
    created: float
    assignments: Mapping[str, str]
    states: Mapping[str, int]


class Assignments:
    """The ``assignments`` table: which variant each agent runs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def assign(self, agent_id: str, variant_id: str) -> None:
        """Set (or change) the variant an agent runs."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO assignments VALUES (?,?) ON CONFLICT(agent_id) DO UPDATE "
                         "SET variant_id=excluded.variant_id", (agent_id, variant_id))

    def get(self, agent_id: str) -> str:
        """The variant id an agent runs (``UnknownAgent`` if it has none)."""
        row = self.db.read_one("SELECT variant_id FROM assignments WHERE agent_id=?",
                               (agent_id,))
        if row is None:
            raise UnknownAgent(f"agent {agent_id!r} has no variant assigned")
        return str(row[0])

    def all(self) -> dict[str, str]:
        return {str(a): str(v) for a, v in self.db.read("SELECT agent_id, variant_id FROM "
                                                        "assignments ORDER BY agent_id")}


class RollbackPoints:
    """At most ``max_points`` rollback points, each kept ``retention_s``."""

    def __init__(self, db: Database, config: RollbackConfig | None = None) -> None:
        self.db = db
        self.config = config or RollbackConfig()

    def create(self, label: str, now: float, point_id: str | None = None) -> RollbackPoint:
        """Snapshot the current assignments and state versions.

        Expired points are dropped first; ``CapacityExceeded`` if
        ``max_points`` unexpired points remain (delete one first).
        """
        pid = point_id or str(uuid.uuid4())
        with self.db.transaction() as conn:
            self._expire(now)
            n = conn.execute("SELECT COUNT(*) FROM rollback_points").fetchone()[0]
            if n >= self.config.max_points:
                raise CapacityExceeded(
                    f"{n} rollback points reach max_points={self.config.max_points}; "
                    "delete old ones (or wait for the retention to expire them)")
            assign = {str(a): str(v) for a, v in
                      conn.execute("SELECT agent_id, variant_id FROM assignments")}
            states = {str(a): int(v) for a, v in
                      conn.execute("SELECT agent_id, version FROM state_current")}
            body = canonical_json({"assignments": assign, "states": states}).decode()
            conn.execute("INSERT INTO rollback_points VALUES (?,?,?,?)",
                         (pid, str(label), now, body))
        return RollbackPoint(pid, str(label), now, assign, states)

    def get(self, point_id: str) -> RollbackPoint:
        row = self.db.read_one("SELECT id, label, created, body FROM rollback_points WHERE id=?",
                               (point_id,))
        if row is None:
            raise UnknownRollbackPoint(f"no rollback point {point_id!r}")
        return _point(row)

    def list(self) -> list[RollbackPoint]:
        """All stored points, oldest first."""
        return [_point(r) for r in self.db.read(
            "SELECT id, label, created, body FROM rollback_points ORDER BY created, id")]

    def delete(self, point_id: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute("DELETE FROM rollback_points WHERE id=?", (point_id,)).rowcount != 1:
                raise UnknownRollbackPoint(f"no rollback point {point_id!r}")

    def expire(self, now: float) -> int:
        """Drop points older than the retention; return how many."""
        with self.db.transaction():
            return self._expire(now)

    def _expire(self, now: float) -> int:
        with self.db.transaction() as conn:
            return int(conn.execute("DELETE FROM rollback_points WHERE created<?",
                                    (now - self.config.retention_s,)).rowcount)

    def rollback(self, point_id: str) -> RollbackPoint:
        """Restore a point's assignments and state versions, all or nothing.

        Agents assigned after the point lose their assignment; state versions
        written after it stay stored (only the current pointer moves back).

        Raises
        ------
        UnknownRollbackPoint
            If there is no such point.
        UnknownState
            If a state version the point needs was pruned; nothing changes.
        """
        with self.db.transaction() as conn:
            point = self.get(point_id)
            for agent, version in point.states.items():
                if conn.execute("SELECT 1 FROM state_versions WHERE agent_id=? AND version=?",
                                (agent, version)).fetchone() is None:
                    raise UnknownState(f"rollback point {point_id} needs state version {version} "
                                       f"of agent {agent!r}, which is no longer stored")
            conn.execute("DELETE FROM assignments")
            conn.executemany("INSERT INTO assignments VALUES (?,?)",
                             sorted(point.assignments.items()))
            conn.executemany("INSERT INTO state_current VALUES (?,?) ON CONFLICT(agent_id) "
                             "DO UPDATE SET version=excluded.version",
                             sorted(point.states.items()))
        return point

    def protected_versions(self, agent_id: str) -> set[int]:
        """State versions of ``agent_id`` some rollback point still needs."""
        return {p.states[agent_id] for p in self.list() if agent_id in p.states}


def _point(row: tuple[Any, ...]) -> RollbackPoint:
    pid, label, created, body = row
    data = json.loads(str(body))
    return RollbackPoint(str(pid), str(label), float(created), data["assignments"],
                         {k: int(v) for k, v in data["states"].items()})
