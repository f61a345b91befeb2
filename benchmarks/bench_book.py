"""Books: fit + VaR/ES + Euler contributions of every joint agent, beside RiskMetrics.

Targets (issue 18), each beside a reference measured in the same run:

* 20-asset book (the bundled S&P 500 stocks, last 1000 days): fit + 1-day
  VaR/ES (two levels) + Euler contributions, all joint agents together,
  <= 0.5 s; reference: RiskMetrics (EWMA fit + delta-normal VaR/ES and
  closed-form contributions) on the same data;
* 100-asset synthetic book (each asset one of the 20 stocks plus its own
  noise, N(0, 0.5%) a day): the same, <= 2 s; cost growth from 10 to 100 assets;
* the conjugate agent's online update of a 20-asset book, per tick, <= 1 ms
  (reference: numpy's outer product of one row, the update's core), with one
  fixed forgetting factor and with its grid (:data:`GRID_LAMS`), and the fit
  of each (the grid's fit scores every day of the window at every grid point);
* a 10-day horizon for the 20-asset book, all agents, <= 2 s.

Each figure is an agent's best of three runs, summed over the agents, with
BLAS on one thread (see :func:`main`); the load average is printed beside.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import median_seconds, print_table  # noqa: E402

from swarmvar.books import load_stocks  # noqa: E402
from swarmvar.models import DEFAULT_BOOK_AGENTS, book_agent_class  # noqa: E402
from swarmvar.models.attribution import euler  # noqa: E402
from swarmvar.models.book_baselines import RiskMetrics  # noqa: E402
from swarmvar.models.joint_niw import GRID_LAMS, NormalInverseWishart  # noqa: E402
from swarmvar.models.risk import risk_measures  # noqa: E402

ALPHAS = (0.99, 0.975)


#: CPU seconds of the last best run per agent (beside wall time: the machine is shared).
_CPU: dict[str, float] = {}


def _agent_cost(name: str, x: np.ndarray, p: np.ndarray, horizon: int = 1,
                small: bool = False) -> float:
    """Wall seconds for fit + scenarios + VaR/ES + Euler contributions of one agent."""
    cls = book_agent_class(name)
    kw = {"draws": 10, "paths": 100} if small else {}
    start, cpu = time.perf_counter(), time.process_time()
    agent = cls(**kw).fit(x, seed=0)
    scen = agent.scenarios(horizon, seed=1)
    risk_measures(scen.with_positions_family(p), ALPHAS)
    euler(scen, p, ALPHAS)
    wall = time.perf_counter() - start
    _CPU[name] = min(_CPU.get(name, float("inf")), time.process_time() - cpu)
    return wall


def _baseline_cost(x: np.ndarray, p: np.ndarray, horizon: int = 1) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        rm = RiskMetrics().fit(x)
        for alpha in ALPHAS:
            rm.delta_normal(p, alpha, horizon)
        best = min(best, time.perf_counter() - start)
    return best


def _all(x: np.ndarray, p: np.ndarray, horizon: int = 1, small: bool = False
         ) -> tuple[float, dict[str, float]]:
    """Each agent's best of three runs (one in quick mode): the machine is shared."""
    repeat = 1 if small else 3
    _CPU.clear()
    each = {n: min(_agent_cost(n, x, p, horizon, small) for _ in range(repeat))
            for n in DEFAULT_BOOK_AGENTS}
    return sum(each.values()), each


def _niw_costs(kw: Mapping[str, Any], x: np.ndarray, quick: bool) -> tuple[float, float]:
    """Median seconds of one NIW online update (per tick) and of one fit on ``x``."""
    niw = NormalInverseWishart(**kw).fit(x[:-200])
    stream = iter(np.tile(x[-200:], (50, 1)))
    tick = median_seconds(lambda: niw.update(next(stream)), repeat=200 if quick else 2000,
                          warmup=20)
    fit = median_seconds(lambda: NormalInverseWishart(**kw).fit(x),
                         repeat=3 if quick else 10, warmup=1)
    return tick, fit


def _cpu() -> str:
    return f"cpu {sum(_CPU.values()):.3f} s"


def _synthetic(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = x[:, np.arange(n) % x.shape[1]]
    out: np.ndarray = cols + rng.normal(0.0, 0.005, cols.shape)
    return out


def main(quick: bool = False, blas_threads: int | None = 1) -> None:
    """Run the measurements with BLAS limited to ``blas_threads`` (None: as configured).

    On a shared, loaded 2-core machine OpenBLAS's threads made the agents'
    small batched linear algebra (100 inversions of 20x20 .. 100x100) up to
    70x slower; one thread is the figure that means something there.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional helper (comes with scikit-learn)
        blas_threads = None
    if blas_threads is None:
        _main(quick, "as configured")
        return
    with threadpool_limits(blas_threads, user_api="blas"):
        _main(quick, str(blas_threads))


def _main(quick: bool, threads: str) -> None:
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    r = load_stocks().to_numpy()
    window = 300 if quick else 1000
    x20 = r[-window:]
    n20 = 5 if quick else 20
    x20 = x20[:, :n20]
    p20 = np.full(n20, 1e6 / n20)
    _all(x20[:, :3], np.ones(3), small=True)  # warm-up (imports, caches)
    rows = []
    total, each = _all(x20, p20, small=quick)
    cpu20 = _cpu()
    base = _baseline_cost(x20, p20)
    rows.append((f"{n20}-asset fit + VaR/ES + Euler, all agents", f"{total:.3f} s ({cpu20})",
                 "<= 0.5 s",
                 f"RiskMetrics {base * 1e3:.1f} ms", "yes" if total <= 0.5 else "NO"))
    for name, sec in each.items():
        rows.append((f"  {name}", f"{sec:.3f} s", "-", "-", "-"))
    sizes = (5, 10) if quick else (10, 20, 50, 100)
    costs, cpus = {}, {}
    for n in sizes:
        xs = _synthetic(x20 if quick else r[-window:], n)
        costs[n] = _all(xs, np.full(n, 1e6 / n), small=quick)[0]
        cpus[n] = _cpu()
    big = sizes[-1]
    growth = costs[big] / costs[sizes[0]]
    base_big = _baseline_cost(_synthetic(r[-window:], big), np.full(big, 1e4))
    rows.append((f"{big}-asset synthetic, all agents", f"{costs[big]:.3f} s ({cpus[big]})",
                 "<= 2 s",
                 f"RiskMetrics {base_big * 1e3:.1f} ms", "yes" if costs[big] <= 2 else "NO"))
    rows.append((f"growth {sizes[0]} -> {big} assets", f"x{growth:.1f}",
                 f"({big // sizes[0]}x assets)", ", ".join(f"{n}: {c:.2f}s" for n, c in
                                                          costs.items()), "-"))
    row = x20[-1]
    ref = median_seconds(lambda: np.outer(row, row), repeat=2000, warmup=50)
    for label, kw in (("one lam 0.99", {"lam": 0.99}),
                      (f"default: grid of {len(GRID_LAMS)} lams", {"lams": GRID_LAMS})):
        tick, fit = _niw_costs(kw, x20, quick)
        rows.append((f"NIW ({label}) online update, {n20} assets, per tick",
                     f"{tick * 1e6:.0f} us", "<= 1 ms", f"np.outer {ref * 1e6:.1f} us",
                     "yes" if tick <= 1e-3 else "NO"))
        rows.append((f"NIW ({label}) fit, {window} days", f"{fit * 1e3:.2f} ms", "-", "-", "-"))
    h_total, h_each = _all(x20, p20, horizon=10, small=quick)
    rows.append((f"{n20}-asset 10-day horizon, all agents", f"{h_total:.3f} s ({_cpu()})",
                 "<= 2 s",
                 f"RiskMetrics {_baseline_cost(x20, p20, 10) * 1e3:.1f} ms",
                 "yes" if h_total <= 2 else "NO"))
    for name, sec in h_each.items():
        rows.append((f"  {name} (10-day)", f"{sec:.3f} s", "-", "-", "-"))
    print(f"load average at start: {load}; BLAS threads: {threads}"
          + (" (quick mode: small load)" if quick else ""))
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
