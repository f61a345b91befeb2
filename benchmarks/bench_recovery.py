"""A lost host restored in the background: the other portfolios' beats beside their normal ones.

Run: ``.venv/bin/python benchmarks/bench_recovery.py [--quick]``

P portfolios on two worker processes (``LocalExecutor(workers=2)``) beat
together (one ``Swarm.beat`` call per tick, every portfolio in it). After B
beats the worker hosting about half of them is killed with SIGKILL. Measured
in the same run:

* the beat's wall time before the kill (the reference: both hosts beat);
* the beat's wall time while the lost host is restored in the background
  (its portfolios' ticks are queued, the other host's portfolios beat): the
  target is no wait, i.e. about the reference (the restoring process takes
  one of the two cores, so some slowdown is the machine, not a wait);
* the beat that finds the host dead (a fresh worker process is started);
* SIGKILL to the host back (restored from its checkpoint and the B logged
  beats replayed): before the background restore, every portfolio's beat
  waited this long;
* the catch-up beat: the queued ticks of the lost portfolios, in order;
* what the lost portfolios were served meanwhile: their last consensus,
  stale (availability 0/n), one report per tick.

Beside it, the same portfolios *spread* over both hosts (``Swarm(spread=2)``:
each portfolio's agents in two groups, one per worker) and the same kill:
every portfolio keeps beating on the surviving group's agents — fresh beats,
availability m/n, degraded — while the lost groups are restored and replay
what they missed; counted are those beats, their availability, and their
wall time beside the spread run's own beats with both hosts up.

A resume given its source also checks the data (``resume_check_cost``): a home of
N beats run from a replayed series (NormalInverseGamma + BayesianBootstrap, window
150), then, best of 5 each, reading the ledger's beats (``recovery._ledgered_beats``)
beside reading the same ledger's rows raw and decoding every entry, the whole
``check_source`` for a ``Replay`` of the run's own data, one with 200 older rows
prepended and a ``FollowedFile`` of that file, the resume's ``start`` with and
without the source, and ``Replay.ticks_on`` of 3 dates in a long index beside
converting each row's label.

Quick mode runs the same code on cheap agents, a few portfolios and fewer beats.
Timings on a shared machine are noisy: the load average is printed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _table import print_table  # noqa: E402

from swarmvar.data import load  # noqa: E402
from swarmvar.ledger import Ledger  # noqa: E402
from swarmvar.models import DEFAULT_AGENTS  # noqa: E402
from swarmvar.swarm import FollowedFile, LocalExecutor, Replay, RoleConfig, Swarm  # noqa: E402
from swarmvar.swarm import _recovery as recovery  # noqa: E402
from swarmvar.swarm.consensus import SWARM_POLICY  # noqa: E402
from swarmvar.swarm.executors import shard_of  # noqa: E402
from swarmvar.swarm.runtime import RESTORING  # noqa: E402
from swarmvar.swarm.ticks import as_utc  # noqa: E402
from swarmvar.types import Tick  # noqa: E402

CHEAP = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")


def _load() -> str:
    return open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"


def _ms(xs: list[float]) -> str:
    return f"{1e3 * statistics.median(xs):.1f} ms" if xs else "-"


def _split_names(portfolios: int) -> list[str]:
    """Portfolio names half on each of two shards (shards go by a hash of the name)."""
    names: list[str] = []
    per = {0: 0, 1: 0}
    i = 0
    while len(names) < portfolios:
        name, i = f"p{i:03d}", i + 1
        k = shard_of(name, 2)
        if per[k] < (portfolios + 1 - k) // 2:
            names.append(name)
            per[k] += 1
    return names


def restore_while_beating(portfolios: int, agents: tuple[str, ...], window: int,
                          before: int, limit: int, catch_up: int | None = None
                          ) -> list[list[str]]:
    """Beat ``before`` ticks, kill one host, beat on (at most ``limit`` ticks) until it is
    back and caught up (``Swarm(catch_up=)``)."""
    r = load("sp500")
    names = _split_names(portfolios)
    offsets = {n: (i * 61) % (len(r) - window - before - limit - 1) for i, n in enumerate(names)}
    executor = LocalExecutor(workers=2)
    lost_shard = shard_of(names[0], 2)
    lost = sum(shard_of(n, 2) == lost_shard for n in names)

    def ticks(i: int) -> list[Tick]:
        return [Tick(n, r.index[o + window + i].to_pydatetime(),
                     value=float(r.iloc[o + window + i])) for n, o in offsets.items()]

    with tempfile.TemporaryDirectory() as tmp, Swarm(
            names, home=tmp, agents=agents, window=window, executor=executor,
            checkpoint_every=10 * (before + limit), fsync=False, catch_up=catch_up,
            roles=RoleConfig.quiet()) as swarm:
        swarm.start({n: r.iloc[o: o + window] for n, o in offsets.items()})
        normal: list[float] = []
        for i in range(before):
            t0 = time.perf_counter()
            swarm.beat(ticks(i))
            normal.append(time.perf_counter() - t0)
        os.kill(executor.pids()[lost_shard], signal.SIGKILL)
        killed = time.perf_counter()
        swarm.beat(ticks(before))
        found = time.perf_counter() - killed
        during: list[float] = []
        catching: list[float] = []
        back = float("nan")
        queued = 0
        stale = 0
        for i in range(before + 1, before + limit):
            restoring = swarm.restoring()
            if not restoring:
                break  # back and caught up
            t0 = time.perf_counter()
            reports = swarm.beat(ticks(i))
            seconds = time.perf_counter() - t0
            stale += sum(bool(x.events) and x.events[0].startswith(RESTORING) for x in reports)
            if len(reports) > portfolios or catching:  # back: queued ticks beat first
                if not catching:
                    queued = sum(x.queued for x in restoring.values())
                    back = max(x.seconds for x in restoring.values())
                catching.append(seconds)
            else:
                during.append(seconds)
        swarm.settle()
    ratio = statistics.median(during) / statistics.median(normal) if during else float("nan")
    label = f"{portfolios} portfolios ({lost} on the killed host)"
    return [
        [f"beat, both hosts up, {label}", _ms(normal), "", f"n={len(normal)}", ""],
        [f"beat while one host restores, {label}", _ms(during), "~ the beat above (no wait)",
         f"{ratio:.2f}x, n={len(during)}", "yes" if during and ratio < 2.0 else "no"],
        ["beat that finds the host dead (fresh process)", f"{1e3 * found:.1f} ms", "", "", ""],
        [f"SIGKILL to host back ({before} logged beats replayed)", f"{back:.2f} s", "",
         "what every beat waited before", ""],
        [f"catch-up ({queued} queued ticks, catch_up={catch_up}): beats, median",
         f"{len(catching)}, {_ms(catching)}", "", f"max {_ms([max(catching, default=0.0)])}",
         ""],
        [f"lost portfolios meanwhile: stale reports (availability 0/{len(agents)})",
         f"{stale}", "", "no fresh beat until the host is back", ""],
    ]


def spread_while_restoring(portfolios: int, agents: tuple[str, ...], window: int,
                           before: int, limit: int, f: int | None = None) -> list[list[str]]:
    """The same kill with every portfolio spread over both hosts (``spread=2``): beats served
    from the surviving groups while the lost ones restore, and their availability."""
    r = load("sp500")
    names = _split_names(portfolios)
    offsets = {n: (i * 61) % (len(r) - window - before - limit - 1) for i, n in enumerate(names)}
    executor = LocalExecutor(workers=2)
    policy = SWARM_POLICY if f is None else dataclasses.replace(SWARM_POLICY, f=f)

    def ticks(i: int) -> list[Tick]:
        return [Tick(n, r.index[o + window + i].to_pydatetime(),
                     value=float(r.iloc[o + window + i])) for n, o in offsets.items()]

    with tempfile.TemporaryDirectory() as tmp, Swarm(
            names, home=tmp, agents=agents, window=window, executor=executor, policy=policy,
            checkpoint_every=10 * (before + limit), fsync=False, spread=2,
            roles=RoleConfig.quiet()) as swarm:
        swarm.start({n: r.iloc[o: o + window] for n, o in offsets.items()})
        normal: list[float] = []
        for i in range(before):
            t0 = time.perf_counter()
            swarm.beat(ticks(i))
            normal.append(time.perf_counter() - t0)
        os.kill(executor.pids()[0], signal.SIGKILL)
        during: list[float] = []
        served = 0
        available: list[int] = []
        empty = 0
        back = catch = float("nan")
        killed = time.perf_counter()
        for i in range(before, before + limit):
            restoring = swarm.restoring()
            if i > before and not restoring:
                back = time.perf_counter() - killed
                break
            t0 = time.perf_counter()
            reports = swarm.beat(ticks(i))
            seconds = time.perf_counter() - t0
            if i > before and swarm.restoring():
                during.append(seconds)
            elif i > before:  # this beat caught the restored groups up first
                catch = seconds
            for x in reports:
                if x.consensus and x.consensus[0].available < x.consensus[0].total:
                    served += 1
                    available.append(x.consensus[0].available)
                elif not x.consensus:
                    empty += 1
        swarm.settle()
        after = [c.available for n in names for c in (swarm.latest(n).consensus or ())[:1]]
    ratio = statistics.median(during) / statistics.median(normal) if during else float("nan")
    n = len(agents)
    spread_of = sorted(set(available))
    return [
        [f"spread=2, beat, both hosts up, {portfolios} portfolios", _ms(normal), "",
         f"n={len(normal)}", ""],
        ["spread=2, beat while one host restores", _ms(during), "~ the beat above",
         f"{ratio:.2f}x, n={len(during)}", ""],
        [f"spread=2, fresh degraded beats served meanwhile (m of {n} agents)",
         f"{served}", "stale reports, unspread (above)",
         f"m in {spread_of}, {empty} without a consensus", "yes" if served else "no"],
        ["spread=2, SIGKILL to every group back and caught up", f"{back:.2f} s", "",
         f"the catch-up beat {1e3 * catch:.1f} ms", ""],
        [f"spread=2, availability after the restore (of {n})",
         f"{min(after, default=0)}-{max(after, default=0)}", f"{n}", "",
         "yes" if after and min(after) == n else "no"],
    ]


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    """The best wall time of ``repeat`` calls of ``fn`` (seconds)."""
    out = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def resume_check_cost(beats: int, long_index: int, window: int = 150) -> list[list[str]]:
    """What a resume's data check (``check_source``) costs on a home of ``beats`` beats,
    each figure beside a reference measured in the same run; and ``Replay.ticks_on`` of 3
    dates in an index of ``long_index`` rows beside converting each row's label."""
    r = load("sp500")
    data = r.iloc[200:200 + window + beats]
    grown = r.iloc[:200 + window + beats]  # 200 older rows prepended
    agents = ("NormalInverseGamma", "BayesianBootstrap")
    settings = dict(agents=agents, window=window, checkpoint_every=500, fsync=False,
                    roles=RoleConfig.quiet())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        path = Path(tmp) / "grown.csv"
        grown.to_csv(path, index_label="date")
        t0 = time.perf_counter()
        with Swarm(["sp500"], home=home, **settings) as swarm:
            source = Replay(data, portfolio="sp500", start=window)
            swarm.start(data.iloc[:window], source=source)
            swarm.run(source)
        built = time.perf_counter() - t0
        with Ledger.open(home) as ledger:
            size = ledger.size
            raw = _best(lambda: sum(1 for _ in ledger.store.rows(0, size)))
            decoded = _best(lambda: sum(1 for _ in ledger.entries(0)))
        with Swarm(["sp500"], home=home, **settings) as swarm:
            read = _best(lambda: recovery._ledgered_beats(swarm))
            found = len(recovery._ledgered_beats(swarm)[0]["sp500"])
            own = _best(lambda: recovery.check_source(
                swarm, Replay(data, portfolio="sp500", start=window)))
            older = _best(lambda: recovery.check_source(
                swarm, Replay(grown, portfolio="sp500", start=window)))
            followed = _best(lambda: recovery.check_source(
                swarm, FollowedFile(path, portfolio="sp500")))

        def resume(source: bool) -> None:
            with Swarm(["sp500"], home=home, **settings) as swarm:
                given = Replay(data, portfolio="sp500", start=window) if source else None
                swarm.start(data.iloc[:window], source=given)

        plain = _best(lambda: resume(False), 3)
        checked = _best(lambda: resume(True), 3)
    index = pd.date_range("1500-01-01", periods=long_index, freq="D")
    series = pd.Series(np.zeros(long_index), index=index, name="x")
    wanted = {as_utc(index[i]): None for i in (0, long_index // 2, long_index - 1)}
    on = _best(lambda: Replay(series, portfolio="x").ticks_on(wanted))
    each = _best(lambda: [as_utc(x) for x in index], 1)
    us = 1e6 * read / max(size, 1)
    home_of = f"home of {found} beats, {size} ledger entries"
    return [
        [f"read the ledger's beats ({home_of})", f"{read:.3f} s", "",
         f"{us:.1f} us an entry; rows raw {raw:.4f} s, every entry decoded {decoded:.3f} s",
         ""],
        ["check_source, Replay of the run's own data", f"{own:.3f} s", "",
         f"the read above {read:.3f} s", ""],
        ["check_source, Replay with 200 older rows prepended", f"{older:.3f} s", "", "", ""],
        ["check_source, FollowedFile of that file", f"{followed:.3f} s", "", "", ""],
        ["resume's start given the source (best of 3)", f"{checked:.3f} s", "",
         f"without it {plain:.3f} s", ""],
        [f"Replay.ticks_on, 3 dates in {long_index:,} rows", f"{on:.4f} s", "",
         f"each row's label converted {each:.2f} s", ""],
        [f"(building the home: {found} beats run)", f"{built:.1f} s", "", "", ""],
    ]


def main(quick: bool = False) -> None:
    load_before = _load()
    if quick:
        rows = restore_while_beating(4, CHEAP, 150, 30, 600)
        rows += restore_while_beating(4, CHEAP, 150, 30, 600, catch_up=4)
        rows += spread_while_restoring(4, CHEAP, 150, 30, 600, f=0)  # f=0: 1 agent suffices
        rows += resume_check_cost(150, 20_000)
    else:
        rows = restore_while_beating(20, DEFAULT_AGENTS, 1000, 120, 1500)
        rows += restore_while_beating(20, DEFAULT_AGENTS, 1000, 120, 1500, catch_up=4)
        rows += spread_while_restoring(20, DEFAULT_AGENTS, 1000, 120, 1500)
        rows += resume_check_cost(1500, 200_000)
    print_table(rows)
    print(f"load average: {load_before} before, {_load()} after (2-core machine, shared)")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
