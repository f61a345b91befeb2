"""Per-variant performance records, their hourly/daily/monthly rollups, and retention.

A :class:`MetricRecord` is one measurement interval of one variant: success
rate, latency, resource usage, throughput, and for VaR models the breach rate,
the Kupiec proportion-of-failures p-value and the pinball (quantile) loss.
Raw records are kept for ``metrics_retention_s`` (30 days by default);
:meth:`MetricsStore.apply_retention` first folds the records it is about to
drop into stored rollups (counts, sums, minima and maxima per bucket - all
mergeable, so a bucket half in raw rows and half in rollups still aggregates
exactly), then deletes them, in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

import numpy as np

from .db import Database
from .errors import InvalidMetric

#: Metric columns and their allowed ranges (declared as data).
BOUNDS: Mapping[str, tuple[float, float]] = MappingProxyType({
    "success_rate": (0.0, 1.0),
    "latency_s": (0.0, math.inf),
    "resource_usage": (0.0, math.inf),
    "throughput": (0.0, math.inf),
    "breach_rate": (0.0, 1.0),
    "kupiec_p": (0.0, 1.0),
    "pinball_loss": (0.0, math.inf),
})
METRICS = tuple(BOUNDS)
OPTIONAL = frozenset({"breach_rate", "kupiec_p", "pinball_loss"})


class Granularity(Enum):
    """Rollup bucket width (UTC calendar months for MONTH)."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


_BUCKET_SQL: Mapping[Granularity, str] = MappingProxyType({
    Granularity.HOUR: "CAST(CAST(ts / 3600 AS INTEGER) * 3600 AS REAL)",
    Granularity.DAY: "CAST(CAST(ts / 86400 AS INTEGER) * 86400 AS REAL)",
    Granularity.MONTH: "CAST(strftime('%s', ts, 'unixepoch', 'start of month') AS REAL)",
})


@dataclass(frozen=True)
class MetricRecord:
    """One measurement of one variant.

    Attributes
    ----------
    at : float
        End of the measurement interval, seconds since the epoch (>= 0).
    success_rate : float
        Share of calls that worked, in [0, 1].
    latency_s : float
        Mean call latency in seconds.
    resource_usage : float
        CPU-seconds per second (1.0 = one core busy).
    throughput : float
        Calls per second.
    breach_rate, kupiec_p, pinball_loss : float or None
        VaR backtest figures over the interval, if any: share of returns
        beyond VaR, Kupiec POF p-value, mean pinball loss.
    """

    variant_id: str
    at: float
    success_rate: float
    latency_s: float
    resource_usage: float = 0.0
    throughput: float = 0.0
    breach_rate: float | None = None
    kupiec_p: float | None = None
    pinball_loss: float | None = None

    def row(self) -> tuple[object, ...]:
        return (self.variant_id, self.at, self.success_rate, self.latency_s,
                self.resource_usage, self.throughput, self.breach_rate, self.kupiec_p,
                self.pinball_loss)


@dataclass(frozen=True)
class MetricStats:
    """Aggregate of one metric over a bucket or window."""

    n: int
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class Rollup:
    """One bucket of one variant: ``bucket`` is its start, seconds since the epoch."""

    variant_id: str
    granularity: Granularity
    bucket: float
    records: int
    stats: Mapping[str, MetricStats]


def check_record(rec: MetricRecord) -> None:
    """Raise ``InvalidMetric`` naming the first bad field of ``rec``."""
    if not isinstance(rec.variant_id, str) or not rec.variant_id:
        raise InvalidMetric(f"metric record needs a variant id, got {rec.variant_id!r}")
    if not _finite(rec.at) or rec.at < 0:
        raise InvalidMetric(f"metric record time {rec.at!r} must be epoch seconds >= 0")
    for name, (lo, hi) in BOUNDS.items():
        value = getattr(rec, name)
        if value is None and name in OPTIONAL:
            continue
        if not _finite(value) or not lo <= value <= hi:
            raise InvalidMetric(
                f"metric {name}={value!r} for variant {rec.variant_id} is outside [{lo}, {hi}]")


_LO = np.array([0.0] + [lo for lo, _ in BOUNDS.values()])
_HI = np.array([np.inf] + [hi for _, hi in BOUNDS.values()])
_PLAIN = frozenset({float, int, type(None)})
_NULLABLE = np.array([False] + [m in OPTIONAL for m in METRICS])


def _batch_ok(rows: list[tuple[object, ...]]) -> bool:
    """The checks of :func:`check_record` on a whole batch at once (vectorized)."""
    if not rows:
        return True
    if not all(type(r[0]) is str and r[0] for r in rows):
        return False
    if any(type(x) not in _PLAIN for r in rows for x in r[1:]):
        return False  # bools, text, numpy scalars: the careful per-record check decides
    try:
        values = np.array([r[1:] for r in rows], dtype=float)
    except (TypeError, ValueError):
        return False
    missing = np.isnan(values)
    if np.any(missing & ~_NULLABLE):
        return False
    inside = (values >= _LO) & (values <= _HI) & np.isfinite(values)
    return bool(np.all(inside | missing))


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class MetricsStore:
    """Metric records and rollups in the lifecycle database.

    Parameters
    ----------
    retention_s : float
        How long raw records are kept by :meth:`apply_retention` (seconds).
    """

    def __init__(self, db: Database, retention_s: float = 30 * 86_400.0) -> None:
        self.db = db
        self.retention_s = retention_s

    def record(self, records: Sequence[MetricRecord]) -> int:
        """Store a batch of records, all or none (bad input stores nothing)."""
        rows = [r.row() for r in records]
        if not _batch_ok(rows):
            for rec in records:
                check_record(rec)  # raises, naming the first bad field
        with self.db.transaction() as conn:
            conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def count(self, variant_id: str | None = None) -> int:
        """Raw records kept (for one variant, or all)."""
        if variant_id is None:
            row = self.db.read_one("SELECT COUNT(*) FROM metrics")
        else:
            row = self.db.read_one("SELECT COUNT(*) FROM metrics WHERE variant_id=?",
                                   (variant_id,))
        return int(row[0]) if row else 0

    def summary(self, variant_id: str, since: float, until: float) -> dict[str, MetricStats]:
        """Each metric over raw records with ``since <= at < until`` (empty if none)."""
        cols = ", ".join(f"COUNT({m}), AVG({m}), MIN({m}), MAX({m})" for m in METRICS)
        row = self.db.read_one(f"SELECT {cols} FROM metrics WHERE variant_id=? AND ts>=? "
                               "AND ts<?", (variant_id, since, until))
        assert row is not None
        out = {}
        for i, name in enumerate(METRICS):
            n, mean, lo, hi = row[4 * i:4 * i + 4]
            if n:
                out[name] = MetricStats(int(n), float(mean), float(lo), float(hi))
        return out

    def rollups(self, variant_id: str, granularity: Granularity,
                since: float = 0.0, until: float = math.inf) -> list[Rollup]:
        """Buckets of ``granularity`` whose start lies in ``[since, until)``, oldest first.

        Combines raw records with rollups of records already past retention.
        """
        acc: dict[float, dict[str, list[float]]] = {}
        bucket = _BUCKET_SQL[granularity]
        cols = ", ".join(f"COUNT({m}), TOTAL({m}), MIN({m}), MAX({m})" for m in METRICS)
        for row in self.db.read(f"SELECT {bucket} AS b, {cols} FROM metrics WHERE "
                                "variant_id=? GROUP BY b", (variant_id,)):
            slot = acc.setdefault(float(row[0]), {})
            for i, name in enumerate(METRICS):
                n, total, lo, hi = row[1 + 4 * i:5 + 4 * i]
                if n:
                    _merge(slot, name, int(n), float(total), float(lo), float(hi))
        for b, name, n, total, lo, hi in self.db.read(
                "SELECT bucket, name, n, total, lo, hi FROM metric_rollups WHERE variant_id=? "
                "AND granularity=?", (variant_id, granularity.value)):
            _merge(acc.setdefault(float(b), {}), str(name), int(n), float(total),
                   float(lo), float(hi))
        out = []
        for b in sorted(acc):
            if since <= b < until:
                stats = {k: MetricStats(int(v[0]), v[1] / v[0], v[2], v[3])
                         for k, v in acc[b].items()}
                out.append(Rollup(variant_id, granularity, b,
                                  stats["success_rate"].n if "success_rate" in stats else 0,
                                  stats))
        return out

    def apply_retention(self, now: float) -> int:
        """Fold raw records older than the retention into rollups, then drop them.

        Returns the number of raw records removed. All-or-nothing.
        """
        cutoff = now - self.retention_s
        cols = ", ".join(f"COUNT({m}), TOTAL({m}), MIN({m}), MAX({m})" for m in METRICS)
        with self.db.transaction() as conn:
            for gran, bucket in _BUCKET_SQL.items():
                rows = conn.execute(f"SELECT variant_id, {bucket} AS b, {cols} FROM metrics "
                                    "WHERE ts<? GROUP BY variant_id, b", (cutoff,)).fetchall()
                for row in rows:
                    for i, name in enumerate(METRICS):
                        n, total, lo, hi = row[2 + 4 * i:6 + 4 * i]
                        if n:
                            conn.execute(
                                "INSERT INTO metric_rollups VALUES (?,?,?,?,?,?,?,?) ON CONFLICT"
                                "(variant_id, granularity, bucket, name) DO UPDATE SET "
                                "n=n+excluded.n, total=total+excluded.total, "
                                "lo=MIN(lo, excluded.lo), hi=MAX(hi, excluded.hi)",
                                (row[0], gran.value, row[1], name, n, total, lo, hi))
            return int(conn.execute("DELETE FROM metrics WHERE ts<?", (cutoff,)).rowcount)


def _merge(slot: dict[str, list[float]], name: str, n: int, total: float, lo: float,
           hi: float) -> None:
    cur = slot.get(name)
    if cur is None:
        slot[name] = [n, total, lo, hi]
    else:
        cur[0] += n
        cur[1] += total
        cur[2] = min(cur[2], lo)
        cur[3] = max(cur[3], hi)
