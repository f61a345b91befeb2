"""The runtime's cost beside the agents' own compute and the backtest, measured in one run.

Run: ``.venv/bin/python benchmarks/bench_runtime.py [--quick]``

* Beat overhead: one beat of the agents + signing + consensus + roles +
  ledger append (median, p99), beside the agents' own update + forecast time
  in the same beats (target: the runtime's own cost <= 10% of it), with the
  part spent signing and combining, and the crypto floor measured in the
  same run: the beat's Ed25519 signatures (one per agent and level; they
  stay on the beat) and as many verifications (the runtime no longer
  re-verifies its own estimates, see ``OwnSignatures``; outside estimates
  are verified). Wall clock and CPU time of the beat's thread (a loaded
  machine charges preemptions to a wall-clock difference).
* Replay throughput: S&P 500 days through the agents, beats/s, beside the
  backtest's days/s on the same days, agents and refit rhythm.
* Scale-out: P portfolios x agents x B beats on the local executor (worker
  processes) and on Ray over the same cores (target: Ray <= 1.3x local), and
  the per-portfolio cost at a small and a large P (target: flat within 20%).
* Recovery: seconds from SIGKILL of a running ``Swarm`` to its first beat
  after a restart (the restart's imports included).
* Attribution: a 20-asset book (the bundled stocks, equal positions) streamed with its
  attribution every N beats (``book_var`` on the trailing window, on the swarm's worker
  thread): the attribution's own seconds per due beat beside the beat's median time,
  with attribution on and off (what the worker thread costs the beats).

Quick mode runs the same code on cheap agents and a handful of portfolios.
Timings on a shared machine are noisy: the load average is printed.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.models import DEFAULT_AGENTS, agent_class  # noqa: E402
from swarmvar.swarm import LocalExecutor, Replay, RoleConfig, Swarm  # noqa: E402
from swarmvar.swarm.consensus import SWARM_POLICY  # noqa: E402
from swarmvar.types import Tick  # noqa: E402
from swarmvar.validation import backtest  # noqa: E402

CHEAP = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")


def _load() -> str:
    return open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"


def _crypto_floor(agents: int, levels: int, repeats: int) -> tuple[float, float]:
    """Seconds for one beat's Ed25519 work: ``agents x levels`` signatures, and verifications.

    The same signing bytes, keys and library as the beat; median of ``repeats`` beats,
    CPU time of this thread (short loops: the load would otherwise dominate).
    """
    from datetime import UTC, datetime

    from swarmvar.consensus import private_key_from_seed, sign_estimate, signing_bytes
    from swarmvar.types import Estimate

    keys = [private_key_from_seed(bytes([i + 1]) * 32) for i in range(agents * levels)]
    public = [k.public_key() for k in keys]
    e = Estimate("a", "sp500", 0.99, 1, 0.02, 0.025, (0.018, 0.022), (0.022, 0.028),
                 datetime(2024, 3, 1, tzinfo=UTC), 1)
    signed = [sign_estimate(e, k) for k in keys]
    sign_t, verify_t = [], []
    for _ in range(repeats):
        begin = time.thread_time()
        for k in keys:
            k.sign(signing_bytes(e))
        mid = time.thread_time()
        for p, x in zip(public, signed, strict=True):
            p.verify(x.signature, signing_bytes(x))  # type: ignore[arg-type]
        verify_t.append(time.thread_time() - mid)
        sign_t.append(mid - begin)
    return statistics.median(sign_t), statistics.median(verify_t)


def beat_overhead(agents: tuple[str, ...], window: int, beats: int) -> list[list[str]]:
    r = load("sp500")
    total, own, consensus, floor_sign, floor_verify = [], [], [], [], []
    cpu_total, cpu_own, cpu_consensus, cpu_ledger = [], [], [], []
    executor = LocalExecutor()  # in this process: its CPU time is the beat's
    levels = 2  # the swarm's default levels (0.99, 0.975): one estimate per agent and level
    with tempfile.TemporaryDirectory() as home, Swarm(
            ["sp500"], home=home, agents=agents, window=window, fsync=False,
            checkpoint_every=10**6, executor=executor) as swarm:
        swarm.start({"sp500": r.iloc[:window]})
        host = executor.local("sp500")
        appended = [0.0]  # CPU time of this beat's ledger appends (the swarm's own calls)
        append = swarm.ledger.add_entries

        def timed_append(*args: Any, **kwargs: Any) -> range:
            begin = time.thread_time()
            try:
                return append(*args, **kwargs)
            finally:
                appended[0] += time.thread_time() - begin

        swarm.ledger.add_entries = timed_append  # type: ignore[method-assign]
        for i in range(beats):
            appended[0] = 0.0
            tick = Tick("sp500", r.index[window + i].to_pydatetime(),
                        value=float(r.iloc[window + i]))
            begin, begin_cpu = time.perf_counter(), time.thread_time()
            report = swarm.step(tick)
            elapsed, elapsed_cpu = time.perf_counter() - begin, time.thread_time() - begin_cpu
            levels = len(report.consensus) or levels
            t = swarm.timings["sp500"]
            if i % 5 == 0:  # the crypto floor, interleaved: it sees the same load
                s_, v_ = _crypto_floor(len(agents), levels, 3)
                floor_sign.append(s_)
                floor_verify.append(v_)
            if t["refit"] > 0:  # refit beats measure the refit, not the runtime
                continue
            total.append(elapsed)
            own.append(t["agents"])
            consensus.append(t["combine"])
            cpu_total.append(elapsed_cpu)
            cpu_own.append(host.cpu_seconds["agents"])
            cpu_consensus.append(host.cpu_seconds["combine"])
            cpu_ledger.append(appended[0])
    over = [t - a for t, a in zip(total, own, strict=True)]
    med_own = statistics.median(own)
    med_over = statistics.median(over)
    share = med_over / med_own
    p99 = float(np.percentile(over, 99))
    sign_s, verify_s = statistics.median(floor_sign), statistics.median(floor_verify)
    n_sig = len(agents) * levels
    # CPU time of this thread, means: what the beat computes, not what the load adds
    own_cpu = statistics.fmean(cpu_own)
    over_cpu = statistics.fmean(cpu_total) - own_cpu
    share_cpu = over_cpu / own_cpu
    ledger_cpu = statistics.fmean(cpu_ledger)
    rest_cpu = over_cpu - statistics.fmean(cpu_consensus) - ledger_cpu
    return [
        ["beat: agents' own update+forecast (median)", f"{1e3 * med_own:.2f} ms", "",
         "reference", ""],
        ["beat: runtime's own cost (median)", f"{1e3 * med_over:.2f} ms",
         "<= 10% of agents", f"{100 * share:.0f}% of agents", "yes" if share <= 0.10 else "no"],
        ["  of which sign + combine, all levels", f"{1e3 * statistics.median(consensus):.2f} ms",
         "", f"{100 * statistics.median(consensus) / med_own:.0f}% of agents", ""],
        ["beat: runtime's own cost (p99)", f"{1e3 * p99:.2f} ms", "", "", ""],
        ["beat: whole beat (median / p99)", f"{1e3 * statistics.median(total):.2f} / "
         f"{1e3 * float(np.percentile(total, 99)):.2f} ms", "", "", ""],
        ["beat, CPU time: agents' update+forecast (mean)", f"{1e3 * own_cpu:.2f} ms", "",
         "reference", ""],
        ["beat, CPU time: runtime's own (mean)", f"{1e3 * over_cpu:.2f} ms",
         "<= 10% of agents", f"{100 * share_cpu:.0f}% of agents",
         "yes" if share_cpu <= 0.10 else "no"],
        ["  of which sign + combine, all levels (CPU)",
         f"{1e3 * statistics.fmean(cpu_consensus):.2f} ms", "",
         f"{100 * statistics.fmean(cpu_consensus) / own_cpu:.0f}% of agents", ""],
        [f"  crypto floor: {n_sig} Ed25519 signatures (CPU, on the beat)",
         f"{1e3 * sign_s:.2f} ms", "", f"{100 * sign_s / own_cpu:.0f}% of agents", ""],
        [f"  {n_sig} verifications (CPU; own estimates: not on the beat)",
         f"{1e3 * verify_s:.2f} ms", "", f"{100 * verify_s / own_cpu:.0f}% of agents", ""],
        ["  left beyond the signatures (consensus, roles, ledger; CPU)",
         f"{1e3 * (over_cpu - sign_s):.2f} ms", "",
         f"{100 * (over_cpu - sign_s) / own_cpu:.0f}% of agents", ""],
        ["  of which the ledger append (canonical JSON, hashes, SQLite; CPU)",
         f"{1e3 * ledger_cpu:.2f} ms", "", f"{100 * ledger_cpu / own_cpu:.0f}% of agents", ""],
        ["  of which scoring, roles and the runtime's bookkeeping (CPU)",
         f"{1e3 * rest_cpu:.2f} ms", "", f"{100 * rest_cpu / own_cpu:.0f}% of agents", ""],
    ]


def replay_throughput(agents: tuple[str, ...], window: int, days: int) -> list[list[str]]:
    r = load("sp500").iloc[: window + days]
    begin = time.perf_counter()
    backtest(r, {a: agent_class(a)() for a in agents}, window=window, baseline=None,
             consensus={"consensus": SWARM_POLICY}, progress=False, n_sim=10)
    bt = days / (time.perf_counter() - begin)
    with tempfile.TemporaryDirectory() as home, Swarm(
            ["sp500"], home=home, agents=agents, window=window, fsync=False,
            roles=RoleConfig.quiet()) as swarm:
        begin = time.perf_counter()
        swarm.start({"sp500": r.iloc[:window]})
        summary = swarm.run(Replay(r, portfolio="sp500", start=window))
        rt = summary.total_beats / (time.perf_counter() - begin)
    return [["replay: beats/s (fit included)", f"{rt:.1f}", "", f"backtest {bt:.1f} days/s",
             f"{rt / bt:.2f}x"]]


def _scaled_swarm(executor_name: str, portfolios: int, agents: tuple[str, ...], window: int,
                  home: str) -> tuple[Swarm, dict[str, int], float]:
    """A started swarm of ``portfolios`` over the S&P 500 at staggered offsets, its offsets,
    and the seconds its start (every agent's fit) took."""
    r = load("sp500")
    if executor_name == "ray":
        from swarmvar.swarm.ray_executor import RayExecutor

        executor: Any = RayExecutor(shards=2, num_cpus=2)
    else:
        executor = LocalExecutor(workers=2)
    names = [f"p{k}" for k in range(portfolios)]
    offsets = {n: (37 * k) % 2000 for k, n in enumerate(names)}
    swarm = Swarm(names, home=home, agents=agents, window=window, fsync=False,
                  executor=executor, checkpoint_every=10**6, ledger_batch=portfolios)
    swarm.__enter__()
    begin = time.perf_counter()
    swarm.start({n: r.iloc[o: o + window] for n, o in offsets.items()})
    return swarm, offsets, time.perf_counter() - begin


def scale_out(small: int, large: int, agents: tuple[str, ...], beats: int, window: int,
              chunk: int = 25) -> list[list[str]]:
    """Local with ``small`` and ``large`` portfolios and Ray with ``large``, all started
    first, then beaten in turns of ``chunk`` beats: on a shared machine the three see the
    same load drift, which a one-after-the-other run does not (a sequential run under a
    rising load once gave Ray 2.0x; the same code interleaved, 0.96x)."""
    r = load("sp500")
    homes = [tempfile.TemporaryDirectory() for _ in range(3)]
    runs: dict[str, tuple[Swarm, dict[str, int], float]] = {}
    spent = {"small": 0.0, "local": 0.0, "ray": 0.0}
    try:
        for key, kind, n, home in (("small", "local", small, homes[0]),
                                   ("local", "local", large, homes[1]),
                                   ("ray", "ray", large, homes[2])):
            runs[key] = _scaled_swarm(kind, n, agents, window, home.name)
        for first in range(0, beats, chunk):
            for key, (swarm, offsets, _) in runs.items():
                begin = time.perf_counter()
                for i in range(first, min(first + chunk, beats)):
                    swarm.beat([Tick(n, r.index[o + window + i].to_pydatetime(),
                                     value=float(r.iloc[o + window + i]))
                                for n, o in offsets.items()])
                spent[key] += time.perf_counter() - begin
    finally:
        for swarm, _, _ in runs.values():
            swarm.__exit__(None, None, None)
        for home in homes:
            home.cleanup()
    local, ray = spent["local"], spent["ray"]
    flat = (local / large) / (spent["small"] / small)
    return [
        [f"scale-out: {large} portfolios x {len(agents)} agents x {beats} beats, local "
         f"(2 workers)", f"{local:.1f} s", "", "reference", ""],
        ["scale-out: same on Ray (2 actors, 2 CPUs), interleaved in turns of "
         f"{chunk} beats", f"{ray:.1f} s", "<= 1.3x local", f"{ray / local:.2f}x",
         "yes" if ray <= 1.3 * local else "no"],
        [f"scale-out: per-portfolio cost {large} vs {small} portfolios (local)",
         f"{flat:.2f}x", "within 20%", "", "yes" if abs(flat - 1) <= 0.2 else "no"],
        [f"scale-out: start (every agent fitted), {large} portfolios, local / Ray",
         f"{runs['local'][2]:.1f} / {runs['ray'][2]:.1f} s", "", "not interleaved", ""],
    ]


_CHILD = """
import sys
from swarmvar.data import load
from swarmvar.swarm import Replay, Swarm, RoleConfig
home, n, agents, window = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4])
r = load("sp500")
names = [f"p{k}" for k in range(n)]
with Swarm(names, home=home, agents=agents, window=window, fsync=False, checkpoint_every=n,
           ledger_batch=n, roles=RoleConfig.quiet()) as s:
    s.start({p: r.iloc[:window] for p in names})
    frame = r.to_frame("x")
    for p in names:
        frame[p] = r
    s.run(Replay(frame.drop(columns="x").iloc[: window + 400], portfolio="*", start=window))
"""


def _beats_in(home: Path) -> int:
    import sqlite3

    path = home / "ledger.sqlite"
    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT COUNT(*) FROM entries WHERE kind='consensus'").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def recovery(portfolios: int, agents: tuple[str, ...], window: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        args = [sys.executable, "-c", _CHILD, str(home), str(portfolios), ",".join(agents),
                str(window)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while _beats_in(home) < 3 * portfolios and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.perf_counter()
        before = _beats_in(home)
        again = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _beats_in(home) <= before and time.monotonic() < deadline:
            time.sleep(0.01)
        seconds = time.perf_counter() - killed
        again.send_signal(signal.SIGKILL)
        again.wait()
    return [[f"recovery: SIGKILL to first beat, {portfolios} portfolios", f"{seconds:.2f} s",
             "", "imports included", ""]]


def _book_beats(home: Path, frame: Any, agents: tuple[str, ...], window: int, beats: int,
                every: int) -> tuple[list[float], list[float]]:
    """Beat a 20-asset book ``beats`` times: each beat's wall time, and each attribution's
    own seconds (from its ledger record; ``every`` 0: none)."""
    from swarmvar import book_var
    from swarmvar.ledger import Ledger

    book = {"book": {"positions": {str(a): 50_000.0 for a in frame.columns}}}
    times = []
    with Swarm(book, home=home, agents=agents, window=window, fsync=False,
               roles=RoleConfig.quiet(attribute_every=every), book_var=book_var) as swarm:
        swarm.start(frame.iloc[:window])
        for i in range(window, window + beats):
            tick = Tick("*", frame.index[i].to_pydatetime(), assets=frame.iloc[i].to_dict())
            began = time.perf_counter()
            swarm.step(tick)
            times.append(time.perf_counter() - began)
    with Ledger.open(home) as ledger:
        costs = [float(e.data["result"]["detail"]["seconds"]) for e in ledger.entries()
                 if e.kind == "flow" and e.data.get("flow") == "attribution"]
    return times, costs


def attribution_cost(quick: bool = False) -> list[list[str]]:
    """A streamed 20-asset book's attribution: its seconds per due beat beside the beat's."""
    from swarmvar.books import load_stocks

    window, beats, every = (250, 12, 4) if quick else (1000, 60, 10)
    frame = load_stocks().iloc[-(window + beats):]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        off, _ = _book_beats(Path(tmp) / "off", frame, CHEAP, window, beats, 0)
        on, costs = _book_beats(Path(tmp) / "on", frame, CHEAP, window, beats, every)
    rows.append([f"attribution per due beat: 20 assets, window {window}",
                 f"{statistics.median(costs):.3f} s" if costs else "none landed",
                 "off the beat", f"{len(costs)} due (every {every} beats)", ""])
    rows.append([f"  beat median, attribution off / on ({len(CHEAP)} agents)",
                 f"{1000 * statistics.median(off):.1f} / {1000 * statistics.median(on):.1f} ms",
                 "on ~ off", f"max on {1000 * max(on):.1f} ms", ""])
    return rows


def main(quick: bool = False) -> None:
    load_before = _load()
    if quick:
        rows = beat_overhead(CHEAP, 150, 15)
        rows += replay_throughput(CHEAP, 150, 20)
        rows += scale_out(2, 3, CHEAP, 4, 100, chunk=2)
        rows += recovery(2, ("NormalInverseGamma", "BayesianBootstrap"), 100)
        rows += attribution_cost(quick=True)
    else:
        rows = beat_overhead(DEFAULT_AGENTS, 1000, 300)
        rows += replay_throughput(DEFAULT_AGENTS, 1000, 2500)
        rows += scale_out(10, 200, DEFAULT_AGENTS, 250, 1000)
        rows += recovery(200, DEFAULT_AGENTS, 1000)
        rows += attribution_cost()
    print_table(rows)
    print(f"load average: {load_before} before, {_load()} after (2-core machine, shared)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
