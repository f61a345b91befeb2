"""Which variant an agent should run: score = 0.3 performance + 0.4 compatibility
+ 0.3 stability, each in [0, 1].

* performance - mean of the available parts: mean success rate; latency as
  ``1 / (1 + latency / latency_scale_s)``; and, for VaR records, the Kupiec
  p-value as ``min(1, p / 0.05)`` (full marks unless coverage is rejected at
  5 %). No records at all: 0.5 (no evidence either way).
* compatibility - 0 if the agent misses a requirement (and the variant is not
  eligible); otherwise ``0.5 + 0.5 w``, where ``w`` is the agent's preference
  for the variant's agent class relative to its most preferred class (1 when
  the agent states no preferences).
* stability - status factor (active 1.0, canary 0.5) times breaker factor
  (closed ``1 - failures / threshold``, half-open 0.25; open: not eligible).

Only ACTIVE and CANARY variants run; a canary is eligible only for agents in
its canary slice, and wins for them (that is what a canary slice means).
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import InvalidParameter
from .breaker import BreakerSnapshot, BreakerState
from .config import BreakerConfig
from .metrics import MetricStats
from .registry import AgentProfile, is_compatible
from .variants import Variant, VariantStatus

W_PERFORMANCE, W_COMPATIBILITY, W_STABILITY = 0.3, 0.4, 0.3
KUPIEC_LEVEL = 0.05
_SCALE = float(2**64)
_STATUS = MappingProxyType({VariantStatus.ACTIVE: 1.0, VariantStatus.CANARY: 0.5})


def performance_score(stats: Mapping[str, MetricStats], latency_scale_s: float = 1.0) -> float:
    """Performance in [0, 1] from a metric summary (0.5 with no records)."""
    parts = []
    if "success_rate" in stats:
        parts.append(stats["success_rate"].mean)
    if "latency_s" in stats:
        parts.append(1.0 / (1.0 + stats["latency_s"].mean / latency_scale_s))
    if "kupiec_p" in stats:
        parts.append(min(1.0, stats["kupiec_p"].mean / KUPIEC_LEVEL))
    return sum(parts) / len(parts) if parts else 0.5


def stability_score(status: VariantStatus, breaker: BreakerSnapshot,
                    config: BreakerConfig) -> float:
    """Stability in [0, 1] from lifecycle status and breaker state."""
    factor = _STATUS.get(status, 0.0)
    if breaker.state is BreakerState.OPEN:
        return 0.0
    if breaker.state is BreakerState.HALF_OPEN:
        return factor * 0.25
    return factor * max(0.0, 1.0 - breaker.failures / config.failure_threshold)


def compatibility_score(variant: Variant, agent: AgentProfile) -> float:
    """Compatibility in [0, 1]; 0 when a requirement is not met."""
    if not is_compatible(variant, agent):
        return 0.0
    prefs = agent.preferences
    if not prefs:
        return 1.0
    return 0.5 + 0.5 * prefs.get(variant.agent_class, 0.0) / max(prefs.values())


@dataclass(frozen=True)
class Candidate:
    """A variant with its agent-independent scores, computed once per refresh.

    ``available`` is False while its breaker is OPEN. The rest is derived
    once here so that :func:`select` does little per call.
    """

    variant: Variant
    performance: float
    stability: float
    available: bool = True
    base: float = field(init=False)
    requires: tuple[tuple[str, tuple[int, ...]], ...] = field(init=False)
    canary_fraction: float = field(init=False)
    kind: int = field(init=False)  # 0 not runnable, 1 active, 2 canary
    _prefix: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = self.variant
        set_ = object.__setattr__
        set_(self, "base", W_PERFORMANCE * self.performance + W_STABILITY * self.stability)
        set_(self, "requires", tuple((k, r.parts) for k, r in v.requirements.items()))
        set_(self, "canary_fraction", v.canary.fraction if v.canary else 0.0)
        set_(self, "_prefix", hashlib.sha256(f"{v.id}\x00".encode()))
        set_(self, "kind", {VariantStatus.ACTIVE: 1, VariantStatus.CANARY: 2}.get(v.status, 0))

    def routes(self, key: bytes) -> bool:
        """Same answer as :func:`~swarmvar.evolution.canary.routed_to_canary`, faster."""
        h = self._prefix.copy()
        h.update(key)
        return int.from_bytes(h.digest()[:8], "big") / _SCALE < self.canary_fraction


def candidate(variant: Variant, stats: Mapping[str, MetricStats], breaker: BreakerSnapshot,
              config: BreakerConfig, latency_scale_s: float = 1.0) -> Candidate:
    """Score a variant's agent-independent parts.

    ``latency_scale_s`` may be any real number, numpy's too (``np.float32(0.5)``).

    Raises
    ------
    InvalidParameter
        ``latency_scale_s`` not a finite real number of seconds above 0 (true/false,
        complex numbers and text are not numbers), named in the message.
    """
    if (isinstance(latency_scale_s, bool) or not isinstance(latency_scale_s, numbers.Real)
            or not 0 < latency_scale_s < math.inf):
        raise InvalidParameter(f"latency_scale_s must be a finite number of seconds > 0, not "
                               f"{latency_scale_s!r}")
    return Candidate(variant, performance_score(stats, float(latency_scale_s)),
                     stability_score(variant.status, breaker, config),
                     breaker.state is not BreakerState.OPEN)


def score(c: Candidate, agent: AgentProfile) -> float:
    """The selection score of candidate ``c`` for ``agent``, in [0, 1]."""
    return c.base + W_COMPATIBILITY * compatibility_score(c.variant, agent)


def select(agent: AgentProfile, candidates: Sequence[Candidate],
           agent_class: str | None = None) -> Variant | None:
    """The best eligible variant for ``agent`` (optionally of one agent class), or None.

    Equivalent to taking, among eligible candidates, the maximum of
    ``(is_canary, score, id)``; the canary hash is computed only for a
    canary that would otherwise win. Ties break by variant id.
    """
    caps = agent.capability_parts
    prefs = agent.preferences
    top = max(prefs.values()) if prefs else 0.0
    best_canary = False
    best_score = -1.0
    best_id = ""
    chosen: Variant | None = None
    for c in candidates:
        if not c.available or c.kind == 0:
            continue
        canary = c.kind == 2
        if best_canary and not canary:
            continue
        v = c.variant
        if agent_class is not None and v.agent_class != agent_class:
            continue
        compatible = True
        for name, parts in c.requires:
            if caps.get(name, ()) < parts:
                compatible = False
                break
        if not compatible:
            continue
        s = c.base + (W_COMPATIBILITY * (0.5 + 0.5 * prefs.get(v.agent_class, 0.0) / top)
                      if prefs else W_COMPATIBILITY)
        if chosen is not None and canary == best_canary and (
                s < best_score or (s == best_score and v.id <= best_id)):
            continue
        if canary and not c.routes(agent.key):
            continue
        best_canary, best_score, best_id, chosen = canary, s, v.id, v
    return chosen
