"""Sandboxes: what isolation costs, beside the same work without it, in the same run.

- cold start of a bubblewrap sandbox (its warm worker ready: interpreter,
  numpy and the models imported) beside a bare ``bwrap ... python -c pass``
  and a bare ``python -c pass`` subprocess;
- a warm task round trip (a NormalInverseGamma fit + forecast on 1,000 S&P 500
  returns) beside the same call in-process: the overhead;
- a backtest row (a BayesianBootstrap row forecast day by day) in the sandbox
  beside the same row in-process.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar import data, sandbox  # noqa: E402
from swarmvar.models import task as model_tasks  # noqa: E402


def _timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(quick: bool = False) -> None:
    if shutil.which("bwrap") is None:
        print("bubblewrap is not installed (apt-get install bubblewrap): nothing to measure")
        return
    r = data.load("sp500").to_numpy()
    box = sandbox.BubblewrapSandbox(sandbox.TRAINING)
    probe = sandbox.BubblewrapSandbox(sandbox.TRAINING, cgroups=False)
    bare_bwrap = probe.command([sys.executable, "-I", "-c", "import numpy"])
    repeat = 2 if quick else 5

    cold = _timed(lambda: (box.start(), box.kill()), repeat)
    bwrap_py = _timed(lambda: subprocess.run(bare_bwrap, check=True, env=probe.environment()),
                      repeat)
    plain_py = _timed(lambda: subprocess.run([sys.executable, "-I", "-c", "import numpy"],
                                             check=True), repeat)

    fit = sandbox.Task("swarmvar.models.task:fit_forecast",
                       {"agent": "nig", "alphas": [0.99]}, {"returns": r[:1000]}, seed=1)
    box.run(fit)  # warm
    n = 20 if quick else 300
    inside = statistics.median(_timed(lambda: box.run(fit), n))
    outside = statistics.median(_timed(
        lambda: model_tasks.fit_forecast(fit.params, fit.arrays, fit.seed), n))

    days = 120 if quick else 1000
    row = sandbox.Task("swarmvar.models.task:forecast_path",
                       {"agent": "bootstrap", "alphas": [0.99, 0.975], "window": 1000,
                        "refit_every": 20}, {"returns": r[-(1000 + days):]}, seed=2)
    row_in = min(_timed(lambda: box.run(row), 1 if quick else 3))
    row_out = min(_timed(lambda: model_tasks.forecast_path(row.params, row.arrays, row.seed),
                         1 if quick else 3))
    box.kill()
    c, b, p = statistics.median(cold), statistics.median(bwrap_py), statistics.median(plain_py)
    over = inside - outside
    print_table([
        ("cold sandbox start (warm worker ready, numpy loaded)", f"{c:.2f} s",
         "<= 2x bare bwrap Python", f"bwrap+python+numpy {b:.2f} s; python+numpy {p:.2f} s",
         "yes" if c <= 2 * b else "NO"),
        ("warm round trip, NIG fit on 1,000 returns", f"{inside * 1e3:.2f} ms",
         "overhead <= 2 ms", f"in-process {outside * 1e3:.2f} ms (overhead {over * 1e3:.2f} ms)",
         "yes" if over <= 2e-3 else "NO"),
        (f"backtest row, Bootstrap, {days} days", f"{row_in:.2f} s", "<= 1.1x in-process",
         f"in-process {row_out:.2f} s ({row_in / row_out:.2f}x)",
         "yes" if row_in <= 1.1 * row_out else "NO"),
    ])


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
