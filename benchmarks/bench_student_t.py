"""StudentT (SMC fit by default, NUTS option, SIR updates, IBIS refits, cached forecasts), GarchEVT.

References measured in the same run: ``scipy.stats.t.fit`` (the MLE point
estimate the fit replaces), the NUTS option (first fit in the process, with
JAX's tracing and compilation, and a compiled one), a fresh fit (what the
warm ``refit`` replaces), and ``risk_measures`` on an uncached
``StudentTFamily`` of the same particles (what the cached forecast
replaces). The refit is timed over 40 cycles of the backtest's rhythm (20
updates, refit on the trailing 1000 days), so that both kinds of refit
(reweighting only; tempering with moves) count.

Run: ``.venv/bin/python benchmarks/bench_student_t.py [--quick]`` (quick: the same code
on 500 returns, fewer particles, a short stream and 4 refit cycles, in seconds; its
figures are not the targets).
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _table import median_seconds, print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.models import _sir  # noqa: E402
from swarmvar.models.garch_evt import GarchEVT  # noqa: E402
from swarmvar.models.risk import StudentTFamily, risk_measures  # noqa: E402
from swarmvar.models.student_t import StudentT  # noqa: E402


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _ticks(agent, stream) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for r in stream:
        start = time.perf_counter()
        agent.update(float(r))
        samples.append(time.perf_counter() - start)
    return samples


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def main(quick: bool = False) -> None:
    warnings.simplefilter("default")
    r = load("sp500").to_numpy()
    n_hist, n_stream, n_cycles = (500, 200, 4) if quick else (2500, 1000, 40)
    win = 300 if quick else 1000  # the refit window
    hist, stream = r[:n_hist], r[n_hist : n_hist + n_stream]
    small = {"particles": 500} if quick else {}
    nuts = {"num_warmup": 100, "num_samples": 200} if quick else {}

    agent, fit_s = _timed(lambda: StudentT(**small).fit(hist, seed=1))  # the default: SMC
    _, mle_s = _timed(lambda: stats.t.fit(hist))
    d = agent.diagnostics
    converged = d.max_rhat is not None and d.max_rhat <= 1.01 and (d.min_ess or 0) >= 400

    ticks = _ticks(agent, stream)
    upd_med, upd_mean = statistics.median(ticks), statistics.fmean(ticks)
    w = _sir.normalized_weights(agent._logw)
    family = StudentTFamily(agent._mu, agent._sigma, agent._nu, w)
    agent.forecast((0.99,))
    fc = median_seconds(lambda: agent.forecast((0.99,)), repeat=30 if quick else 300, warmup=5)
    fc_ref = median_seconds(lambda: risk_measures(family, (0.99,)), repeat=5 if quick else 30,
                            warmup=2)

    e = n_hist + n_stream  # the end of the streamed days
    for x in r[e : e + 20]:
        agent.update(float(x))
    _, shrink_s = _timed(lambda: agent.refit(r[e + 20 - win : e + 20], seed=2))  # -> the window
    for x in r[e + 20 : e + 40]:  # then the backtest's rhythm: 20 updates, refit on the window
        agent.update(float(x))
    window = r[e + 40 - win : e + 40]
    _, refit_s = _timed(lambda: agent.refit(window, seed=3))
    cycles = []
    for end in range(e + 60, e + 60 + n_cycles * 20, 20):  # the backtest's rhythm
        for x in r[end - 20:end]:
            agent.update(float(x))
        cycles.append(_timed(lambda end=end: agent.refit(r[end - win:end], seed=end))[1])
    refit_mean = statistics.fmean(cycles)
    _, fresh_s = _timed(lambda: StudentT(**small).fit(window, seed=7))
    _, nuts_first = _timed(lambda: StudentT(sampler="nuts", **nuts).fit(hist, seed=0))  # compile
    if quick:  # the compiled runs: the same calls, skipped to keep the quick mode quick
        nuts_hist = nuts_window = float("nan")
    else:
        _, nuts_hist = _timed(lambda: StudentT(sampler="nuts").fit(hist, seed=6))
        StudentT(sampler="nuts").fit(r[e + 20 - win : e + 20], seed=4)  # compile the window's shape
        _, nuts_window = _timed(lambda: StudentT(sampler="nuts").fit(window, seed=5))

    evt_small = {"particles": 200} if quick else {}
    evt, evt_fit = _timed(lambda: GarchEVT(**evt_small).fit(hist, seed=0))
    evt_ticks = _ticks(evt, stream[:500])
    evt_fc = median_seconds(lambda: evt.forecast((0.99,)), repeat=20 if quick else 100, warmup=3)

    print_table([
        (f"StudentT fit, {n_hist} returns (4 x {agent.particles}-particle SMC runs)",
         f"{fit_s:.2f} s",
         "<= 1 s, R-hat <= 1.01, ESS >= 400", f"scipy t.fit {mle_s:.2f} s",
         _ok(fit_s <= 1 and converged)),
        ("  fit diagnostics", d.summary(), "-", "-", "-"),
        (f"StudentT fit, sampler='nuts', {n_hist} returns (first / compiled)",
         f"{nuts_first:.2f} s / {nuts_hist:.2f} s", "-", f"SMC {fit_s:.2f} s", "-"),
        (f"StudentT update, median/tick ({w.size} particles)", f"{upd_med * 1e6:.0f} us",
         "<= 100 us", "-", _ok(upd_med <= 100e-6)),
        ("StudentT update, mean/tick incl. rejuvenations", f"{upd_mean * 1e6:.0f} us",
         "<= 2000 us", "-", _ok(upd_mean <= 2e-3)),
        ("StudentT forecast (1 level), median", f"{fc * 1e6:.0f} us", "<= 1000 us",
         f"uncached risk_measures {fc_ref * 1e3:.2f} ms", _ok(fc <= 1e-3)),
        (f"StudentT refit, {e + 20}-day history -> {win}-day window",
         f"{shrink_s * 1e3:.0f} ms", "-",
         f"fresh fit {fresh_s:.2f} s", "-"),
        (f"StudentT refit, backtest rhythm (20 new days, {win}-day window)",
         f"{refit_s * 1e3:.0f} ms", "<= 500 ms", f"fresh fit {fresh_s:.2f} s",
         _ok(refit_s <= 0.5)),
        (f"StudentT refit, mean of {n_cycles} backtest cycles", f"{refit_mean * 1e3:.1f} ms",
         "<= 0.1 x fresh fit", f"fresh fit {fresh_s:.2f} s, compiled NUTS {nuts_window:.2f} s",
         _ok(refit_mean <= 0.1 * fresh_s)),
        (f"GarchEVT fit, {n_hist} returns", f"{evt_fit:.2f} s", "-", "-", "-"),
        ("GarchEVT update, median/tick", f"{statistics.median(evt_ticks) * 1e6:.0f} us", "-",
         "-", "-"),
        ("GarchEVT forecast (1 level), median", f"{evt_fc * 1e3:.2f} ms", "-", "-", "-"),
    ])
    mode = "quick mode, " if quick else ""
    print(f"({mode}S&P 500: fit on {n_hist} days, {stream.size} ticks streamed; particle ESS "
          "after the "
          f"stream {d.ess:.0f})")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
