"""The backtest report and the CLI's start-up: how long a user waits for them.

Targets (issue 19): the HTML report of the 2,500-day S&P 500 backtest in under
2 s, printed beside the backtest's own time (the reference, measured in the
same run); ``swarmvar --help`` and ``swarmvar var --help`` under 1 s each, as
fresh processes, beside a bare ``python -c pass`` start in the same run.
Also shown: the matplotlib figure (every model and level) and the emergence
section the CLI adds to the page.

Run standalone: ``.venv/bin/python benchmarks/bench_report.py [--quick]``.
Quick mode: the same code on a 300-day backtest of two fast agents; its
figures are not the target.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

REPORT_TARGET = 2.0
HELP_TARGET = 1.0


def _seconds(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _process(args: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds of a fresh process, and its median CPU seconds (user + system:
    what the process itself costs, whatever the machine's load)."""
    cpu: list[float] = []

    def run() -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, check=True, capture_output=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    run()  # warm the page cache, as a second invocation would find it
    cpu.clear()
    return _seconds(run, repeat), statistics.median(cpu)


def main(quick: bool = False) -> None:
    from swarmvar.cli._common import emergence_section
    from swarmvar.data import load
    from swarmvar.models import DEFAULT_AGENTS, agent_class
    from swarmvar.swarm.consensus import SWARM_POLICY
    from swarmvar.validation import backtest
    from swarmvar.validation.backtest import Baseline
    from swarmvar.validation.report import Provenance, render_html, write_html

    last, window = (300, 250) if quick else (2500, 1000)
    names = ["NormalInverseGamma", "BayesianBootstrap"] if quick else list(DEFAULT_AGENTS)
    if quick:
        names.append("NormalInverseGamma")  # a third row for the consensus (renamed #2)
    r = load("sp500").iloc[-(last + window):]
    start = time.perf_counter()
    result = backtest(r, [agent_class(n)() for n in names], window=window, refit_every=20,
                      alphas=(0.99, 0.975), progress=False, workers=os.cpu_count() or 1,
                      consensus={"consensus": SWARM_POLICY},
                      baseline=[Baseline.ARCH, Baseline.ARCH_GJR])
    backtest_s = time.perf_counter() - start
    provenance = Provenance("sp500", str(r.index[0].date()), str(r.index[-1].date()),
                            "bench_report", 0, "bench", (1, last), "00" * 32, "ledger.sqlite")
    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        repeat = 1 if quick else 3
        render_s = _seconds(lambda: render_html(result, provenance=provenance), repeat)
        write_s = _seconds(lambda: write_html(result, folder / "r.html",
                                              provenance=provenance), repeat)
        size_kb = (folder / "r.html").stat().st_size / 1024
        start = time.perf_counter()
        section = emergence_section(result)
        emergence_s = time.perf_counter() - start
        start = time.perf_counter()
        result.plot().savefig(folder / "r.png", dpi=110)
        plot_s = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    exe = str(Path(sys.executable).with_name("swarmvar"))
    help_repeat = 2 if quick else 5
    bare_s, bare_cpu = _process([sys.executable, "-c", "pass"], help_repeat)
    root_help_s, root_cpu = _process([exe, "--help"], help_repeat)
    var_help_s, var_cpu = _process([exe, "var", "--help"], help_repeat)
    load = os.getloadavg()[0]
    print(f"{len(result.dates)} days, rows: {', '.join(result.rows)}; load average {load:.2f}")
    rows = [
        ("backtest (reference)", f"{backtest_s:.2f} s", "-", "-", "-"),
        ("HTML report (render + write)", f"{write_s:.3f} s", f"< {REPORT_TARGET:g} s",
         f"{100 * write_s / backtest_s:.1f}% of the backtest",
         "yes" if write_s < REPORT_TARGET else "NO"),
        ("  render only", f"{render_s:.3f} s", "", f"{size_kb:.0f} kB page", ""),
        ("  emergence section (CLI adds it)", f"{emergence_s:.2f} s", "",
         "present" if section is not None else "absent", ""),
        ("figure, every model and level (PNG)", f"{plot_s:.2f} s", "", "", ""),
        ("swarmvar --help (process)", f"{root_help_s:.3f} s", f"< {HELP_TARGET:g} s",
         f"CPU {root_cpu:.3f} s; python -c pass {bare_s:.3f} s (CPU {bare_cpu:.3f} s)",
         "yes" if root_help_s < HELP_TARGET else "NO"),
        ("swarmvar var --help (process)", f"{var_help_s:.3f} s", f"< {HELP_TARGET:g} s",
         f"CPU {var_cpu:.3f} s; python -c pass {bare_s:.3f} s (CPU {bare_cpu:.3f} s)",
         "yes" if var_help_s < HELP_TARGET else "NO"),
    ]
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(quick=parser.parse_args().quick)
