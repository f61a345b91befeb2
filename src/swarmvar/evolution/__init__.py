"""Variant lifecycle (layer 2): model variants under canary, circuit-breaker and
rollback safeguards, with a verified store for agents' states.

The design document's EmergenceManager maps here as: VariantManager ->
:class:`VariantStore`; AgentRegistry -> :class:`AgentRegistry`;
PerformanceTracker -> :class:`MetricsStore`; CanaryDeployment ->
:mod:`~swarmvar.evolution.canary`; CircuitBreaker -> :class:`CircuitBreaker`;
RollbackManager -> :class:`RollbackPoints`; StateStore -> :class:`StateStore`.
This package never imports the models: variant changes are validated against
a ``{agent_class_name: parameter_names}`` mapping the caller passes in.
"""

from .breaker import (
    BreakerSnapshot,
    BreakerState,
    BreakerStorage,
    CircuitBreaker,
    MemoryBreakerStorage,
    SqliteBreakerStorage,
)
from .canary import (
    CheckOutcome,
    HealthCheck,
    HealthPolicy,
    assess,
    canary_bucket,
    promotion_blockers,
    record_check,
    routed_to_canary,
    start_canary,
)
from .config import BreakerConfig, CanaryConfig, EvolutionConfig, RollbackConfig, StateConfig
from .crypto import KEY_ENV, StateKey
from .db import Database
from .errors import (
    InvalidCapabilities,
    InvalidConfig,
    InvalidKey,
    InvalidMetric,
    InvalidTransition,
    KeyRequired,
    UnknownRollbackPoint,
    UnknownState,
    UnsupportedStore,
    WrongKey,
)
from .home import EvolutionHome, open_home
from .metrics import Granularity, MetricRecord, MetricsStore, MetricStats, Rollup
from .registry import (
    AgentProfile,
    AgentRegistry,
    agent_profile,
    is_compatible,
    missing_requirements,
)
from .rollback import Assignments, RollbackPoint, RollbackPoints
from .selection import Candidate, candidate, score, select
from .statestore import StateRef, StateStore
from .variant_store import MemoryVariantStore, SqliteVariantStore, VariantStore
from .variants import CanaryProgress, Variant, VariantStatus, new_variant, validate_changes
from .versions import Version

__all__ = [
    "AgentProfile", "AgentRegistry", "Assignments", "BreakerConfig", "BreakerSnapshot",
    "BreakerState", "BreakerStorage", "CanaryConfig", "CanaryProgress", "Candidate",
    "CheckOutcome", "CircuitBreaker", "Database", "EvolutionConfig", "EvolutionHome",
    "Granularity", "HealthCheck", "HealthPolicy", "InvalidCapabilities", "InvalidConfig",
    "InvalidKey", "InvalidMetric", "InvalidTransition", "KEY_ENV", "KeyRequired",
    "MemoryBreakerStorage", "MemoryVariantStore", "MetricRecord", "MetricStats",
    "MetricsStore", "RollbackConfig", "RollbackPoint", "RollbackPoints", "Rollup",
    "SqliteBreakerStorage", "SqliteVariantStore", "StateConfig", "StateKey", "StateRef",
    "StateStore", "UnknownRollbackPoint", "UnknownState", "UnsupportedStore", "Variant",
    "VariantStatus", "VariantStore", "Version", "WrongKey", "agent_profile", "assess",
    "canary_bucket", "candidate", "is_compatible", "missing_requirements", "new_variant",
    "open_home", "promotion_blockers", "record_check", "routed_to_canary", "score", "select",
    "start_canary",
    "validate_changes",
]
