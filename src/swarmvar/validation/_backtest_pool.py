"""Where a backtest's rows run: here or over worker processes, with a progress display.

:func:`_run_rows` runs every row's task (:func:`~._backtest_days._run_any_row`)
in this process, or over ``workers`` processes of a
:class:`~concurrent.futures.ProcessPoolExecutor` — longest row first
(:func:`_longest_first`), forked when :func:`_pool_context` finds it safe (no
other thread, no JAX backend: :func:`_jax_started`), else spawned — and drains
the workers' progress reports into the display ``progress`` starts
(:func:`_progress_bar`, or :class:`_NoBar` without rich). The numbers do not
depend on where a row ran. Called by :func:`~.backtest.backtest`; the
runtime's worker executors also use :func:`_pool_context`.

State: the pool, its report queue and the progress display live for one
call; a worker process that dies is :class:`~swarmvar.errors.WorkerFailed`.
Patch ``_jax_started`` here (``_pool_context`` reads it from this module).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..errors import WorkerFailed
from ._backtest_days import _init_worker, _run_any_row
from ._backtest_recorder import _Recorder
from ._backtest_rows import Forecaster
from .evaluate import RawLevel


class _NoBar:
    """The progress bar's interface, doing nothing (``progress=False`` imports no rich)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def advance(self, task: int, n: float = 1) -> None:
        return None


def _progress_bar(*, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TextColumn("forecasts"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
    )


#: What every row's task needs besides the row: returns, window, refit_every,
#: levels, horizon, days (forecast days), step.
_Job = tuple[np.ndarray, int, int, tuple[float, ...], int, int, int]


def _jax_started() -> bool:
    """Whether this process has started a JAX backend (whose threads do not survive fork)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # the check moved: assume a backend runs
        return True


def _pool_context() -> Any:
    """``fork`` when it is safe here, else ``spawn``.

    A forked worker starts at once with every module already imported (a
    spawned one pays ~1.5 s re-importing numpy, scipy, pandas and JAX), but
    fork copies only the calling thread: it is used only while this process
    runs no other Python thread and has no JAX backend (XLA's thread pool).
    """
    import multiprocessing as mp

    if ("fork" in mp.get_all_start_methods() and threading.active_count() == 1
            and not _jax_started()):
        return mp.get_context("fork")
    return mp.get_context("spawn")


#: Starts the progress display and yields the callback that advances it by n row-days.
Progress = Callable[[], AbstractContextManager[Callable[[int], None]]]


def _longest_first(rows: Mapping[str, Forecaster], horizon: int) -> list[str]:
    """Row names, costliest first (a pool hands tasks out in submission order: LPT).

    Rows with a ``cost_hint`` (every swarmvar agent: milliseconds of a day at
    horizon 1, of a forecast at horizon 10) are ordered by it for the horizon;
    rows without one come first, in reverse order (the default swarm lists its
    agents cheapest first). Only the schedule depends on it, never a number.
    """
    def cost(name: str) -> float:
        hint = getattr(rows[name], "cost_hint", None)
        try:
            return float(hint[0] if horizon == 1 else hint[1])  # type: ignore[index]
        except (TypeError, IndexError, ValueError):
            return float("inf")

    return sorted(list(rows)[::-1], key=lambda name: -cost(name))


def _run_rows(
    rows: Mapping[str, Forecaster],
    args: _Job,
    seed: int,
    n_sim: int,
    workers: int,
    progress: Progress,
) -> dict[str, tuple[_Recorder, dict[float, RawLevel]]]:
    """All rows and their tests, here or over ``workers`` processes (same numbers either way)."""
    keys = {name: (seed, k) for k, name in enumerate(rows)}
    if workers <= 1 or len(rows) <= 1:
        with progress() as advance:
            return {name: _run_any_row(row, *args, keys[name], n_sim, advance)
                    for name, row in rows.items()}
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = _pool_context()
    reports = ctx.Queue()
    order = _longest_first(rows, args[4])
    try:
        with ProcessPoolExecutor(min(workers, len(rows)), mp_context=ctx,
                                 initializer=_init_worker, initargs=(reports,)) as pool:
            # submitting starts the workers (forked ones, all at once): before the
            # progress display starts its thread
            futures = {name: pool.submit(_run_any_row, rows[name], *args, keys[name], n_sim)
                       for name in order}
            days = args[5]
            expected, reported = days * len(rows), 0
            with progress() as advance:
                while not all(f.done() for f in futures.values()):
                    try:
                        n = reports.get(timeout=0.1)
                    except queue_mod.Empty:
                        continue
                    reported += n
                    advance(n)
                out = {name: futures[name].result() for name in rows}
                # A worker's last reports can arrive after its result (the queue's
                # feeder thread flushes on its own): wait briefly, then count the rest.
                while reported < expected:
                    try:
                        n = reports.get(timeout=0.5)
                    except queue_mod.Empty:
                        advance(expected - reported)
                        break
                    reported += n
                    advance(n)
    except BrokenProcessPool as exc:
        raise WorkerFailed(
            "a backtest worker process died before returning its row (killed, out of memory, "
            "or started from a script whose top level runs backtest(workers>1) without an "
            "`if __name__ == '__main__':` guard); rerun with workers=1 to see the row's own "
            "error"
        ) from exc
    return out
