"""NormalInverseGamma: update + forecast of one level per tick on the S&P 500 stream.

Reference measured in the same run: one ``scipy.special.stdtrit`` call (the
Student-t quantile that a naive closed-form VaR would compute every tick).
Also the cost of a forecast that misses the interval tables (a posterior
short of the discount steady state, e.g. right after a short fit).

Run: ``.venv/bin/python benchmarks/bench_nig.py [--quick]`` (quick: the same code on 300
ticks and fewer repeats, in a second or two; its figures are noisier).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

sys.path.insert(0, str(Path(__file__).parent))
from _table import median_seconds, print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.models import BayesianBootstrap, NormalInverseGamma  # noqa: E402
from swarmvar.models import nig as nig_module  # noqa: E402


def _per_tick(agent, stream, alphas):
    agent.forecast(alphas)  # fill the steady-state interval tables once
    samples = []
    for r in stream:
        start = time.perf_counter()
        agent.update(r)
        agent.forecast(alphas)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def main(quick: bool = False) -> None:
    r = load("sp500").to_numpy()
    stream = r[2500:2800] if quick else r[2500:]
    repeat = 300 if quick else 2000
    nig = NormalInverseGamma().fit(r[:2500], seed=0)
    nig_tick = _per_tick(nig, stream, (0.99,))
    ref = median_seconds(lambda: special.stdtrit(33.3, 0.01), repeat=repeat)
    ratio = nig_tick / ref

    def miss() -> None:
        nig_module._level_constants.cache_clear()
        nig_module._w_quantiles.cache_clear()
        nig_module._root_gamma_nodes.cache_clear()
        nig_agent._memo = None  # the agent's own memo of its last lookup too
        nig_agent.forecast((0.99,))

    nig_agent = NormalInverseGamma().fit(r[:2500], seed=0)
    miss_s = median_seconds(miss, repeat=10 if quick else 50, warmup=2)
    boot = BayesianBootstrap().fit(r[:2500], seed=0)
    boot_tick = _per_tick(boot, stream[:100] if quick else r[2500:3000], (0.99, 0.975))
    print_table([
        ("NIG update+forecast (1 level), median/tick", f"{nig_tick * 1e6:.1f} us",
         "<= 5x stdtrit", f"stdtrit {ref * 1e6:.1f} us", f"{ratio:.1f}x "
         + ("yes" if ratio <= 5 else "NO")),
        ("NIG forecast missing the interval tables (1 level)", f"{miss_s * 1e6:.0f} us", "-",
         "-", "-"),
        ("Bootstrap update+forecast (2 levels, 1000 draws)", f"{boot_tick * 1e3:.2f} ms", "-",
         "-", "-"),
    ])
    print(f"(S&P 500 stream: {len(stream)} ticks after a 2500-day fit; the tick and stdtrit "
          "are medians of the same run)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
