"""Benchmarks of the variant lifecycle against the issue's targets.

Run standalone: ``.venv/bin/python benchmarks/bench_evolution.py [--big-mb 1024]``.
Each row prints the measured figure beside the issue's target, the design
document's figure, and a reference measured in the same run on the same
machine (the floor the operation sits on), so that a noisy shared machine
can be told apart from a slow implementation.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmvar.evolution import (
    BreakerConfig,
    BreakerSnapshot,
    CanaryConfig,
    Database,
    MemoryVariantStore,
    MetricRecord,
    MetricsStore,
    MetricStats,
    SqliteVariantStore,
    StateConfig,
    StateStore,
    agent_profile,
    candidate,
    new_variant,
    select,
    start_canary,
)

MB = 1 << 20
CONSTRUCTORS = {f"Model{i}": ("a", "b", "c") for i in range(10)}


@dataclass
class Row:
    metric: str
    measured: float
    unit: str
    target: float
    spec: str
    reference: str
    higher_is_better: bool

    @property
    def ok(self) -> bool:
        return self.measured >= self.target if self.higher_is_better else \
            self.measured <= self.target


def bench_lookup(home: Path, quick: bool = False) -> Row:
    db = Database(home / "lookup.sqlite")
    store = SqliteVariantStore(db, max_variants=100)
    ids = [store.add(new_variant(f"Model{i % 10}", {"a": i * 0.01, "b": "x"}, CONSTRUCTORS,
                                 now=float(i), requirements={"numpy": "1.26"})).id
           for i in range(100)]
    rng = np.random.default_rng(0)
    order = [ids[i] for i in rng.integers(0, len(ids), 2_000 if quick else 20_000)]
    for vid in order[:1000]:
        store.get(vid)
    times = np.empty(len(order))
    for i, vid in enumerate(order):
        t = time.perf_counter_ns()
        store.get(vid)
        times[i] = time.perf_counter_ns() - t
    raw = sqlite3.connect(db.path)
    ref = np.empty(len(order))
    for i, vid in enumerate(order):
        t = time.perf_counter_ns()
        raw.execute("SELECT body FROM variants WHERE id=?", (vid,)).fetchone()
        ref[i] = time.perf_counter_ns() - t
    raw.close()
    db.close()
    p99, ref99 = np.percentile(times, 99) / 1e3, np.percentile(ref, 99) / 1e3
    return Row("variant lookup p99 (SQLite, 100 variants)", p99, "us", 50.0, "< 1 ms",
               f"bare SQLite row p99 {ref99:.1f} us", False)


def bench_selection(quick: bool = False) -> Row:
    # 20 live variants over 10 agent classes: 10 champions, 3 canaries in
    # flight, 7 drafts (never selected, but scanned)
    now = 0.0
    store = MemoryVariantStore()
    cands = []
    for i in range(20):
        v = store.add(new_variant(f"Model{i % 10}", {"a": float(i)}, CONSTRUCTORS, now=now,
                                  requirements={"numpy": "1.26", "jax": "0.4"}))
        if i < 10:
            v = store.promote(v, now)
        elif i < 13:
            v = start_canary(store, v, CanaryConfig(), now)
        stats = {"success_rate": MetricStats(10, 0.9 + i / 1000, 0.8, 1.0),
                 "latency_s": MetricStats(10, 0.05, 0.01, 0.1)}
        cands.append(candidate(v, stats, BreakerSnapshot(), BreakerConfig()))
    agents = [agent_profile(f"agent-{i}", {"numpy": "2.0", "jax": "0.4.30"},
                            preferences={"Model1": 2, "Model3": 1}) for i in range(1000)]
    n = 0
    t = time.perf_counter()
    while time.perf_counter() - t < (0.2 if quick else 2.0):
        for a in agents:
            select(a, cands)
        n += len(agents)
    rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(50):
        for a in agents:
            hashlib.sha256(a.agent_id.encode()).digest()
    ref = 50 * len(agents) / (time.perf_counter() - t)
    return Row("selections/s (20 live variants, 3 canaries)", rate, "/s", 50_000, "1,000/s",
               f"bare SHA-256 of agent id {ref:,.0f}/s", True)


def bench_metrics(home: Path, quick: bool = False) -> Row:
    db = Database(home / "metrics.sqlite")
    store = MetricsStore(db)
    rng = np.random.default_rng(1)
    batches = []
    for b in range(2 if quick else 20):
        ts = 1.7e9 + b * 10_000 + np.arange(10_000, dtype=float)
        sr, lat, br, kp = (rng.uniform(0.9, 1, 10_000), rng.exponential(0.05, 10_000),
                           rng.uniform(0, 0.05, 10_000), rng.uniform(0, 1, 10_000))
        batches.append([MetricRecord(f"v{i % 20}", float(ts[i]), float(sr[i]), float(lat[i]),
                                     0.5, 40.0, float(br[i]), float(kp[i]), 0.001)
                        for i in range(10_000)])
    t = time.perf_counter()
    for batch in batches:
        store.record(batch)
    rate = sum(map(len, batches)) / (time.perf_counter() - t)
    raw = sqlite3.connect(home / "raw.sqlite", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE TABLE m (a,b,c,d,e,f,g,h,i)")
    rows = [[r.row() for r in batch] for batch in batches]
    t = time.perf_counter()
    for batch in rows:
        raw.execute("BEGIN")
        raw.executemany("INSERT INTO m VALUES (?,?,?,?,?,?,?,?,?)", batch)
        raw.execute("COMMIT")
    ref = sum(map(len, rows)) / (time.perf_counter() - t)
    raw.close()
    db.close()
    return Row("metric records/s (batches of 10,000)", rate, "/s", 100_000, "10,000/s",
               f"bare executemany, no index/checks {ref:,.0f}/s", True)


def bench_state_writes(home: Path, fsync: bool, quick: bool = False) -> Row:
    db = Database(home / f"states-{fsync}.sqlite")
    store = StateStore(db, home / f"states-{fsync}", StateConfig(fsync=fsync))
    rng = np.random.default_rng(2)
    states = [rng.bytes(MB) for _ in range(16)]
    n = 20 if quick else 200
    t = time.perf_counter()
    for i in range(n):
        store.put(f"agent-{i % 16}", states[i % 16], now=float(i))
    rate = n / (time.perf_counter() - t)
    path = home / "raw.bin"
    t = time.perf_counter()
    m = 5 if quick else 50
    for i in range(m):
        with open(path, "wb") as fh:
            fh.write(states[i % 16])
            fh.flush()
            if fsync:
                os.fdatasync(fh.fileno())
    ref = m / (time.perf_counter() - t)
    db.close()
    what = "durable, one at a time" if fsync else "crash-atomic, no fsync"
    return Row(f"state writes/s (1 MB random, {what})", rate, "/s", 100, "100/s",
               f"bare 1 MB write{'+fdatasync' if fsync else ''} {ref:,.0f}/s", True)


def bench_state_batches(home: Path, quick: bool = False) -> Row:
    db = Database(home / "batches.sqlite")
    store = StateStore(db, home / "batches", StateConfig())
    rng = np.random.default_rng(4)
    states = {f"agent-{i}": rng.bytes(MB) for i in range(16)}
    rounds = 2 if quick else 12
    t = time.perf_counter()
    for r in range(rounds):
        store.put_many(states, now=float(r))
    rate = rounds * len(states) / (time.perf_counter() - t)
    db.close()
    return Row("state writes/s (1 MB, durable, put_many of 16 agents)", rate, "/s", 100,
               "100/s", "one beat's states flushed together", True)


def bench_big_read(home: Path, size_mb: int) -> Row:
    db = Database(home / "big.sqlite")
    store = StateStore(db, home / "big", StateConfig())
    data = np.random.default_rng(3).bytes(size_mb * MB)
    store.put("big", data, now=0.0)
    del data
    best = min(_timed(lambda: store.get("big", cached=False)) for _ in range(3))
    pack = next((home / "big" / "objects").iterdir())

    def bare() -> None:
        with open(pack, "rb") as fh:
            hashlib.sha256(fh.read()).digest()

    ref = min(_timed(bare) for _ in range(2))
    db.close()
    scale = 1024 / size_mb
    note = "" if size_mb == 1024 else f" (measured {size_mb} MB x{scale:g})"
    return Row(f"1 GB state read + verify, warm cache{note}", best * scale, "s", 1.0,
               "< 100 ms", f"bare read + one SHA-256 pass {ref * scale:.2f} s/GB", False)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(quick: bool = False, big_mb: int | None = None) -> None:
    """Run every benchmark and print the table (about 25-40 s; ``quick``: a few seconds,
    the same code on small loads, whose figures are not the targets' measurements)."""
    size_mb = big_mb if big_mb is not None else (8 if quick else 1024)
    print(f"load average {os.getloadavg()[0]:.2f} before the run"
          f"{' (quick mode: small loads)' if quick else ''}")
    with tempfile.TemporaryDirectory(prefix="bench-evolution-") as tmp:
        home = Path(tmp)
        rows = [bench_lookup(home, quick), bench_selection(quick), bench_metrics(home, quick),
                bench_state_writes(home, fsync=True, quick=quick),
                bench_state_batches(home, quick),
                bench_state_writes(home, fsync=False, quick=quick),
                bench_big_read(home, size_mb)]
    header = f"{'metric':<56} {'measured':>14} {'target':>12} {'spec':>10}  {'ok':<4} reference"
    print(header)
    print("-" * len(header))
    for r in rows:
        cmp = ">=" if r.higher_is_better else "<="
        print(f"{r.metric:<56} {r.measured:>11,.1f} {r.unit:<2} {cmp}{r.target:>9,.0f} "
              f"{r.spec:>10}  {'PASS' if r.ok else 'FAIL':<4} {r.reference}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-mb", type=int, default=None,
                        help="size of the big-state read (extrapolated to 1 GB)")
    parser.add_argument("--quick", action="store_true", help="small loads, a few seconds")
    cli = parser.parse_args()
    main(quick=cli.quick, big_mb=cli.big_mb)
