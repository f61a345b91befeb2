"""The Acerbi-Szekely Z2 test of one row-level: its fast path beside the plain formula.

What a backtest row pays per level for its ES test (``validation.evaluate``):
the VaR/ES-matched Student-t (``matched_student_t``) and Z2 with ``n_sim``
Monte Carlo paths from a sampler censored at the VaR, which reads only the
draws beyond it (``_tail_z2_at_least``). References measured in the same
process, on the same forecasts and seeds, alternated with it:

* the plain formula on the same draws: the sampler's floor one ulp below the
  VaR is not recognised as censored at the VaR, so the whole ``(m, T)`` array
  goes through ``z2_statistic`` (its p-value must equal the fast one: a draw
  between the two floors is not beyond the VaR either way);
* the uncensored sampler (a normal and a chi-square per loss) through the plain
  formula: the draws a row's Z2 used before the censored sampler (another
  stream of random numbers, so another p-value of the same law).

Workload: S&P 500 (and NASDAQ) daily losses, the last 2,500 days, VaR/ES
forecast by historical simulation over the previous 1,000 days (a real
forecast series, cheap to make), both levels (0.99, 0.975), ``n_sim`` 1,000
as in ``bench_backtest.py``; CPU seconds (``time.process_time``), median over
the repetitions. Quick mode: the last 250 days, ``n_sim`` 200, one repetition.

Run standalone: ``.venv/bin/python benchmarks/bench_es_tests.py [--quick]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.validation.es_tests import (  # noqa: E402
    acerbi_szekely_z2,
    matched_student_t,
    student_t_sampler,
)

WINDOW = 1000


def _hs_forecasts(losses: np.ndarray, last: int, alpha: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realized losses of the last ``last`` days and their historical-simulation VaR/ES."""
    windows = np.lib.stride_tricks.sliding_window_view(losses[:-1], WINDOW)[-last:]
    var = np.quantile(windows, alpha, axis=1)
    es = np.array([w[w > v].mean() for w, v in zip(windows, var, strict=True)])
    return losses[-last:], var, es


def _z2(kind: str, loss: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float,
        n_sim: int) -> float:
    """One row-level's Z2 p-value (matched t included) by path ``kind``."""
    scale, df = matched_student_t(var, es, alpha)
    above = {"fast": var, "plain": np.nextafter(var, -np.inf), "uncensored": None}[kind]
    sampler = student_t_sampler(0.0, scale, df, above=above)
    return acerbi_szekely_z2(loss, var, es, alpha, sampler=sampler, n_sim=n_sim,
                             seed=np.random.default_rng([7, 0])).pvalue


def _cpu(fn: Callable[[], float]) -> tuple[float, float]:
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def main(quick: bool = False) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    last, n_sim, repeat = (250, 200, 1) if quick else (2500, 1000, 5)
    series = ["sp500"] if quick else ["sp500", "nasdaq"]
    alphas = (0.975,) if quick else (0.99, 0.975)
    kinds = ("fast", "plain", "uncensored")
    print(f"load average {os.getloadavg()[0]:.2f}; {last} days, n_sim {n_sim}, "
          f"median of {repeat} alternated repetitions, CPU seconds")
    rows, per_kind = [], {k: 0.0 for k in kinds}
    for name in series:
        losses = -load(name).to_numpy()
        for alpha in alphas:
            loss, var, es = _hs_forecasts(losses, last, alpha)
            times: dict[str, list[float]] = {k: [] for k in kinds}
            pvalues: dict[str, float] = {}
            for _ in range(repeat):
                for k in kinds:
                    seconds, pvalues[k] = _cpu(partial(_z2, k, loss, var, es, alpha, n_sim))
                    times[k].append(seconds)
            med = {k: statistics.median(v) for k, v in times.items()}
            for k in kinds:
                per_kind[k] += med[k]
            same = pvalues["fast"] == pvalues["plain"]
            rows.append([f"{name} {alpha:g}: Z2 + matched t, fast path",
                         f"{1e3 * med['fast']:.1f} ms", "< plain",
                         f"plain {1e3 * med['plain']:.1f} ms "
                         f"({med['plain'] / med['fast']:.2f}x), uncensored "
                         f"{1e3 * med['uncensored']:.1f} ms "
                         f"({med['uncensored'] / med['fast']:.2f}x)",
                         "quick" if quick and same  # one cold run: not the figure
                         else "pass" if same and med["fast"] < med["plain"] else "FAIL"])
            rows.append(["  p-values fast / plain / uncensored",
                         f"{pvalues['fast']:.4f}", "fast == plain",
                         f"{pvalues['plain']:.4f} / {pvalues['uncensored']:.4f}",
                         "pass" if same else "FAIL"])
    levels = len(series) * len(alphas)
    rows.append([f"per row (2 levels), mean of {levels} row-levels x 2",
                 f"{2e3 * per_kind['fast'] / levels:.1f} ms", "",
                 f"plain {2e3 * per_kind['plain'] / levels:.1f} ms "
                 f"({per_kind['plain'] / per_kind['fast']:.2f}x), uncensored "
                 f"{2e3 * per_kind['uncensored'] / levels:.1f} ms "
                 f"({per_kind['uncensored'] / per_kind['fast']:.2f}x)", ""])
    print_table(rows)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
