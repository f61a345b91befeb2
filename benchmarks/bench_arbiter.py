"""Benchmarks for swarmvar.arbiter (issue 13); run: .venv/bin/python benchmarks/bench_arbiter.py

1. One arbiter step (cores + aggregate + decide + PID) on a five-agent beat,
   serially and with the four cores on a 4-thread pool: median and p99,
   target <= 50 us serial, beside one ``combine`` of 5 signed estimates
   (the consensus the same beat runs), all interleaved in the same run;
2. the threat model's out-of-sample AUC (trained on the first half of the
   beats, scored on the second) beside the design's fixed model, on the
   S&P 500 and NASDAQ backtests (cached under /tmp; the first run computes
   them), and the S&P 500 model scored on NASDAQ. Quick mode: a simulated
   history instead of the backtests;
3. what live pacing and checkpoints add to a beat: the cadence's
   ``begin`` + ``mark`` + ``end`` (its wait left out) and one portfolio's
   ``checkpoint_state`` + ``restore_state`` (the swarm does the pair at each
   checkpoint and restart), beside one serial step, interleaved.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.arbiter import (  # noqa: E402
    SEED_MODEL,
    Arbiter,
    ArbiterConfig,
    ArbiterState,
    Cadence,
    cached_history,
    read_beat,
    roc_auc,
    step,
    threat_labels,
)
from swarmvar.arbiter.history import BeatHistory, simulated_history  # noqa: E402
from swarmvar.arbiter.replay import replay, threat_study  # noqa: E402
from swarmvar.consensus import (  # noqa: E402
    KeyRing,
    Policy,
    combine,
    private_key_from_seed,
    sign_estimate,
)
from swarmvar.types import Estimate  # noqa: E402

Row = tuple[str, str, str, str, str]


def _stats(samples: list[float]) -> tuple[float, float]:
    us = np.array(samples) * 1e6
    return float(np.median(us)), float(np.percentile(us, 99))


def bench_step(quick: bool) -> list[Row]:
    history = simulated_history(days=60)
    reports = list(history.beats())
    memory, signals = read_beat(ArbiterState().memory, reports[30])
    state = ArbiterState(memory=memory)
    config = ArbiterConfig()
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(5)}
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    now = datetime(2024, 3, 1, tzinfo=UTC)
    repeats = 300 if quick else 5000
    batches = [[sign_estimate(Estimate(a, "spx", 0.99, 1, 0.02 + 0.001 * i, 0.025 + 0.001 * i,
                                       (0.018, 0.022), (0.023, 0.03), now, seq), k)
                for i, (a, k) in enumerate(keys.items())] for seq in range(1, repeats + 21)]
    policy = Policy(f=1)
    serial, pooled, combined = [], [], []
    with ThreadPoolExecutor(4) as pool:
        for i in range(repeats + 20):  # interleaved: the three see the same load
            t0 = time.perf_counter()
            step(state, signals, config=config, model=SEED_MODEL, beat_seconds=0.004)
            t1 = time.perf_counter()
            step(state, signals, config=config, model=SEED_MODEL, beat_seconds=0.004,
                 pool=pool)
            t2 = time.perf_counter()
            combine(batches[i], policy, keyring=ring, now=now)
            t3 = time.perf_counter()
            if i >= 20:  # warm-up
                serial.append(t1 - t0)
                pooled.append(t2 - t1)
                combined.append(t3 - t2)
    (sm, sp), (pm, pp), (cm, cp) = _stats(serial), _stats(pooled), _stats(combined)
    faster = "serial" if sm <= pm else "4-thread pool"
    return [
        ("arbiter step, serial (us, median / p99)", f"{sm:.1f} / {sp:.1f}", "<= 50 median",
         f"combine 5 signed {cm:.1f} / {cp:.1f}", "pass" if sm <= 50 else "FAIL"),
        ("arbiter step, 4-thread pool (us, median / p99)", f"{pm:.1f} / {pp:.1f}", "",
         f"serial {sm:.1f}", f"faster: {faster}"),
    ]


def _study_rows(name: str, history: BeatHistory, other: BeatHistory | None) -> list[Row]:
    out = replay(history, Arbiter())
    s = threat_study(out.features[1:], out.breached[1:])
    rows: list[Row] = [(f"threat AUC out of sample, {name} (second half)",
                        f"{s.auc_trained:.3f}", "> design's",
                        f"design's fixed model {s.auc_seed:.3f}",
                        "pass" if s.auc_trained > s.auc_seed else "FAIL")]
    if other is not None:
        o = replay(other, Arbiter())
        x = o.features[1:]
        labels = threat_labels(list(o.breached[1:]), 5)
        half = slice(labels.size // 2, labels.size)
        trained = roc_auc(s.model.scores(x[: labels.size][half]), labels[half])
        seed = roc_auc(SEED_MODEL.scores(x[: labels.size][half]), labels[half])
        rows.append((f"threat AUC, {name} model on {other.name} (second half)",
                     f"{trained:.3f}", "> design's", f"design's fixed model {seed:.3f}",
                     "pass" if trained > seed else "FAIL"))
    return rows


def bench_threat(quick: bool) -> list[Row]:
    if quick:
        return _study_rows("simulated", simulated_history(days=400, seed=7), None)
    workers = min(2, os.cpu_count() or 1)
    sp = cached_history("sp500", workers=workers)
    nq = cached_history("nasdaq", workers=workers)
    return _study_rows("sp500", sp, nq) + _study_rows("nasdaq", nq, None)


def bench_overheads(quick: bool) -> list[Row]:
    history = simulated_history(days=80)
    arbiter = Arbiter()
    reports = list(history.beats())
    for rep in reports:
        arbiter.observe(rep, beat_seconds=0.004)
    name = reports[0].portfolio
    memory, signals = read_beat(ArbiterState().memory, reports[30])
    state, config = ArbiterState(memory=memory), ArbiterConfig()
    cadence = Cadence(config.pulse, sleep=lambda _s: None)  # the wait is not overhead
    repeats = 200 if quick else 3000
    stepped, paced, saved = [], [], []
    size = 0
    for i in range(repeats + 20):
        t0 = time.perf_counter()
        step(state, signals, config=config, model=SEED_MODEL, beat_seconds=0.004)
        t1 = time.perf_counter()
        cadence.begin()
        cadence.mark()
        cadence.end()
        t2 = time.perf_counter()
        blob = arbiter.checkpoint_state(name)
        arbiter.restore_state(name, blob)
        t3 = time.perf_counter()
        size = len(blob)
        if i >= 20:
            stepped.append(t1 - t0)
            paced.append(t2 - t1)
            saved.append(t3 - t2)
    (sm, sp), (pm, pp), (cm, cp) = _stats(stepped), _stats(paced), _stats(saved)
    return [
        ("cadence begin + mark + end, no wait (us, median / p99)", f"{pm:.1f} / {pp:.1f}", "",
         f"serial step {sm:.1f} / {sp:.1f}", ""),
        (f"arbiter checkpoint + restore, one portfolio, {size:,} bytes (us, median / p99)",
         f"{cm:.0f} / {cp:.0f}", "", f"serial step {sm:.1f} / {sp:.1f}", ""),
    ]


def main(quick: bool = False) -> None:
    load = os.getloadavg()[0]
    rows = bench_step(quick) + bench_threat(quick) + bench_overheads(quick)
    print(f"load average {load:.2f} (1 min) at the start; {os.cpu_count()} CPUs")
    print_table(rows, header=("metric", "measured", "target", "reference (same run)", "ok"))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
