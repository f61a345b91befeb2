"""Benchmarks for swarmvar.emergence; run: .venv/bin/python benchmarks/bench_emergence.py

1. OnlineChangePoint.update per return (max_run 1000, a full run-length
   posterior), beside one scipy.stats.t.logpdf over the same 1,000 run
   lengths in the same run (the recursion's one density evaluation): target
   <= 200 us and <= 5x the reference;
2. run_length_posterior over 2,500 days (report);
3. summarize() of a 2,500-day, 3-agent synthetic backtest (report);
4. the change-point detector on simulated volatility breaks: median delay,
   missed breaks and false alarms against the stated targets;
5. the consensus's weighting per beat for 5 agents and 2 levels (the default
   tempered weights, online: one update and the weights) beside the previous
   500-day track-record weights from a TrackRecord in the same run (target
   <= 100 us and <= 2x the reference), and the interval's disagreement term
   (``disagreement_bounds`` for VaR and ES) beside the widening step it feeds
   (``partition.widen_interval`` twice).

``main(quick=True)`` runs the same code on small loads (seconds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _table import median_seconds, print_table  # noqa: E402

from swarmvar.consensus import DEFAULT_POLICY, LevelForecasts, consensus_levels  # noqa: E402
from swarmvar.emergence import (  # noqa: E402
    OnlineChangePoint,
    run_length_posterior,
    summarize,
    volatility_breaks,
)
from swarmvar.validation import BacktestResult, LevelSeries  # noqa: E402

Row = tuple[str, str, str, str, bool]
ALPHAS = (0.99, 0.975)


def bench_update(quick: bool) -> list[Row]:
    rng = np.random.default_rng(0)
    det = OnlineChangePoint()
    for z in rng.standard_normal(1200):  # a full posterior: 1,000 run lengths
        det.update(float(z))
    zs = iter(rng.standard_normal(100_000))
    loc, scale = np.zeros(1000), np.ones(1000)
    repeat = 100 if quick else 3000
    update = median_seconds(lambda: det.update(float(next(zs))), repeat, 20) * 1e6
    ref = median_seconds(lambda: stats.t.logpdf(0.3, 5.0, loc=loc, scale=scale), repeat, 20) * 1e6
    days = 200 if quick else 2500
    t0 = time.perf_counter()
    run_length_posterior(rng.standard_normal(days))
    batch = time.perf_counter() - t0
    return [
        ("OnlineChangePoint.update, 1000 run lengths (us)", f"{update:.1f}", "<= 200, <= 5x ref",
         f"scipy t.logpdf x1000 {ref:.1f}", update <= 200 and update <= 5 * ref),
        (f"run_length_posterior, {days} days (s)", f"{batch:.2f}", "report",
         f"{batch / days * 1e6:.0f} us a day", True),
    ]


def synthetic(days: int) -> BacktestResult:
    """Three agents scaling a known VaR/ES by 0.8, 1.0, 1.25, and their consensus row."""
    rng = np.random.default_rng(1)
    sd = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.03, days)))
    r = sd * rng.standard_normal(days)
    series: dict[str, dict[float, LevelSeries]] = {}
    for name, k in (("low", 0.8), ("right", 1.0), ("high", 1.25)):
        series[name] = {}
        for a in ALPHAS:
            v = sd * stats.norm.ppf(a) * k
            e = sd * stats.norm.pdf(stats.norm.ppf(a)) / (1 - a) * k
            series[name][a] = LevelSeries(a, v, e, v * 0.9, v * 1.1, e * 0.9, e * 1.1, -r > v)
    names = list(series)
    levels = {a: LevelForecasts(np.column_stack([series[n][a].var for n in names]),
                                np.column_stack([series[n][a].es for n in names]) * [1, 1, 1.01])
              for a in ALPHAS}
    for a, p in consensus_levels(r, levels, DEFAULT_POLICY).items():
        series.setdefault("consensus", {})[a] = LevelSeries(
            a, p.var, p.es, p.var_interval[:, 0], p.var_interval[:, 1], p.es_interval[:, 0],
            p.es_interval[:, 1], -r > p.var)
    return BacktestResult(dates=pd.bdate_range("2010-01-01", periods=days), returns=r,
                          alphas=ALPHAS, horizon=1, window=250, refit_every=20, baseline=None,
                          series=series, logscore={}, evaluation={}, timings={},
                          agents=tuple(names))


def bench_summarize(quick: bool) -> list[Row]:
    days = 400 if quick else 2500
    result = synthetic(days)
    t0 = time.perf_counter()
    summarize(result, mcs_reps=100 if quick else 1000)
    took = time.perf_counter() - t0
    return [(f"summarize, {days} days x 4 rows (s)", f"{took:.2f}", "report",
             f"MCS reps {100 if quick else 1000}", True)]


def bench_breaks(quick: bool) -> list[Row]:
    reps, before, horizon = (2, 200, 60) if quick else (40, 500, 150)
    rows: list[Row] = []
    for factor, df, delay, missed, alarms in ((3.0, None, 5, 0.10, 3.0), (2.0, None, 10, 0.15, 3.0),
                                               (3.0, 5.0, 6, 0.15, 10.0)):
        s = volatility_breaks(factor, df=df, reps=reps, seed=11, before=before, horizon=horizon)
        ok = (s.median_delay <= delay and s.missed <= missed * reps
              and s.false_alarms_per_1000 <= alarms) or quick
        tail = "Gaussian" if df is None else f"t({df:g})"
        rows.append((f"break sd x{factor:g}, {tail}: median delay (days)", f"{s.median_delay:g}",
                     f"<= {delay}", f"missed {s.missed}/{reps}, false alarms "
                     f"{s.false_alarms_per_1000:.1f}/1000 d (<= {alarms:g})", ok))
    return rows


def bench_weighting(quick: bool) -> list[Row]:
    from swarmvar.consensus import (
        Loss,
        Policy,
        TemperedWeights,
        TrackRecord,
        Weighting,
        agent_weights,
        widen_interval,
    )
    from swarmvar.consensus.robust import disagreement_bounds

    rng = np.random.default_rng(3)
    ids = [f"a{i}" for i in range(5)]
    tw = TemperedWeights(ids, ALPHAS)
    var = np.abs(rng.normal(0.03, 0.004, (len(ALPHAS), 5)))
    es = var * 1.2
    for r in rng.normal(0, 0.012, 1200):  # a full 1,000-day ring
        tw.update(float(r), var, es)
    returns = iter(rng.normal(0, 0.012, 200_000))

    def tempered() -> None:
        tw.update(float(next(returns)), var, es)
        tw.weights()

    days = 500
    recs = [TrackRecord(tuple(ids), rng.normal(0, 0.012, days), a,
                        var=np.abs(rng.normal(0.03, 0.004, (days, 5))),
                        es=np.abs(rng.normal(0.036, 0.004, (days, 5)))) for a in ALPHAS]
    old = Policy(weighting=Weighting.TRACK_RECORD, loss=Loss.FZ0, window=days)
    repeat = 100 if quick else 2000
    t_new = median_seconds(tempered, repeat, 20) * 1e6
    t_old = median_seconds(lambda: agent_weights(ids, old, recs), max(repeat // 10, 20), 5) * 1e6
    pts = rng.normal(0.03, 0.004, 5).tolist()
    w = (np.ones(5) / 5).tolist()
    z = 1.6448536269514722

    def spread() -> None:
        disagreement_bounds(0.03, 0.027, 0.034, pts, w, 1, z)
        disagreement_bounds(0.036, 0.032, 0.040, pts, w, 1, z)

    def widen() -> None:
        widen_interval(0.03, (0.027, 0.034), available=5, total=5, spread=0.002)
        widen_interval(0.036, (0.032, 0.040), available=5, total=5, spread=0.002)

    t_spread = median_seconds(spread, repeat, 20) * 1e6
    t_widen = median_seconds(widen, repeat, 20) * 1e6
    return [
        ("tempered weights per beat, 5 agents x 2 levels (us)", f"{t_new:.1f}",
         "<= 100, <= 2x ref", f"500-day track-record weights {t_old:.1f}",
         t_new <= 100 and t_new <= 2 * t_old),
        ("interval disagreement term per beat, VaR + ES (us)", f"{t_spread:.1f}", "report",
         f"widen_interval x2 {t_widen:.1f}", True),
    ]


def main(quick: bool = False) -> None:
    rows = (bench_update(quick) + bench_summarize(quick) + bench_breaks(quick)
            + bench_weighting(quick))
    print_table([(*r[:4], "pass" if r[4] else "FAIL") for r in rows],
                header=("metric", "measured", "target", "reference (same run)", "ok"))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
