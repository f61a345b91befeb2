"""h-day forecasts: every agent at horizon 1 and 10, beside arch's GJR-GARCH-t 10-day simulation.

Target (issue 20): the five agents' 10-day forecasts (VaR/ES at 0.99 and 0.975
with credible intervals) take at most 5 s together. Reference measured in the
same run: arch's GJR-GARCH(1,1)-t fitted by MLE and its 10-day forecast by
simulation (10,000 paths), the usual frequentist way to a 10-day VaR; its VaR
is printed beside the agents' so the numbers can be compared, not only the
times. A row per agent also gives the cost of one day of an h-day track record
(forecast at h = 10, then update), which is what a consensus weighted by the
10-day track record pays per agent and day.

Second table: ``swarmvar var`` end to end (fit every agent, build the
track record behind the consensus weights, combine), at horizon 10 beside
horizon 1 in the same run, on the CLI's default data (the last 2500 S&P 500
returns), track record (1000 days) and workers (the machine's CPUs). Target
(issue 20, the lead's brief): at most 30 s wall at h = 10 on an idle 2-core
machine. The 10-day record scores the 100 non-overlapping 10-day windows of
those 1000 days (docs/validation.md, "h-day track records"); the row beside
it estimates the every-day (overlapping) record it replaced from the
per-agent track-record-day costs of the first table.

Run: ``.venv/bin/python benchmarks/bench_horizon.py [--quick]`` (quick: the same code
on a 500-day fit with small particle clouds and one repeat, and a 20-day track record
on 400 returns in one process, in seconds).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.api import var  # noqa: E402
from swarmvar.data import load  # noqa: E402
from swarmvar.errors import ConvergenceWarning  # noqa: E402
from swarmvar.models import DEFAULT_AGENTS, agent_class  # noqa: E402

ALPHAS = (0.99, 0.975)
HORIZON = 10
TARGET_SECONDS = 5.0
#: Small clouds for the quick mode (the same code paths).
QUICK = {"StudentT": {"particles": 300}, "GarchT": {"particles": 200},
         "GarchEVT": {"particles": 200}, "BayesianBootstrap": {"draws": 200},
         "BetaSkewTEgarch": {"particles": 200}}


def _median_seconds(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _arch_gjr_t(r: np.ndarray, horizon: int, sims: int) -> tuple[float, float, float]:
    """arch's GJR-GARCH(1,1)-t: (fit seconds, h-day simulation seconds, h-day 99% VaR)."""
    from arch import arch_model

    model = arch_model(100 * r, vol="GARCH", p=1, o=1, q=1, dist="t")
    start = time.perf_counter()
    res = model.fit(disp="off", show_warning=False)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    fc = res.forecast(horizon=horizon, method="simulation", simulations=sims, reindex=False,
                      random_state=np.random.RandomState(0))
    paths = fc.simulations.values[-1].sum(axis=1) / 100.0  # h-day log returns, fractions
    sim_s = time.perf_counter() - start
    return fit_s, sim_s, float(-np.quantile(paths, 0.01))


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its reaped children (the track record's workers)."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def _var_seconds(quick: bool, horizon: int, workers: int) -> tuple[float, float, int, str]:
    """Wall and CPU seconds of one ``swarmvar.var`` (fits, track record, consensus), the
    number of track-record forecast days per agent it made, and its note."""
    series = load("sp500").iloc[-(400 if quick else 2500):]
    agents = ([agent_class(n)(**QUICK.get(n, {})) for n in DEFAULT_AGENTS] if quick
              else list(DEFAULT_AGENTS))
    seen: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start, cpu = time.perf_counter(), _cpu_seconds()
        res = var(series, agents, alphas=ALPHAS, horizon=horizon, workers=workers,
                  track_days=20 if quick else None,
                  progress=lambda stage, done, total: seen.append(total)
                  if stage == "track" else None)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return seconds, cpu, (seen[-1] // len(DEFAULT_AGENTS) if seen else 0), res.note


def main(quick: bool = False) -> None:
    r = load("sp500").to_numpy()
    n_fit = 500 if quick else 2500
    hist, after = r[-n_fit - 30 : -30], r[-30:]
    repeat, days = (1, 2) if quick else (5, 20)
    rows, total_h10, per_days = [], 0.0, 0.0
    values = []
    for name in DEFAULT_AGENTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            agent = agent_class(name)(**(QUICK.get(name, {}) if quick else {}))
            agent.fit(hist, seed=0)
        agent.forecast(ALPHAS, 1, seed=1)  # warm caches and compilations
        agent.forecast(ALPHAS, HORIZON, seed=1)
        h1 = _median_seconds(lambda a=agent: a.forecast(ALPHAS, 1, seed=2), repeat)
        h10 = _median_seconds(lambda a=agent: a.forecast(ALPHAS, HORIZON, seed=2), repeat)
        total_h10 += h10
        fc = agent.forecast(ALPHAS, HORIZON, seed=3)
        start = time.perf_counter()
        for j, x in enumerate(after[:days]):  # a track record's day: forecast, then update
            agent.forecast(ALPHAS, HORIZON, seed=10 + j)
            agent.update(float(x))
        per_day = (time.perf_counter() - start) / days
        per_days += per_day
        lv = fc.at(0.99)
        values.append((name, lv))
        rows.append((f"{name}: forecast h=1 / h={HORIZON} (2 levels, median of {repeat})",
                     f"{h1 * 1e3:.1f} ms / {h10 * 1e3:.1f} ms", "-",
                     f"track-record day at h={HORIZON}: {per_day * 1e3:.1f} ms", "-"))
    fit_s, sim_s, arch_var = _arch_gjr_t(hist, HORIZON, 1000 if quick else 10_000)
    rows.insert(0, (f"all {len(DEFAULT_AGENTS)} agents, one {HORIZON}-day forecast each",
                    f"{total_h10:.2f} s", f"<= {TARGET_SECONDS:.0f} s",
                    f"arch GJR-t {HORIZON}-day simulation {sim_s * 1e3:.0f} ms (fit "
                    f"{fit_s * 1e3:.0f} ms)", "yes" if total_h10 <= TARGET_SECONDS else "NO"))
    print_table(rows)
    print()
    print_table(
        [(name, f"{lv.var:.2%}", f"[{lv.var_interval[0]:.2%}, {lv.var_interval[1]:.2%}]",
          f"{lv.es:.2%}") for name, lv in values]
        + [("arch GJR-GARCH(1,1)-t, simulated (MLE, no interval)", f"{arch_var:.2%}", "-", "-")],
        ("model", f"{HORIZON}-day 99% VaR", "90% interval", f"{HORIZON}-day 99% ES"))
    mode = "quick mode, " if quick else ""
    print(f"({mode}S&P 500: fit on the {n_fit} days to {len(r) - 31} of {len(r)}, forecasts "
          f"for the next {HORIZON} days; track-record days over the {days} days after)")
    print()
    workers = 1 if quick else os.cpu_count() or 1
    one_s, one_cpu, one_days, _ = _var_seconds(quick, 1, workers)
    ten_s, ten_cpu, ten_days, note = _var_seconds(quick, HORIZON, workers)
    track = 20 if quick else 1000
    print_table([
        (f"swarmvar var --horizon {HORIZON} ({ten_days} track-record forecasts per agent)",
         f"{ten_s:.1f} s (CPU {ten_cpu:.1f} s)", "<= 30 s idle, 2 cores",
         f"var --horizon 1 ({one_days} forecasts per agent): {one_s:.1f} s (CPU "
         f"{one_cpu:.1f} s)",
         "-" if quick else "yes" if ten_s <= 30 else "NO"),
        (f"every-day {HORIZON}-day record it replaces (estimate: {track} days x "
         f"{per_days * 1e3:.0f} ms / {workers} workers)", f"{track * per_days / workers:.0f} s",
         "-", "-", "-"),
    ])
    print(f"({mode}{workers} workers; load average {os.getloadavg()[0]:.2f}; {note})")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
