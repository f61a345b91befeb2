"""Benchmarks for swarmvar.consensus (issue 4); run: .venv/bin/python benchmarks/bench_consensus.py

1. hierarchical trimmed mean over 1,000,000 estimates (tree of fan-out 8, leaves of
   4096), target <= 20 ms, beside numpy.median on the same array;
2. combine() of 7 signed estimates, Ed25519 checks included, target <= 1 ms median,
   beside the 7 bare signature verifications;
3. approximate agreement among 7 in-process nodes (f = 2, equivocating adversary) to
   eps = 1e-9 relative: rounds (target: within the Dolev et al. bound) and time.
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
from _table import print_table  # noqa: E402

from swarmvar.consensus import (  # noqa: E402
    KeyRing,
    Policy,
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


def bench_hierarchy() -> list[Row]:
    rng = np.random.default_rng(0)
    n = 1_000_000
    x = rng.lognormal(np.log(0.02), 0.3, size=n)
    f = n // 10
    x[rng.choice(n, size=f // 2, replace=False)] = 1e300  # Byzantine extremes
    # interleave the two so both see the same load on a shared machine
    tree_t, numpy_t = [], []
    for _ in range(3):
        aggregate_tree(x).trimmed_mean(f)
        np.median(x)
    for _ in range(31):
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
            "hierarchical trimmed mean, n=1e6 (ms, median)",
            f"{tree_ms:.1f} (best {best_ms:.1f})",
            "<= 20",
            f"numpy.median {numpy_ms:.1f} (best {min(numpy_t) * 1e3:.1f})",
            tree_ms <= 20.0,
        ),
        (
            "  its error vs exact (bound)",
            f"{err:.1e}",
            f"<= {result.bound:.1e}",
            f"exact {exact:.6f}",
            err <= result.bound,
        ),
    ]


def bench_combine() -> list[Row]:
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(7)}
    now = datetime(2024, 3, 1, tzinfo=UTC)
    repeats = 301
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
    it = iter(batches)
    combine_ms = _median_ms(lambda: combine(next(it), policy, keyring=ring, now=now), repeats, 2)
    public = {a: k.public_key() for a, k in keys.items()}
    sample = batches[0]

    def verify_only() -> None:
        for e in sample:
            public[e.agent_id].verify(e.signature, signing_bytes(e))  # type: ignore[arg-type]

    verify_ms = _median_ms(verify_only, repeats)
    return [
        (
            "combine 7 signed estimates (ms, median)",
            f"{combine_ms:.3f}",
            "<= 1",
            f"7 bare Ed25519 verifies {verify_ms:.3f}",
            combine_ms <= 1.0,
        )
    ]


def bench_agreement() -> list[Row]:
    rng = np.random.default_rng(1)
    honest = rng.uniform(0.015, 0.035, size=5)

    def equivocate(rnd: int, values: np.ndarray) -> np.ndarray:
        side = np.where(np.arange(values.size) % 2 == 0, values.min() - 1.0, values.max() + 1.0)
        return np.repeat(side[:, None], 2, axis=1)

    result = run_agreement(honest, 2, eps=1e-9, adversary=equivocate)
    ms = _median_ms(lambda: run_agreement(honest, 2, eps=1e-9, adversary=equivocate), 21)
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


def main() -> None:
    rows = bench_hierarchy() + bench_combine() + bench_agreement()
    print_table(
        [(*r[:4], "pass" if r[4] else "FAIL") for r in rows],
        header=("metric", "measured", "target", "reference (same run)", "ok"),
    )


if __name__ == "__main__":
    main()
