"""Canary releases: a deterministic slice of agents, ramped while checks pass.

Assignment hashes ``variant id + agent (or portfolio) id`` with SHA-256 -
never Python's ``hash()``, which is salted per process - to a number in
[0, 1); the agent runs the canary when that number is below the current
fraction. The fraction only grows while the release ramps, so an agent once
on the canary stays on it. Following Flagger/Argo Rollouts canary analysis: a
passed health check (at most one per ``health_check_interval_s``) moves one
step up; ``max_failed_checks`` failed checks roll the variant back
automatically; the step that reaches 100 % promotes it.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from ..errors import InvalidParameter, InvalidVariant
from .breaker import BreakerSnapshot, BreakerState
from .config import CanaryConfig
from .metrics import MetricStats
from .statestore import check_now
from .variant_store import VariantStore
from .variants import CanaryProgress, Variant, VariantStatus

_SCALE = float(2**64)


def canary_bucket(variant_id: str, key: str) -> float:
    """Where ``key`` falls in [0, 1) for this variant's canary; same in every process."""
    for what, value in (("variant_id", variant_id), ("key", key)):
        if not isinstance(value, str):
            raise InvalidParameter(f"{what} must be a string (an id or agent/portfolio key), "
                                   f"not {value!r}")
    digest = hashlib.sha256(f"{variant_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def routed_to_canary(variant: Variant, key: str) -> bool:
    """True if agent/portfolio ``key`` runs ``variant`` at its current canary fraction."""
    p = variant.canary
    if variant.status is not VariantStatus.CANARY or p is None:
        return False
    return canary_bucket(variant.id, key) < p.fraction


class CheckOutcome(Enum):
    """What one health check did to a canary release."""

    RAMPED = "ramped"
    HELD = "held"
    FAILED = "failed"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class HealthPolicy:
    """Thresholds a canary's metrics must meet over a check interval.

    Attributes
    ----------
    min_success_rate : float
        Lowest acceptable mean success rate.
    max_latency_s : float
        Highest acceptable mean latency, seconds.
    min_kupiec_p : float
        Lowest acceptable Kupiec POF p-value (if the records carry one): a
        smaller one rejects correct VaR coverage at that level.
    min_records : int
        Fewer records than this fail the check (no evidence is no pass).

    numpy scalars are taken (``np.float32(0.95)``, ``np.int64(5)``) and kept as
    Python ``float``/``int``; true/false, complex numbers and text are not numbers.

    Raises
    ------
    InvalidParameter
        A rate outside [0, 1] or not a real number, a latency not above 0, a
        ``min_records`` that is not a whole number >= 0; the message names the field.
    """

    min_success_rate: float = 0.95
    max_latency_s: float = math.inf
    min_kupiec_p: float = 0.05
    min_records: int = 1

    def __post_init__(self) -> None:
        # a nonsense threshold would fail (or pass) every check, and failed checks roll back
        for field, value in (("min_success_rate", self.min_success_rate),
                             ("min_kupiec_p", self.min_kupiec_p)):
            if not _is_number(value) or not 0.0 <= value <= 1.0:  # also NaN
                raise InvalidParameter(f"{field} {value!r} is not a rate; give one from 0 to "
                                       "1, e.g. 0.95 (0.05 for a p-value)")
            object.__setattr__(self, field, float(value))
        if (not _is_number(self.max_latency_s) or math.isnan(self.max_latency_s)
                or self.max_latency_s <= 0):
            raise InvalidParameter(f"max_latency_s {self.max_latency_s!r} is not a latency; "
                                   "give seconds above 0 (inf: no limit)")
        object.__setattr__(self, "max_latency_s", float(self.max_latency_s))
        if (isinstance(self.min_records, bool)
                or not isinstance(self.min_records, numbers.Integral) or self.min_records < 0):
            raise InvalidParameter(f"min_records {self.min_records!r} is not a count; give a "
                                   "whole number >= 0")
        object.__setattr__(self, "min_records", int(self.min_records))


def _is_number(value: object) -> bool:
    """A real number: Python's or numpy's (``np.float32``), not true/false or complex."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class HealthCheck:
    """The verdict of one check and why it failed, if it did."""

    passed: bool
    reasons: tuple[str, ...] = ()


def assess(stats: Mapping[str, MetricStats], policy: HealthPolicy,
           breaker: BreakerSnapshot | None = None) -> HealthCheck:
    """Judge one interval's metric summary (from ``MetricsStore.summary``).

    A canary whose circuit breaker is not CLOSED fails the check whatever its
    metrics say.
    """
    reasons = []
    if breaker is not None and breaker.state is not BreakerState.CLOSED:
        reasons.append(f"circuit breaker is {breaker.state.value}")
    n = stats["success_rate"].n if "success_rate" in stats else 0
    if n < policy.min_records:
        reasons.append(f"{n} records, fewer than {policy.min_records}")
    else:
        if stats["success_rate"].mean < policy.min_success_rate:
            reasons.append(f"success rate {stats['success_rate'].mean:.3f} < "
                           f"{policy.min_success_rate}")
        if stats["latency_s"].mean > policy.max_latency_s:
            reasons.append(f"latency {stats['latency_s'].mean:.3f} s > {policy.max_latency_s} s")
        if "kupiec_p" in stats and stats["kupiec_p"].mean < policy.min_kupiec_p:
            reasons.append(f"Kupiec p-value {stats['kupiec_p'].mean:.3g} < "
                           f"{policy.min_kupiec_p}")
    return HealthCheck(not reasons, tuple(reasons))


def _check_step(variant: object, config: object, now: object) -> None:
    if not isinstance(variant, Variant):
        raise InvalidParameter(f"variant must be a Variant, not {type(variant).__name__}")
    if not isinstance(config, CanaryConfig):
        raise InvalidParameter(f"config must be a CanaryConfig, not {type(config).__name__}")
    check_now(now)


def start_canary(store: VariantStore, variant: Variant, config: CanaryConfig,
                 now: float) -> Variant:
    """Move a draft (or re-drafted) variant to CANARY at ``initial_fraction``."""
    _check_step(variant, config, now)
    progress = CanaryProgress(initial_fraction=config.initial_fraction,
                              steps=config.ramp_steps, started_at=now, last_check_at=now)
    return store.save(replace(variant.moved_to(VariantStatus.CANARY, now), canary=progress))


def record_check(store: VariantStore, variant: Variant, passed: bool, config: CanaryConfig,
                 now: float) -> tuple[Variant, CheckOutcome]:
    """Apply one health check to a canary release and save the result.

    A pass ramps one step, unless the last step was less than
    ``health_check_interval_s`` ago (HELD); the step reaching 100 % promotes.
    A failure counts at once; the ``max_failed_checks``-th rolls back.
    Optimistic locking: ``variant`` must be the stored version.
    """
    _check_step(variant, config, now)
    if not isinstance(passed, bool):
        raise InvalidParameter(f"passed must be True or False (the check's verdict), not "
                               f"{passed!r}")
    p = variant.canary
    if variant.status is not VariantStatus.CANARY or p is None:
        raise InvalidVariant(f"variant {variant.id} is {variant.status.value}, not in a canary")
    if not passed:
        p = replace(p, failed_checks=p.failed_checks + 1, last_check_at=now)
        if p.failed_checks >= config.max_failed_checks:
            rolled, _ = store.roll_back(replace(variant, canary=p), now)
            return rolled, CheckOutcome.ROLLED_BACK
        return store.save(replace(variant, canary=p, updated=now)), CheckOutcome.FAILED
    if now - p.last_check_at < config.health_check_interval_s:
        return variant, CheckOutcome.HELD
    p = replace(p, step=p.step + 1, passed_checks=p.passed_checks + 1, last_check_at=now)
    if p.complete:
        return store.promote(replace(variant, canary=p), now), CheckOutcome.PROMOTED
    return store.save(replace(variant, canary=p, updated=now)), CheckOutcome.RAMPED


#: Who made an automatic change, as its ledger note says (``by``): a ``variants canary
#: check``, a canary's sandbox violation, and its task's own error in the sandbox.
BY_CHECK = "canary-check"
BY_VIOLATION = "canary-violation"
BY_TASK_FAILURE = "canary-task-failure"


def check_note(checked: Variant, outcome: CheckOutcome, by: str) -> dict[str, Any] | None:
    """The ledger note's data of a health check that promoted or rolled back ``checked``
    (the variant :func:`record_check` returned), named as a change by hand is (``event``
    ``promote``/``rollback``, the variant and its class) with ``by``, who made it
    (:data:`BY_CHECK`, :data:`BY_VIOLATION`, :data:`BY_TASK_FAILURE`); None for a check
    that only ramped, held or counted a failure (a canary's share is not noted). For
    :func:`swarmvar.evolution.noted.noted_change`.

    Raises
    ------
    InvalidParameter
        ``by`` is not text.
    """
    if not isinstance(by, str) or not by:
        raise InvalidParameter(f"by must name who made the change, not {by!r}")
    events = {CheckOutcome.PROMOTED: "promote", CheckOutcome.ROLLED_BACK: "rollback"}
    if outcome not in events:
        return None
    p = checked.canary
    data: dict[str, Any] = {"event": events[outcome], "variant_id": checked.id,
                            "agent_class": checked.agent_class, "by": by}
    if p is not None:
        data.update(passed_checks=p.passed_checks, failed_checks=p.failed_checks)
    return data


def promotion_blockers(variant: Variant) -> tuple[str, ...]:
    """Why ``variant`` may not be promoted by hand yet (empty: it may).

    A variant becomes champion through a canary release whose health checks
    have passed: at least one passed check and none failed. A retired
    champion may be re-instated. Anything else needs an explicit, recorded
    override (``promote --force``).
    """
    if variant.status is VariantStatus.RETIRED:
        return ()
    p = variant.canary
    if variant.status is VariantStatus.DRAFT or p is None:
        return (f"variant {variant.id} has not been through a canary release "
                "(run `variants canary start` and let its checks pass)",)
    reasons = []
    if p.passed_checks < 1:
        reasons.append("its canary has not passed a health check yet")
    if p.failed_checks:
        reasons.append(f"its canary failed {p.failed_checks} health check(s)")
    return tuple(reasons)
