"""The S&P 500 backtest of every available agent beside arch's GARCH(1,1)-t baseline.

Target (issue 3): the full backtest of the agents (last 2,500 days, 1,000-day
window, refit every 20 days, alphas 0.99 and 0.975) finishes within 2x the time
of the arch baseline alone. Reference measured in the same run: the same
backtest with only the arch baseline. Both times include the tests and scores.
The agents' run includes the swarm's consensus row and spreads the rows over
``--workers`` processes (default: every CPU, as ``swarmvar backtest`` does);
the arch-only run is one row, so one process. The GARCH rows load their
compiled likelihood from JAX's persistent cache when it holds it (printed
first); ``SWARMVAR_JAX_CACHE=off`` measures a cold first run.

Run standalone: ``.venv/bin/python benchmarks/bench_backtest.py [--quick] [--last N]
[--particles N] [AGENT ...]``. Quick mode: the same code on the last 60 days, a 250-day
window and two agents (NormalInverseGamma, BayesianBootstrap) in one process, in seconds;
its figures are not the target.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.errors import SwarmVarError  # noqa: E402
from swarmvar.models import DEFAULT_AGENTS, agent_class  # noqa: E402
from swarmvar.models._garch_lik import compilation_cache  # noqa: E402
from swarmvar.models._online_agent import DEFAULT_PARTICLES  # noqa: E402
from swarmvar.swarm.consensus import SWARM_POLICY  # noqa: E402
from swarmvar.validation import Test, backtest  # noqa: E402

TARGET_RATIO = 2.0


def _available(names: list[str], particles: int | None = None
               ) -> tuple[list[object], list[str]]:
    """The agents by name; ``particles`` for those built on the default particle count."""
    agents, missing = [], []
    for name in names:
        try:
            cls = agent_class(name)
            param = inspect.signature(cls).parameters.get("particles")
            takes = particles is not None and param is not None and (
                param.default == DEFAULT_PARTICLES)
            agents.append(cls(particles=particles) if takes else cls())
        except (ImportError, SwarmVarError) as exc:
            missing.append(f"{name} ({type(exc).__name__})")
    return agents, missing


QUICK_AGENTS = ["NormalInverseGamma", "BayesianBootstrap"]


def main(quick: bool = False, argv: list[str] | None = None) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--last", type=int, default=2500,
                        help="out-of-sample days")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the agents' rows")
    parser.add_argument("--particles", type=int, default=None,
                        help="particles of the agents whose default is DEFAULT_PARTICLES "
                        f"({DEFAULT_PARTICLES}; GarchT, GarchEVT, BetaSkewTEgarch), e.g. "
                        "1000 to time the former default beside today's")
    parser.add_argument("agents", nargs="*", default=list(DEFAULT_AGENTS))
    args = parser.parse_args([] if argv is None else argv)
    window, every, alphas = 1000, 20, (0.99, 0.975)
    if quick:
        window, args.last, args.workers = 250, 60, 1
        args.agents = [a for a in args.agents if a in QUICK_AGENTS] or QUICK_AGENTS
    r = load("sp500").iloc[-(args.last + window):]
    agents, missing = _available(args.agents, args.particles)
    if missing:
        print("not available yet, left out: " + ", ".join(missing))

    cache = compilation_cache()  # the GARCH rows' compiled likelihood: warm or cold?
    entries = sum(1 for p in cache.iterdir() if p.is_file()) if cache is not None else 0
    print(f"JAX compilation cache: {cache or 'off'} ({entries} entries before this run; "
          "SWARMVAR_JAX_CACHE=off measures a first run)")

    start = time.perf_counter()
    base_only = backtest(r, [], window=window, refit_every=every, alphas=alphas, progress=False)
    arch_seconds = time.perf_counter() - start

    start = time.perf_counter()
    consensus = {"consensus": SWARM_POLICY} if len(agents) >= 3 else {}
    full = backtest(r, agents, window=window, refit_every=every, alphas=alphas, baseline=None,
                    progress=False, consensus=consensus, workers=args.workers)
    agents_seconds = time.perf_counter() - start

    ratio = agents_seconds / arch_seconds
    rows = [
        [f"backtest of {len(agents)} agents{' + consensus' if consensus else ''} ({args.last} "
         f"days, 2 levels, "
         f"{args.workers} workers)",
         f"{agents_seconds:.1f} s",
         f"<= {TARGET_RATIO:.0f}x arch", f"arch alone {arch_seconds:.1f} s",
         "pass" if ratio <= TARGET_RATIO else "FAIL"],
        ["ratio agents / arch", f"{ratio:.2f}x", f"<= {TARGET_RATIO:.1f}x", "1.00x",
         "pass" if ratio <= TARGET_RATIO else "FAIL"],
    ]
    for name, t in full.timings.items():
        rows.append([f"  {name}: fit+update+forecast ({t.fits} fits)", f"{t.total:.1f} s", "",
                     f"fit {t.fit:.1f} / update {t.update:.1f} / forecast {t.forecast:.1f}", ""])
    print_table(rows)

    base = base_only.baseline
    assert base is not None
    print()
    lines = [["arch GARCH(1,1)-t (reference)", base_only]] + [[n, full] for n in full.rows]
    table = []
    for label, res in lines:
        name = base if label.startswith("arch") else label
        for alpha in alphas:
            s = res.series[name][alpha]
            ev = res.evaluation[name][alpha]
            table.append([
                label, f"{alpha:g}", f"{int(s.hits.sum())} ({100 * s.hits.mean():.2f}%)",
                f"{ev.tests[Test.KUPIEC].pvalue:.3f}",
                f"{ev.tests[Test.CHRISTOFFERSEN].pvalue:.3f}",
                "pass" if (res.passed(name, alpha, Test.KUPIEC)
                           and res.passed(name, alpha, Test.CHRISTOFFERSEN)) else "FAIL",
            ])
    print_table(table, ("model", "alpha", "hits", "Kupiec p", "Christoffersen p", "both > 5%"))


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:], argv=[a for a in sys.argv[1:] if a != "--quick"])
