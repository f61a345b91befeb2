"""Benchmarks for swarmvar.arbiter (issue 13); run: .venv/bin/python benchmarks/bench_arbiter.py

1. One arbiter step (cores + aggregate + decide + PID) on a beat of as many
   agents as the default swarm (``len(DEFAULT_AGENTS)``, six), serially and
   with the four cores on a 4-thread pool: median and p99, target <= 50 us
   serial, beside one ``combine`` of as many signed estimates (the consensus
   the same beat runs), all interleaved in the same run;
2. the threat model's out-of-sample AUC (trained on the first half of the
   beats, scored on the second) beside the design's fixed model, on the
   S&P 500 and NASDAQ backtests of the default swarm (cached under /tmp; the
   first run computes them), each series' model also scored on the other,
   with the DeLong standard error and a moving-block bootstrap interval
   (blocks of 50 beats) of the difference; then a few training options
   (L2 strength, both series pooled) chosen on the first halves only and
   checked on the second. Quick mode: a simulated history instead;
3. what live pacing and checkpoints add to a beat: the cadence's
   ``begin`` + ``mark`` + ``end`` (its wait left out) and one portfolio's
   ``checkpoint_state`` + ``restore_state`` (the swarm does the pair at each
   checkpoint and restart; the default roster's size again), beside one
   serial step, interleaved;
4. the drift drill (:mod:`swarmvar.arbiter.drill`): each default agent in
   turn, from day 1000 of the S&P 500 and NASDAQ backtests, scaled by 0.8,
   0.6, 0.4 or 1.8 or frozen, replayed through the default arbiter (with its
   per-agent rule), the swarm-level rule alone (``agent_p=0``, the default
   before it) and the design's thresholds (0.85, no per-agent rule): beats
   to the first ALERT naming the agent and to its quarantine (medians over
   the agents), how many were quarantined (within 60 beats), quarantines of
   other agents; and on clean data every quarantine. The per-agent p was
   chosen on the S&P 500 (full mode also prints that selection: agents drifting
   from days 700 and 1500, p of 0.01 / 0.001 / 0.0001); NASDAQ is held out.
   Quick mode: a simulated history;
5. the per-agent rule's count test on a calibrated agent: Bernoulli(1 - α)
   breaches (one uniform a beat, so the 0.99 and 0.975 breaches are nested as
   one agent's are) fed through the signals' exponentially weighted rate and
   :func:`~swarmvar.arbiter.signals.breach_tail_p` (behind their ``z > 2``
   gate), from the signals' start (the rate at ``1 - α``), 10,000 paths of
   2,500 beats (about ten years): the per-beat rate of ``p < agent_p`` and
   each path's chance of any crossing, at one level, at either level (the
   rule's ``min``) and for six agents (assumed independent), beside the
   nominal ``agent_p``. The "VaR below the others' intervals" condition is
   not simulated: these are the count test's figures alone. The rate is
   checked against :func:`~swarmvar.arbiter.read_beat` on a simulated history
   (same tail p-values, bit for bit). Quick mode: 100 paths.

The beats of 1 and 3 are simulated (:func:`~swarmvar.arbiter.history.simulated_history`
with one volatility scale per default agent): the step's cost depends on the
number of agents, not on which models they are.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
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
from swarmvar.arbiter.decide import SEED_THRESHOLDS, Thresholds  # noqa: E402
from swarmvar.arbiter.drill import Drift, DrillResult, drifted, drill  # noqa: E402
from swarmvar.arbiter.history import BeatHistory, simulated_history  # noqa: E402
from swarmvar.arbiter.replay import ReplayOutcome, replay, threat_study  # noqa: E402
from swarmvar.arbiter.signals import SignalConfig, breach_tail_p  # noqa: E402
from swarmvar.arbiter.threat import (  # noqa: E402
    AucComparison,
    ThreatModel,
    block_bootstrap_auc_difference,
    compare_auc,
    fit_threat_model,
)
from swarmvar.consensus import (  # noqa: E402
    KeyRing,
    Policy,
    combine,
    private_key_from_seed,
    sign_estimate,
)
from swarmvar.models import DEFAULT_AGENTS  # noqa: E402
from swarmvar.types import Estimate  # noqa: E402

Row = tuple[str, str, str, str, str]


def _stats(samples: list[float]) -> tuple[float, float]:
    us = np.array(samples) * 1e6
    return float(np.median(us)), float(np.percentile(us, 99))


#: One agent per default agent (six); the first five are the simulated history's defaults.
ROSTER = len(DEFAULT_AGENTS)
SCALES = tuple(float(s) for s in np.resize([0.6, 1.0, 1.0, 1.1, 1.3, 0.9], ROSTER))


def bench_step(quick: bool) -> list[Row]:
    history = simulated_history(days=60, scales=SCALES)
    reports = list(history.beats())
    memory, signals = read_beat(ArbiterState().memory, reports[30])
    state = ArbiterState(memory=memory)
    config = ArbiterConfig()
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(ROSTER)}
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
        (f"arbiter step, {ROSTER} agents, serial (us, median / p99)", f"{sm:.1f} / {sp:.1f}",
         "<= 50 median",
         f"combine {ROSTER} signed {cm:.1f} / {cp:.1f}", "pass" if sm <= 50 else "FAIL"),
        ("arbiter step, 4-thread pool (us, median / p99)", f"{pm:.1f} / {pp:.1f}", "",
         f"serial {sm:.1f}", f"faster: {faster}"),
    ]


Beats = tuple[np.ndarray, np.ndarray]  # features (T, F), labels (T,) of one series


def _replayed(history: BeatHistory, horizon: int = 5) -> tuple[ReplayOutcome, Beats]:
    """One replay of ``history`` through a fresh arbiter, and its beats' features and labels
    (what every threat row of the series reads)."""
    out = replay(history, Arbiter())
    labels = threat_labels(list(out.breached[1:]), horizon)
    return out, (out.features[1:][: labels.size], labels)


def _bootstrap(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return block_bootstrap_auc_difference(a, b, y, np.random.default_rng(0), block=50,
                                          reps=2000)


def _compare(model: ThreatModel, beats: Beats, part: slice) -> tuple[AucComparison,
                                                                      tuple[float, float]]:
    x, y = beats[0][part], beats[1][part]
    a, b = model.scores(x), SEED_MODEL.scores(x)
    return compare_auc(a, b, y), _bootstrap(a, b, y)


def _second_half(beats: Beats) -> slice:
    return slice(beats[1].size // 2, beats[1].size)


def _study_rows(name: str, replayed: tuple[ReplayOutcome, Beats],
                others: dict[str, Beats]) -> list[Row]:
    out, beats = replayed
    s = threat_study(out.features[1:], out.breached[1:])
    # the study scored the same second half (its test beats): its AUCs and DeLong se are
    # this comparison's; only the bootstrap interval is new
    half = _second_half(beats)
    x, y = beats[0][half], beats[1][half]
    ci = _bootstrap(s.model.scores(x), SEED_MODEL.scores(x), y)
    difference = s.auc_trained - s.auc_seed
    rows: list[Row] = [(f"threat AUC out of sample, {name} (second half)",
                        f"{s.auc_trained:.3f}", "> 0.55; diff not < -1.96 se",
                        f"design's fixed model {s.auc_seed:.3f}; diff {difference:+.3f}, "
                        f"DeLong se {s.difference_se:.3f}, block-bootstrap 95% "
                        f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
                        "pass" if s.auc_trained > 0.55
                        and difference > -1.96 * s.difference_se else "FAIL")]
    flags = out.breached[1:][beats[1].size // 2:]
    days = np.flatnonzero(flags)
    episodes = int(days.size > 0) + int(np.sum(np.diff(days) > 5))
    rows.append((f"{name}, second half: positive beats / breach days / episodes (> 5 apart)",
                 f"{int(y.sum())} / {days.size} / {episodes}", "", "", ""))
    for other, ob in others.items():
        c, ci = _compare(s.model, ob, _second_half(ob))
        rows.append((f"threat AUC, {name} model on {other} (second half)",
                     f"{c.auc_a:.3f}", "> 0.55",
                     f"design's fixed model {c.auc_b:.3f}; diff {c.difference:+.3f}, "
                     f"DeLong se {c.se:.3f}, block-bootstrap 95% [{ci[0]:+.3f}, {ci[1]:+.3f}]",
                     "pass" if c.auc_a > 0.55 else "FAIL"))
    return rows


def _option_rows(series: dict[str, Beats]) -> list[Row]:
    """Training options, chosen on the first halves only (train on the first quarter,
    score the second, every series pair), then checked on the second halves."""
    def fitted(parts: dict[str, slice], l2: float, pooled: bool) -> dict[str, ThreatModel]:
        if pooled:
            x = np.vstack([series[n][0][parts[n]] for n in series])
            y = np.concatenate([series[n][1][parts[n]] for n in series])
            model = fit_threat_model(x, y, l2=l2)
            return dict.fromkeys(series, model)
        return {n: fit_threat_model(series[n][0][parts[n]], series[n][1][parts[n]], l2=l2)
                for n in series}

    def mean_auc(models: dict[str, ThreatModel], tests: dict[str, slice]) -> float:
        return float(np.mean([roc_auc(m.scores(series[t][0][tests[t]]), series[t][1][tests[t]])
                              for m in {id(m): m for m in models.values()}.values()
                              for t in series]))

    halves = {n: b[1].size // 2 for n, b in series.items()}
    quarter = {n: slice(0, h // 2 - 5) for n, h in halves.items()}
    q_test = {n: slice(h // 2, h - 5) for n, h in halves.items()}
    half = {n: slice(0, h - 5) for n, h in halves.items()}
    h_test = {n: slice(h, series[n][1].size) for n, h in halves.items()}
    seed = [float(np.mean([roc_auc(SEED_MODEL.scores(series[t][0][p[t]]), series[t][1][p[t]])
                           for t in series])) for p in (q_test, h_test)]
    rows: list[Row] = []
    for label, l2, pooled in (("per series, L2 1 (default)", 1.0, False),
                              ("per series, L2 100", 100.0, False),
                              ("per series, L2 10,000", 1e4, False),
                              ("both series pooled, L2 1", 1.0, True),
                              ("both series pooled, L2 100", 100.0, True)):
        sel = mean_auc(fitted(quarter, l2, pooled), q_test)
        held = mean_auc(fitted(half, l2, pooled), h_test)
        rows.append((f"threat option: {label} (mean AUC, first halves / held-out halves)",
                     f"{sel:.3f} / {held:.3f}", "",
                     f"design's fixed model {seed[0]:.3f} / {seed[1]:.3f}", ""))
    return rows


def bench_threat(quick: bool) -> list[Row]:
    if quick:
        return _study_rows("simulated", _replayed(simulated_history(days=400, seed=7)), {})
    workers = min(2, os.cpu_count() or 1)
    sp = _replayed(cached_history("sp500", workers=workers))  # one replay per series
    nq = _replayed(cached_history("nasdaq", workers=workers))
    return (_study_rows("sp500", sp, {"nasdaq": nq[1]})
            + _study_rows("nasdaq", nq, {"sp500": sp[1]})
            + _option_rows({"sp500": sp[1], "nasdaq": nq[1]}))


def bench_overheads(quick: bool) -> list[Row]:
    history = simulated_history(days=80, scales=SCALES)
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
        (f"arbiter checkpoint + restore, one portfolio of {ROSTER} agents, {size:,} bytes "
         "(us, median / p99)",
         f"{cm:.0f} / {cp:.0f}", "", f"serial step {sm:.1f} / {sp:.1f}", ""),
    ]


DRIFTS: tuple[tuple[str, float | None], ...] = (
    ("scale 0.8", 0.8), ("scale 0.6", 0.6), ("scale 0.4", 0.4), ("scale 1.8", 1.8),
    ("frozen", None))


def _median(values: list[int | None]) -> str:
    """Median over the runs, a run that never happened counting as infinitely late."""
    m = statistics.median(math.inf if v is None else v for v in values)
    return "never" if math.isinf(m) else f"{m:g}"


def bench_drill(quick: bool) -> list[Row]:
    agents_of: dict[str, tuple[str, ...]]
    if quick:
        series = {"simulated": simulated_history(days=200, seed=3,
                                                 scales=(1.0, 1.0, 1.05, 1.1, 1.15, 1.2))}
        start, agents_of = 60, {"simulated": ("C",)}
    else:
        workers = min(2, os.cpu_count() or 1)
        series = {d: cached_history(d, workers=workers) for d in ("sp500", "nasdaq")}
        start, agents_of = 1000, {d: h.agents for d, h in series.items()}
    setups = (("default", Thresholds()), ("swarm rule alone", Thresholds(agent_p=0.0)),
              ("design 0.85", SEED_THRESHOLDS))
    rows: list[Row] = []
    for name, history in series.items():
        # each drifted history (a consensus recompute) is built once and replayed through
        # every setup's arbiter: it does not depend on the thresholds
        runs: dict[tuple[str, str], list[DrillResult]] = {}
        for what, scale in DRIFTS:
            for a in agents_of[name]:
                drift = Drift(a, start, scale=scale, frozen=scale is None)
                h = drifted(history, drift)
                for label, th in setups:
                    runs.setdefault((label, what), []).append(
                        drill(history, Arbiter(ArbiterConfig(thresholds=th)), drift,
                              drifted_history=h))
        for label, th in setups:
            clean = drill(history, Arbiter(ArbiterConfig(thresholds=th)), None)
            rows.append((f"drill {name}, {label}: clean data", f"{clean.quarantines} "
                         f"quarantines, {clean.held_days} held", "0", "", ""))
            for what, _ in DRIFTS:
                results = runs[(label, what)]
                q = [r.first_quarantine for r in results]
                fast = sum(v is not None and v <= 60 for v in q)
                rows.append((
                    f"drill {name}, {label}: {what}",
                    f"alert {_median([r.first_alert for r in results])}, quarantine "
                    f"{_median(q)} (median beats)",
                    "", f"{sum(v is not None for v in q)}/{len(q)} quarantined, {fast} in "
                    f"<= 60; wrong {sum(r.wrong for r in results)}", ""))
    return rows


def bench_drill_selection(quick: bool) -> list[Row]:
    """How ``agent_p`` was chosen (full mode only): on the S&P 500, each default agent
    drifting from days 700 and 1500 at scales 0.8 / 0.6 / 0.4, the largest p with no
    quarantine on clean data and none of another agent; NASDAQ's clean count beside it."""
    if quick:
        return []
    workers = min(2, os.cpu_count() or 1)
    sp, nq = (cached_history(d, workers=workers) for d in ("sp500", "nasdaq"))
    rows: list[Row] = []
    ps = (1e-2, 1e-3, 1e-4)
    # each drifted history is built once and replayed for every p (it does not depend on p)
    runs: dict[tuple[float, float], list[DrillResult]] = {}
    for scale in (0.8, 0.6, 0.4):
        for a in sp.agents:
            for start in (700, 1500):
                drift = Drift(a, start, scale=scale)
                h = drifted(sp, drift)
                for p in ps:
                    config = ArbiterConfig(thresholds=Thresholds(agent_p=p))
                    runs.setdefault((p, scale), []).append(
                        drill(sp, Arbiter(config), drift, drifted_history=h))
    for p in ps:
        config = ArbiterConfig(thresholds=Thresholds(agent_p=p))
        cells, wrong = [], 0
        for scale in (0.8, 0.6, 0.4):
            q = [r.first_quarantine for r in runs[(p, scale)]]
            wrong += sum(r.wrong for r in runs[(p, scale)])
            fast = sum(v is not None and v <= 60 for v in q)
            cells.append(f"{scale:g}: {_median(q)} ({fast}/{len(q)} in <= 60)")
        clean_sp = drill(sp, Arbiter(config), None).quarantines
        clean_nq = drill(nq, Arbiter(config), None).quarantines
        rows.append((f"drill selection, sp500, agent_p {p:g}: median beats to quarantine",
                     "; ".join(cells), "", f"clean quarantines sp500 {clean_sp}, nasdaq "
                     f"(held out) {clean_nq}; other agents {wrong}", ""))
    return rows


def _tail_ps(flags: np.ndarray, alphas: tuple[float, ...], config: SignalConfig
             ) -> Iterator[np.ndarray]:
    """Beat by beat, the tail p-values ``read_beat`` gives agents with these breaches.

    ``flags`` (beats, paths, levels) bool; yields (paths, levels) arrays: the
    signals' exponentially weighted rate from ``1 - α`` (the same update, in the same
    floating point), the signals' ``z > coverage_z`` gate, and past it the library's
    :func:`breach_tail_p` itself (one call a cell; 1.0 elsewhere, as the signals).
    """
    lam = 1.0 - 1.0 / config.coverage_span
    p = np.array([1.0 - a for a in alphas])
    sd = np.sqrt(p * (1.0 - p) * (1.0 - lam) / (1.0 + lam))
    rate = np.tile(p, (flags.shape[1], 1))
    for beat in flags:
        rate = lam * rate + (1.0 - lam) * beat
        out = np.ones_like(rate)
        for i, j in zip(*np.nonzero((rate - p) / sd > config.coverage_z), strict=True):
            out[i, j] = breach_tail_p(float(rate[i, j]), float(p[j]), lam)[0]
        yield out


def _same_as_read_beat(config: SignalConfig) -> float:
    """The largest difference between :func:`_tail_ps` and ``read_beat``'s ``tail_p`` for
    an under-reporting agent (volatility scale 0.7, so the tail is reached) of a simulated
    history: 0 when the benchmark's rate is the signals' own."""
    history = simulated_history(days=400, seed=5, scales=(0.7, 1.0, 1.0))
    memory = ArbiterState().memory
    read: list[tuple[float, ...]] = []
    flags: list[tuple[bool, ...]] = []
    for report in history.beats():
        memory, signals = read_beat(memory, report, config)
        if report.breaches.get("A"):
            read.append(signals.agent("A").tail_p)
            flags.append(report.breaches["A"])
    mine = np.array([t[0] for t in _tail_ps(np.array(flags)[:, None, :], history.alphas,
                                             config)])
    assert float(np.min(read)) < Thresholds().agent_p, "the check must reach the rule's tail"
    return float(np.max(np.abs(mine - np.array(read))))


def bench_calibrated(quick: bool) -> list[Row]:
    """How often the per-agent rule's count test alone fires on a calibrated agent."""
    paths, beats, seed = (100, 2500, 11) if quick else (10_000, 2500, 11)
    alphas, config, agent_p = (0.99, 0.975), SignalConfig(), Thresholds().agent_p
    check = _same_as_read_beat(config)
    u = np.random.default_rng(seed).random((beats, paths))
    flags = u[:, :, None] < np.array([1.0 - a for a in alphas])  # nested: one return a beat
    below = np.zeros((beats, paths, len(alphas)), dtype=bool)
    for t, tail in enumerate(_tail_ps(flags, alphas, config)):
        below[t] = tail < agent_p
    either = below.any(axis=2)
    late = slice(500, beats)  # past the start at 1 - α (two spans)

    def se(q: float) -> str:
        return f"± {math.sqrt(q * (1 - q) / paths):.3f}"

    rows: list[Row] = [("count test on a calibrated agent: load",
                        f"{paths:,} paths x {beats:,} beats", "", f"seed {seed}", "")]
    for j, a in enumerate(alphas):
        beat_all, beat_late = below[:, :, j].mean(), below[late, :, j].mean()
        q = float(below[:, :, j].any(axis=0).mean())
        rows += [(f"calibrated agent, {a:g}: per-beat P(tail p < agent_p) "
                  f"(all beats / beats 500+)", f"{beat_all:.2e} / {beat_late:.2e}", "",
                  f"nominal agent_p {agent_p:g}", ""),
                 (f"calibrated agent, {a:g}: P(any crossing in {beats:,} beats) per path",
                  f"{q:.3f} {se(q)}", "", f"nominal agent_p {agent_p:g}", "")]
    q_min = float(either.any(axis=0).mean())
    q_six = 1.0 - (1.0 - q_min) ** 6
    rows += [("calibrated agent, min over both levels: per-beat P / P(any crossing) per path",
              f"{either.mean():.2e} / {q_min:.3f} {se(q_min)}", "",
              f"nominal agent_p {agent_p:g}", ""),
             (f"six calibrated agents, P(any crossing in {beats:,} beats) (independent "
              "agents assumed)", f"{q_six:.3f}", "", f"nominal agent_p {agent_p:g}", ""),
             ("count test's rate against read_beat (simulated history, agent at scale 0.7):"
              " max |tail p difference|", f"{check:.1e}", "0", "",
              "pass" if check == 0.0 else "FAIL")]
    return rows


def main(quick: bool = False) -> None:
    load = os.getloadavg()[0]
    rows = (bench_step(quick) + bench_threat(quick) + bench_overheads(quick) + bench_drill(quick)
            + bench_drill_selection(quick) + bench_calibrated(quick))
    print(f"load average {load:.2f} (1 min) at the start; {os.cpu_count()} CPUs")
    print_table(rows, header=("metric", "measured", "target", "reference (same run)", "ok"))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
