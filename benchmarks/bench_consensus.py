"""Benchmarks for swarmvar.consensus (issue 4); run: .venv/bin/python benchmarks/bench_consensus.py

1. hierarchical trimmed mean over 1,000,000 estimates (tree of fan-out 8, leaves of
   4096), target <= 20 ms, beside numpy.median on the same array;
2. combine() of 7 signed estimates, Ed25519 checks included, target <= 1 ms median,
   beside the 7 bare signature verifications;
3. approximate agreement among 7 in-process nodes (f = 2, equivocating adversary) to
   eps = 1e-9 relative: rounds (target: within the Dolev et al. bound) and time;
4. the default (tempered) weighting's cost per beat for 5 agents at two levels, online
   (TemperedWeights.update + weights) and from a 1000-day TrackRecord, beside the
   previous track-record weights (500-day FZ0 sums) in the same run: target <= 2x
   and <= 100 us.

``main(quick=True)`` runs the same code on small loads (seconds).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import median_seconds, print_table  # noqa: E402

from swarmvar.consensus import (  # noqa: E402
    DEFAULT_POLICY,
    KeyRing,
    Loss,
    Policy,
    TemperedWeights,
    TrackRecord,
    Weighting,
    agent_weights,
    aggregate_tree,
    combine,
    private_key_from_seed,
    rounds_needed,
    run_agreement,
    sign_estimate,
    signing_bytes,
)
from swarmvar.types import Estimate  # noqa: E402

Row = tuple[str, str, str, str, bool]


def _median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_hierarchy(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(0)
    n = 100_000 if quick else 1_000_000
    x = rng.lognormal(np.log(0.02), 0.3, size=n)
    f = n // 10
    x[rng.choice(n, size=f // 2, replace=False)] = 1e300  # Byzantine extremes
    # interleave the two so both see the same load on a shared machine
    tree_t, numpy_t = [], []
    for _ in range(3):
        aggregate_tree(x).trimmed_mean(f)
        np.median(x)
    for _ in range(5 if quick else 31):
        t0 = time.perf_counter()
        aggregate_tree(x).trimmed_mean(f)
        t1 = time.perf_counter()
        np.median(x)
        t2 = time.perf_counter()
        tree_t.append(t1 - t0)
        numpy_t.append(t2 - t1)
    tree_ms, numpy_ms = statistics.median(tree_t) * 1e3, statistics.median(numpy_t) * 1e3
    best_ms = min(tree_t) * 1e3
    result = aggregate_tree(x).trimmed_mean(f)
    exact = float(np.sort(x)[f : n - f].mean())
    err = abs(result.value - exact)
    return [
        (
            f"hierarchical trimmed mean, n={n:.0e} (ms, median)",
            f"{tree_ms:.1f} (best {best_ms:.1f})",
            "<= 20" if not quick else "report",
            f"numpy.median {numpy_ms:.1f} (best {min(numpy_t) * 1e3:.1f})",
            tree_ms <= 20.0 or quick,
        ),
        (
            "  its error vs exact (bound)",
            f"{err:.1e}",
            f"<= {result.bound:.1e}",
            f"exact {exact:.6f}",
            err <= result.bound,
        ),
    ]


def bench_combine(quick: bool = False) -> list[Row]:
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(7)}
    now = datetime(2024, 3, 1, tzinfo=UTC)
    repeats = 31 if quick else 301
    batches = []
    for seq in range(1, repeats + 4):
        batch = []
        for i, (agent, key) in enumerate(keys.items()):
            v = 0.02 + 0.001 * i
            e = Estimate(
                agent, "spx", 0.99, 1, v, 1.25 * v, (0.9 * v, 1.1 * v), (1.1 * v, 1.4 * v), now, seq
            )
            batch.append(sign_estimate(e, key))
        batches.append(batch)
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    policy = Policy(f=2)
    public = {a: k.public_key() for a, k in keys.items()}

    def verify_only(batch: list[Estimate]) -> None:
        for e in batch:
            public[e.agent_id].verify(e.signature, signing_bytes(e))  # type: ignore[arg-type]

    # interleaved, one combine then the same batch's bare verifications: both see the
    # same load on a shared machine
    combine_t, verify_t = [], []
    for k, batch in enumerate(batches):
        t0 = time.perf_counter()
        combine(batch, policy, keyring=ring, now=now)
        t1 = time.perf_counter()
        verify_only(batch)
        t2 = time.perf_counter()
        if k >= 2:  # warm-up
            combine_t.append(t1 - t0)
            verify_t.append(t2 - t1)
    combine_ms = statistics.median(combine_t) * 1e3
    verify_ms = statistics.median(verify_t) * 1e3
    return [
        (
            "combine 7 signed estimates (ms, median)",
            f"{combine_ms:.3f}",
            "<= 1",
            f"7 bare Ed25519 verifies {verify_ms:.3f}",
            combine_ms <= 1.0,
        )
    ]


def bench_weighting(quick: bool = False) -> list[Row]:
    """Per-beat cost of the agents' weights, new (tempered) beside old (500-day FZ0 sums)."""
    rng = np.random.default_rng(2)
    agents, alphas = tuple(f"a{i}" for i in range(5)), (0.99, 0.975)
    days = 1000
    r = rng.normal(0, 0.01, days)
    var = {a: np.abs(rng.normal(z * 0.01, 0.002, (days, 5)))
           for a, z in zip(alphas, (2.33, 1.96), strict=True)}
    records = [TrackRecord(agents, r, a, var[a], var[a] * 1.2) for a in alphas]
    old = Policy(f=1, weighting=Weighting.TRACK_RECORD, loss=Loss.FZ0, window=500)
    acc = TemperedWeights(agents, alphas, window=DEFAULT_POLICY.window or days)
    v_day = np.stack([var[a][0] for a in alphas])
    e_day = v_day * 1.2

    def online() -> None:
        acc.update(-0.012, v_day, e_day)
        acc.weights()

    repeat = 200 if quick else 3000
    old_s, online_s, record_s = [], [], []
    for _ in range(3):  # interleaved rounds: each figure sees the same load
        old_s.append(median_seconds(lambda: agent_weights(agents, old, records), repeat // 3, 5))
        online_s.append(median_seconds(online, repeat // 3, 5))
        record_s.append(median_seconds(
            lambda: agent_weights(agents, DEFAULT_POLICY, records), repeat // 3, 5))
    old_us = statistics.median(old_s) * 1e6
    online_us = statistics.median(online_s) * 1e6
    record_us = statistics.median(record_s) * 1e6
    return [
        ("tempered weights online, 5 agents x 2 levels (us/beat)", f"{online_us:.1f}",
         "<= 2x ref, <= 100", f"old 500-day FZ0-sum weights {old_us:.1f}",
         online_us <= min(2 * old_us, 100.0)),
        ("  from a 1000-day TrackRecord, as combine does (us)", f"{record_us:.1f}",
         "report", f"ratio to old {record_us / old_us:.2f}x", True),
    ]


def bench_agreement(quick: bool = False) -> list[Row]:
    rng = np.random.default_rng(1)
    honest = rng.uniform(0.015, 0.035, size=5)

    def equivocate(rnd: int, values: np.ndarray) -> np.ndarray:
        side = np.where(np.arange(values.size) % 2 == 0, values.min() - 1.0, values.max() + 1.0)
        return np.repeat(side[:, None], 2, axis=1)

    result = run_agreement(honest, 2, eps=1e-9, adversary=equivocate)
    ms = _median_ms(lambda: run_agreement(honest, 2, eps=1e-9, adversary=equivocate),
                    3 if quick else 21)
    bound = rounds_needed(float(np.ptp(honest)), result.target, 7, 2)
    return [
        (
            "approx. agreement 7 nodes f=2 eps=1e-9: rounds",
            str(result.rounds),
            f"<= {bound} (c={result.factor:g})",
            f"spread {result.spreads[0]:.1e} -> {result.spreads[-1]:.1e}",
            result.converged and result.rounds <= bound,
        ),
        ("  time (ms)", f"{ms:.2f}", "report", f"{ms / max(result.rounds, 1):.3f} per round", True),
    ]


def main(quick: bool = False) -> None:
    rows = (bench_hierarchy(quick) + bench_combine(quick) + bench_weighting(quick)
            + bench_agreement(quick))
    print_table(
        [(*r[:4], "pass" if r[4] else "FAIL") for r in rows],
        header=("metric", "measured", "target", "reference (same run)", "ok"),
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
