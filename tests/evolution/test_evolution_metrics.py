"""Metric records, rollups (checked against a brute-force numpy reference) and retention."""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pytest

from swarmvar.evolution import (
    Database,
    Granularity,
    InvalidMetric,
    MetricRecord,
    MetricsStore,
)

DAY = 86_400.0
T0 = 1_700_000_000.0  # 2023-11-14


def records(n: int, seed: int, span: float, vid: str = "v1") -> list[MetricRecord]:
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.uniform(0, span, n))
    out = []
    for i, t in enumerate(ts):
        out.append(MetricRecord(
            vid, float(t), float(rng.uniform(0.8, 1)), float(rng.exponential(0.05)),
            float(rng.uniform(0, 2)), float(rng.uniform(10, 100)),
            breach_rate=float(rng.uniform(0, 0.05)) if i % 3 else None,
            kupiec_p=float(rng.uniform()) if i % 3 else None,
            pinball_loss=float(rng.exponential(0.001)) if i % 3 else None))
    return out


def bucket_of(t: float, g: Granularity) -> float:
    if g is Granularity.HOUR:
        return t - t % 3600
    if g is Granularity.DAY:
        return t - t % DAY
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return float(calendar.timegm((d.year, d.month, 1, 0, 0, 0)))


def reference(recs: list[MetricRecord], g: Granularity, name: str) -> dict[float, tuple]:
    groups: dict[float, list[float]] = {}
    for r in recs:
        value = getattr(r, name)
        if value is not None:
            groups.setdefault(bucket_of(r.at, g), []).append(value)
    return {b: (len(v), float(np.mean(v)), min(v), max(v)) for b, v in groups.items()}


@pytest.fixture
def metrics(db: Database) -> MetricsStore:
    """On SQLite and on PostgreSQL (the ``db`` fixture): one suite for both."""
    return MetricsStore(db, retention_s=30 * DAY)


@pytest.mark.parametrize("g", list(Granularity))
def test_rollups_match_brute_force(metrics: MetricsStore, g: Granularity) -> None:
    recs = records(3000, 1, 70 * DAY)
    metrics.record(recs)
    metrics.record(records(50, 2, 5 * DAY, vid="other"))
    got = metrics.rollups("v1", g)
    for name in ("success_rate", "latency_s", "kupiec_p"):
        ref = reference(recs, g, name)
        assert [r.bucket for r in got if name in r.stats] == sorted(ref)
        for r in got:
            if name not in r.stats:
                continue
            n, mean, lo, hi = ref[r.bucket]
            st = r.stats[name]
            assert (st.n, st.min, st.max) == (n, lo, hi)
            assert st.mean == pytest.approx(mean, rel=1e-12)


def test_retention_keeps_rollups_exact(metrics: MetricsStore) -> None:
    recs = records(2000, 3, 90 * DAY)
    metrics.record(recs)
    before = {g: metrics.rollups("v1", g) for g in Granularity}
    now = T0 + 90 * DAY
    dropped = metrics.apply_retention(now)
    assert dropped == sum(r.at < now - 30 * DAY for r in recs) > 0
    assert metrics.count("v1") == len(recs) - dropped
    for g in Granularity:
        after = metrics.rollups("v1", g)
        assert [r.bucket for r in after] == [r.bucket for r in before[g]]
        for a, b in zip(after, before[g], strict=True):
            assert a.records == b.records
            for name, st in b.stats.items():
                assert a.stats[name].n == st.n
                assert a.stats[name].mean == pytest.approx(st.mean, rel=1e-12)
                assert (a.stats[name].min, a.stats[name].max) == (st.min, st.max)
    assert metrics.apply_retention(now) == 0  # idempotent
    assert [r.records for r in metrics.rollups("v1", Granularity.MONTH)] == \
        [r.records for r in before[Granularity.MONTH]]


def test_summary_window(metrics: MetricsStore) -> None:
    recs = records(500, 4, 10 * DAY)
    metrics.record(recs)
    lo, hi = T0 + 2 * DAY, T0 + 3 * DAY
    inside = [r.latency_s for r in recs if lo <= r.at < hi]
    s = metrics.summary("v1", lo, hi)
    assert s["latency_s"].n == len(inside)
    assert s["latency_s"].mean == pytest.approx(np.mean(inside))
    assert metrics.summary("v1", 0, 1) == {}


@pytest.mark.parametrize(("field", "value"), [
    ("success_rate", 1.5), ("latency_s", -1.0), ("throughput", float("nan")),
    ("kupiec_p", 2.0), ("at", -5.0), ("variant_id", ""), ("resource_usage", True),
    ("latency_s", "0.5"), ("success_rate", None),
])
def test_bad_record_stores_nothing(metrics: MetricsStore, field: str, value: object) -> None:
    good = records(10, 5, DAY)
    import dataclasses
    bad = dataclasses.replace(good[4], **{field: value})
    expected = {"at": "time", "variant_id": "variant id"}.get(field, field)
    with pytest.raises(InvalidMetric, match=expected):
        metrics.record(good[:4] + [bad] + good[5:])
    assert metrics.count() == 0


def test_numpy_scalars_are_accepted(metrics: MetricsStore) -> None:
    rec = MetricRecord("v", np.float64(T0), np.float64(0.5), np.float64(0.1))
    assert metrics.record([rec]) == 1
    assert metrics.summary("v", 0, 2 * T0)["success_rate"].mean == 0.5
