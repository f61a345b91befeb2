"""Partitions ("statistical CAP"): honest widening, bounded staleness, a conjugate CRDT.

Widening. Think of the ``n`` agents' point estimates as a finite population
with between-agent standard deviation ``tau``; the consensus of all ``n`` is
their (robust) centre. A consensus from only ``m`` of them is a sample of
size ``m`` drawn without replacement, whose mean misses the full one with
variance ``tau^2 (1/m - 1/n)`` (the finite-population correction; zero when
``m = n``). An estimate whose data are ``d`` days old misses today's value by
the drift of VaR since then; with log-VaR a random walk of volatility
``kappa`` per square-root day that adds ``(kappa * point)^2 * d``. Both are
independent of the agents' own posterior uncertainty, so the variances add
and each half-width ``h`` of the credible interval becomes

    ``h' = sqrt(h^2 + z^2 [tau^2 (1/m - 1/n) + (kappa * point)^2 d])``

with ``z = Phi^-1((1 + mass) / 2)``; the lower end is floored at 0 (losses).
``h'`` is non-decreasing in the missing fraction ``1 - m/n`` and in ``d``.

Bounded staleness (as Cosmos DB's, on data time): an estimate is stale when
its ``seq`` is more than ``K`` behind the newest, or its data are more than
``T`` seconds older than ``now``.

CRDT. Each replica owns one versioned contribution of Normal sufficient
statistics ``(count, sum, sum of squares)``; merge keeps, per replica, the
highest version (a join: commutative, associative, idempotent); the read is
the exactly rounded sum over replicas (``math.fsum``). After a partition
heals, every side holds the same contributions, so the read — and the
Normal-Inverse-Gamma posterior computed from it — is bit-for-bit the one
without a partition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from statistics import NormalDist
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter, VersionConflict
from ..types import Interval
from .weights import StudentTLoss

SECONDS_PER_DAY = 86_400.0


class BoundMode(Enum):
    """What ``combine`` does past a staleness or availability bound."""

    REFUSE = "refuse"  # raise StaleConsensus (or NotEnoughAgents for availability)
    DEGRADE = "degrade"  # serve anyway, widened, with degraded=True


@dataclass(frozen=True)
class StalenessBound:
    """Bounded staleness: at most ``max_versions`` seq behind and ``max_age`` seconds old.

    ``None`` means no bound on that axis.
    """

    max_versions: int | None = None
    max_age: float | None = None

    def __post_init__(self) -> None:
        if self.max_versions is not None and self.max_versions < 0:
            raise InvalidParameter(f"max_versions must be >= 0, got {self.max_versions}")
        if self.max_age is not None and not self.max_age >= 0:
            raise InvalidParameter(f"max_age must be >= 0 seconds, got {self.max_age}")

    def is_stale(self, versions_behind: int, age: float) -> bool:
        """Whether an estimate ``versions_behind`` seq behind, ``age`` s old, is past the bound."""
        too_old = self.max_age is not None and age > self.max_age
        too_behind = self.max_versions is not None and versions_behind > self.max_versions
        return too_old or too_behind


def z_value(mass: float) -> float:
    """Standard normal quantile for an equal-tailed interval of ``mass`` (0.90 -> 1.645)."""
    if not 0.0 < mass < 1.0:
        raise InvalidParameter(f"interval mass must be in (0, 1), got {mass}")
    return NormalDist().inv_cdf(0.5 + mass / 2.0)


def widen_interval(
    point: float,
    interval: Interval,
    *,
    available: int,
    total: int,
    spread: float,
    staleness_days: float = 0.0,
    drift: float = 0.0,
    mass: float = 0.90,
) -> Interval:
    """Widen a credible interval for missing agents and stale data (rule in the module doc).

    Parameters
    ----------
    point : float
        Consensus point (VaR or ES, positive loss).
    interval : (float, float)
        Its credible interval before widening.
    available, total : int
        ``m`` agents used out of ``n``.
    spread : float
        Between-agent standard deviation ``tau`` of the point estimates (loss units).
    staleness_days : float
        Age of the data, in days.
    drift : float
        ``kappa``: volatility of log-VaR per square-root day.
    mass : float
        Posterior mass of the interval.
    """
    return _widen(point, interval, available, total, spread, staleness_days, drift,
                  z_value(mass))


def _widen(point: float, interval: Interval, available: int, total: int, spread: float,
           staleness_days: float, drift: float, z: float) -> Interval:
    """:func:`widen_interval` with ``z`` computed once by the caller (every check kept)."""
    if not 1 <= available <= total:
        raise InvalidParameter(f"need 1 <= available <= total, got {available} of {total}")
    numbers = (point, *interval, spread, staleness_days, drift)
    for v in numbers:  # a loop, not all(genexpr): this runs twice per consensus
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidParameter("point, interval, spread, staleness_days and drift must be "
                                   "finite numbers")
    if spread < 0 or staleness_days < 0 or drift < 0:
        raise InvalidParameter("spread, staleness_days and drift must be >= 0")
    lower, upper = interval
    low_half = max(point - lower, 0.0)
    high_half = max(upper - point, 0.0)
    # in units of the largest magnitude involved, so squares neither overflow nor underflow
    unit = max(abs(point), low_half, high_half, spread, math.ulp(0.0))
    if not math.isfinite(low_half + high_half):
        raise InvalidParameter("the interval is too wide to widen (its half-width overflows)")
    extra = ((spread / unit) ** 2 * (1.0 / available - 1.0 / total)
             + (drift * (point / unit)) ** 2 * staleness_days)
    grow_low = math.sqrt((low_half / unit) ** 2 + z * z * extra) * unit
    grow_high = math.sqrt((high_half / unit) ** 2 + z * z * extra) * unit
    if not math.isfinite(grow_low + grow_high):
        raise InvalidParameter(f"widening by {staleness_days:g} stale days overflows; "
                               "the estimates are far too old to serve")
    new_lower, new_upper = point - grow_low, point + grow_high
    if not math.isfinite(new_lower + new_upper):
        raise InvalidParameter(f"the widened interval around {point:g} overflows")
    # losses: an interval that started at or above zero stays there
    return (max(new_lower, 0.0) if lower >= 0 else new_lower, new_upper)


# --- conjugate sufficient statistics as a CRDT ------------------------------------


@dataclass(frozen=True)
class NormalStats:
    """Sufficient statistics of Normal data: ``count``, ``total = sum x``, ``total_sq = sum x²``."""

    count: int
    total: float
    total_sq: float

    @classmethod
    def of(cls, values: ArrayLike) -> NormalStats:
        """Statistics of ``values`` (shape ``(n,)``, finite), summed exactly rounded."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if not np.all(np.isfinite(x)):
            raise InvalidParameter("values must be finite")
        return cls(int(x.size), math.fsum(x.tolist()), math.fsum((x * x).tolist()))


@dataclass(frozen=True)
class Contribution:
    """One replica's statistics at one version."""

    version: int
    stats: NormalStats

    def _order(self) -> tuple[int, int, float, float]:
        return (self.version, self.stats.count, self.stats.total, self.stats.total_sq)


@dataclass(frozen=True)
class StatsCRDT:
    """A state-based CRDT of Normal statistics: replica id -> its latest contribution."""

    contributions: Mapping[str, Contribution] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contributions", MappingProxyType(dict(self.contributions)))

    def update(self, replica: str, stats: NormalStats, version: int) -> StatsCRDT:
        """This replica's new contribution (its own total so far), at a higher version."""
        current = self.contributions.get(replica)
        if current is not None and version <= current.version:
            raise VersionConflict(
                f"replica {replica!r} is at version {current.version}; a new contribution "
                f"needs a higher version, got {version}"
            )
        return StatsCRDT({**self.contributions, replica: Contribution(version, stats)})

    def merge(self, other: StatsCRDT) -> StatsCRDT:
        """Join: per replica the highest version (ties broken by content: a lattice join)."""
        merged = dict(self.contributions)
        for replica, theirs in other.contributions.items():
            mine = merged.get(replica)
            if mine is None or theirs._order() > mine._order():
                merged[replica] = theirs
        return StatsCRDT(merged)

    def read(self) -> NormalStats:
        """Sum over replicas, exactly rounded (independent of merge order)."""
        items = [self.contributions[r].stats for r in sorted(self.contributions)]
        return NormalStats(
            sum(s.count for s in items),
            math.fsum(s.total for s in items),
            math.fsum(s.total_sq for s in items),
        )


@dataclass(frozen=True)
class NormalInverseGamma:
    """Normal-Inverse-Gamma prior/posterior on a Normal mean ``mu`` and variance ``sigma^2``.

    ``mu | sigma^2 ~ N(loc, sigma^2 / kappa)``, ``sigma^2 ~ InvGamma(shape, rate)``.
    """

    loc: float
    kappa: float
    shape: float
    rate: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.loc) and self.kappa > 0 and self.shape > 0 and self.rate > 0):
            raise InvalidParameter("NormalInverseGamma needs finite loc and kappa, shape, rate > 0")

    def update(self, data: NormalStats) -> NormalInverseGamma:
        """Conjugate posterior after observing data summarized by ``data``."""
        n = data.count
        if n == 0:
            return self
        mean = data.total / n
        ss = max(data.total_sq - data.total * mean, 0.0)
        kappa = self.kappa + n
        loc = (self.kappa * self.loc + data.total) / kappa
        shape = self.shape + n / 2.0
        rate = self.rate + 0.5 * ss + self.kappa * n * (mean - self.loc) ** 2 / (2.0 * kappa)
        return NormalInverseGamma(loc, kappa, shape, rate)

    def predictive_loss(self) -> StudentTLoss:
        """Posterior predictive of the loss ``-r``: Student-t(2 shape) location-scale."""
        scale = math.sqrt(self.rate * (self.kappa + 1.0) / (self.shape * self.kappa))
        return StudentTLoss(loc=-self.loc, scale=scale, df=2.0 * self.shape)
