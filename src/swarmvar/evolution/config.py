"""One typed config object for the variant lifecycle, with the spec's defaults.

The defaults are those of the design document (variant-lifecycle-spec.md,
"Configuration"): cache 256 MB, chunk 1 MB, compression on, at most 100
variants, metrics every 60 s kept 30 days, breaker 5 failures / 30 s reset /
3 reset attempts, canary 10 % / 5 steps / 5 min between health checks,
rollback points at most 100 kept 30 days. Every value is checked when the
object is built (numpyro's habit: invariants declared as data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidConfig

#: A clock: seconds since the Unix epoch (wall time, so that it can be
#: persisted and compared across processes). Pass ``time.time`` at the edge.
Clock = Callable[[], float]

MB = 1024 * 1024
DAY = 86_400.0


def _plain(config: object, name: str) -> object:
    """The field's value, a numpy scalar replaced in place by the Python number it equals."""
    value = getattr(config, name)
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
        object.__setattr__(config, name, value)  # frozen: set once, while being built
    return value


def _positive(config: object, counts: tuple[str, ...] = (), reals: tuple[str, ...] = ()
              ) -> None:
    """Each field named in ``counts`` a whole number > 0 and each in ``reals`` a finite
    number > 0 (not a bool; numpy numbers are taken as the Python numbers they equal)."""
    owner = type(config).__name__
    for name in counts:
        value = _plain(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidConfig(f"{owner}.{name} must be a whole number > 0, not {value!r}")
    for name in reals:
        value = _plain(config, name)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 < value < math.inf):
            raise InvalidConfig(f"{owner}.{name} must be a finite number > 0, not {value!r}")


def _flag(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidConfig(f"{owner}.{name} must be True or False, not {value!r}")


@dataclass(frozen=True)
class BreakerConfig:
    """Circuit breaker: trips after ``failure_threshold`` consecutive failures,
    tries a reset after ``reset_timeout_s``, and after ``max_reset_attempts``
    failed resets stays open until an operator resets it."""

    failure_threshold: int = 5
    reset_timeout_s: float = 30.0
    max_reset_attempts: int = 3

    def __post_init__(self) -> None:
        _positive(self, counts=("failure_threshold", "max_reset_attempts"),
                  reals=("reset_timeout_s",))


@dataclass(frozen=True)
class CanaryConfig:
    """Canary: starts at ``initial_fraction`` of agents, reaches 100 % in
    ``ramp_steps`` equal steps, one per passed health check at least
    ``health_check_interval_s`` apart; rolls back after ``max_failed_checks``
    failed checks (counted over the whole release, as Flagger's threshold)."""

    initial_fraction: float = 0.10
    ramp_steps: int = 5
    health_check_interval_s: float = 300.0
    max_failed_checks: int = 3

    def __post_init__(self) -> None:
        fraction = _plain(self, "initial_fraction")
        if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                or not 0.0 < self.initial_fraction < 1.0):
            raise InvalidConfig(
                f"CanaryConfig.initial_fraction must be in (0, 1), not {self.initial_fraction!r}"
            )
        _positive(self, counts=("ramp_steps", "max_failed_checks"),
                  reals=("health_check_interval_s",))


@dataclass(frozen=True)
class RollbackConfig:
    """Rollback points: at most ``max_points``, each kept ``retention_s``."""

    max_points: int = 100
    retention_s: float = 30 * DAY

    def __post_init__(self) -> None:
        _positive(self, counts=("max_points",), reals=("retention_s",))


@dataclass(frozen=True)
class StateConfig:
    """State store: chunk size, compression, read cache and write durability.

    ``fsync`` makes a committed state survive power loss, not only a killed
    process; turn it off only for scratch stores.
    """

    chunk_bytes: int = 1 * MB
    compression: bool = True
    compression_level: int = 1
    cache_bytes: int = 256 * MB
    fsync: bool = True

    def __post_init__(self) -> None:
        _positive(self, counts=("chunk_bytes",))
        _flag("StateConfig", "compression", self.compression)
        _flag("StateConfig", "fsync", self.fsync)
        level = _plain(self, "compression_level")
        if (isinstance(level, bool) or not isinstance(level, int)
                or not 0 <= self.compression_level <= 9):
            raise InvalidConfig(
                f"StateConfig.compression_level must be 0..9, not {self.compression_level!r}"
            )
        cache = _plain(self, "cache_bytes")
        if (isinstance(cache, bool) or not isinstance(cache, int)
                or self.cache_bytes < 0):
            raise InvalidConfig(f"StateConfig.cache_bytes must be >= 0, not {self.cache_bytes!r}")


@dataclass(frozen=True)
class EvolutionConfig:
    """Everything the variant lifecycle can be tuned by, with the spec's defaults."""

    max_variants: int = 100
    metrics_interval_s: float = 60.0
    metrics_retention_s: float = 30 * DAY
    state: StateConfig = field(default_factory=StateConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)

    def __post_init__(self) -> None:
        _positive(self, counts=("max_variants",),
                  reals=("metrics_interval_s", "metrics_retention_s"))
        for name, kind in (("state", StateConfig), ("breaker", BreakerConfig),
                           ("canary", CanaryConfig), ("rollback", RollbackConfig)):
            if not isinstance(getattr(self, name), kind):
                raise InvalidConfig(f"EvolutionConfig.{name} must be a {kind.__name__}, not "
                                    f"{getattr(self, name)!r}")
