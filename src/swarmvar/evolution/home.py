"""All lifecycle stores over one data home, opened together.

``open_home("./.swarmvar")`` gives the SQLite database ``evolution.sqlite``
and the state packs under ``states/`` in that directory; a file path,
``sqlite:///`` URL, ``:memory:`` or a ``postgresql://`` URL (both with
``state_root``) also work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .breaker import CircuitBreaker, Listener, SqliteBreakerStorage
from .config import Clock, EvolutionConfig
from .crypto import StateKey
from .db import Database, open_database
from .metrics import MetricsStore
from .registry import AgentRegistry
from .rollback import Assignments, RollbackPoints
from .selection import Candidate, candidate, select
from .statestore import StateStore
from .variant_store import SqliteVariantStore
from .variants import Variant, VariantStatus


@dataclass(frozen=True)
class EvolutionHome:
    """The variant lifecycle's stores, sharing one database (so one transaction)."""

    db: Database
    config: EvolutionConfig
    variants: SqliteVariantStore
    agents: AgentRegistry
    metrics: MetricsStore
    states: StateStore
    assignments: Assignments
    points: RollbackPoints
    breakers: SqliteBreakerStorage

    def breaker(self, variant_id: str, clock: Clock,
                listeners: tuple[Listener, ...] = ()) -> CircuitBreaker:
        """The persisted circuit breaker of a variant."""
        return CircuitBreaker(variant_id, self.breakers, clock, self.config.breaker, listeners)

    def candidates(self, now: float, window_s: float | None = None) -> list[Candidate]:
        """ACTIVE and CANARY variants, scored from their breakers and the metrics
        of the last ``window_s`` seconds (default: 60 metric intervals, one hour)."""
        window = window_s if window_s is not None else 60 * self.config.metrics_interval_s
        out = []
        for status in (VariantStatus.ACTIVE, VariantStatus.CANARY):
            for v in self.variants.list(status):
                out.append(candidate(v, self.metrics.summary(v.id, now - window, now),
                                     self.breakers.load(v.id), self.config.breaker))
        return out

    def select(self, agent_id: str, now: float, agent_class: str | None = None
               ) -> Variant | None:
        """The variant a registered agent should run now (see :func:`select`)."""
        return select(self.agents.get(agent_id), self.candidates(now), agent_class)

    def close(self) -> None:
        self.db.close()


def open_home(location: str | Path = "./.swarmvar", config: EvolutionConfig | None = None,
              key: StateKey | None = None, state_root: str | Path | None = None, *,
              create: bool = True) -> EvolutionHome:
    """Open (creating if needed) every lifecycle store under ``location``.

    ``location`` may be a ``postgresql://`` URL (several replicas sharing one
    database); state packs then need ``state_root``, a folder they all mount.
    ``create=False`` opens a home that is there and makes nothing: for a process that
    made its home at its start (a server), so a home deleted since is an error, not a
    new empty store that answers ``[]`` and takes promotions.

    Raises
    ------
    VariantStoreMissing
        Not ``create``, and the home's ``evolution.sqlite`` (or the home) is not there;
        or SQLite cannot open it for good (:class:`~swarmvar.evolution.db.Database`).
    """
    cfg = config or EvolutionConfig()
    db = open_database(location, create=create)
    try:
        states = StateStore(db, state_root, cfg.state, key)
    except BaseException:
        db.close()
        raise
    return EvolutionHome(
        db=db, config=cfg,
        variants=SqliteVariantStore(db, cfg.max_variants),
        agents=AgentRegistry(db),
        metrics=MetricsStore(db, cfg.metrics_retention_s),
        states=states,
        assignments=Assignments(db),
        points=RollbackPoints(db, cfg.rollback),
        breakers=SqliteBreakerStorage(db),
    )
