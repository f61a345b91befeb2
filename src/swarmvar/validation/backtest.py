"""The backtest driver: rolling-window, strictly out-of-sample VaR/ES forecasts and their tests.

For each forecast day ``t`` (``window <= t <= n - horizon``, every ``step``-th
such day) every row sees only ``returns[:t]``:

* on the first day each forecaster is fitted on ``returns[t - window : t]``;
  every ``refit_every`` days it is refitted (``refit``) on the trailing
  window, and in between it absorbs each realized return with ``update``;
* it then forecasts VaR/ES at every level for the next ``horizon`` returns,
  and the realized loss ``-(r_t + ... + r_{t+h-1})`` is scored against it.

With ``step = horizon`` the scored ``h``-day windows do not overlap: their
losses are independent (the coverage tests' assumption, which overlapping
windows break) and there are ``h`` times fewer forecasts to make; the rows
still refit and absorb every day as above. That is how the swarm's ``h``-day
track record is scored (:func:`swarmvar.var`).

A row with a ``forecast_block`` method (every
:class:`~swarmvar.models.base.Agent`) gets the days between two refits in
one call, ``forecast_block(r[t : t+n], ...)``: by its contract the same
forecasts as ``forecast`` then ``update`` day by day, each day's seeing only
the returns before it, so agents can vectorize the days' work.

Rows are the agents (anything with ``fit``/``refit``/``update``/``forecast``,
e.g. every :class:`~swarmvar.models.base.Agent`), optional consensus rows,
and the baselines, arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t MLE on the same
windows (a refit that does not converge keeps the previous fit, noted in
``BacktestResult.notes``). A consensus
row is either a :class:`~swarmvar.consensus.Policy` — the swarm's robust
consensus (:func:`~swarmvar.consensus.consensus_series`, the same rule and
interval as a live :func:`~swarmvar.consensus.combine`), whose track-record
or BMA weights on day ``t`` use only days before ``t`` — or any callable
from the agents' same-day forecasts to one forecast.

Randomness: the seed of each row's fit and forecast on day ``t`` is derived
from ``(seed, row, t)``, so a day's numbers do not depend on how much
randomness earlier days consumed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..consensus import LevelForecasts, Policy, Weighting, consensus_levels
from ..data import as_array
from ..errors import InvalidParameter, InvalidReturns, WorkerFailed
from ..models.base import Seed
from ..models.registry import neediest
from ..models.risk import check_alphas
from ..types import Forecast, RiskMeasure
from .baseline import GarchTBaseline
from .evaluate import RawLevel, evaluate_row, finish_rows
from .result import BacktestResult, LevelSeries, Timing


class Forecaster(Protocol):
    """What the driver needs of a row: the :class:`~swarmvar.models.base.Agent` life cycle."""

    @property
    def name(self) -> str: ...

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Any: ...

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Any: ...

    def update(self, r: float) -> float: ...

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast: ...


@runtime_checkable
class StudentTPredictive(Protocol):
    """A forecaster whose predictive loss is ``loc + scale * T_df`` (exact ES-test simulation)."""

    def predictive_t(self, horizon: int = 1) -> tuple[float, float, float]: ...


#: A consensus: combines the agents' forecasts of one day into one forecast.
Combiner = Callable[[Mapping[str, Forecast]], Forecast]


class Baseline(enum.Enum):
    """Baseline rows the driver can add: arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t."""

    ARCH = "arch"
    ARCH_GJR = "arch-gjr"

    def forecaster(self) -> GarchTBaseline:
        return GarchTBaseline(asymmetric=self is Baseline.ARCH_GJR)


def _baselines(baseline: object) -> list[Baseline]:
    """``None``, one baseline or a sequence of them, as distinct :class:`Baseline` members."""
    if baseline is None:
        return []
    items = [baseline] if isinstance(baseline, (str, Baseline)) else baseline
    if not isinstance(items, (list, tuple)):
        raise InvalidParameter(f"baseline must be a Baseline, its name or a list of them, "
                               f"not {baseline!r}")
    out: list[Baseline] = []
    for item in items:
        try:
            b = Baseline(item)
        except ValueError as exc:
            known = ", ".join(repr(b.value) for b in Baseline)
            raise InvalidParameter(f"unknown baseline {item!r}; use {known} or None") from exc
        if b not in out:
            out.append(b)
    return out


def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidParameter(f"{name} must be a whole number >= {low}, not {value!r}")
    return int(value)


def _named(agents: Mapping[str, Forecaster] | Sequence[Forecaster]) -> dict[str, Forecaster]:
    items = agents.items() if isinstance(agents, Mapping) else (
        (getattr(a, "name", type(a).__name__), a) for a in agents
    )
    out: dict[str, Forecaster] = {}
    for name, agent in items:
        for method in ("fit", "refit", "update", "forecast"):
            if not callable(getattr(agent, method, None)):
                raise InvalidParameter(f"agent {name!r} has no {method}(); it is not an Agent")
        key, k = str(name), 2
        while key in out:
            key, k = f"{name} #{k}", k + 1
        out[key] = copy.deepcopy(agent)  # the caller's agents stay as they were
    return out


def _check_window(window: int, rows: Mapping[str, Forecaster]) -> None:
    """Refuse a fitting ``window`` shorter than an agent's ``min_observations`` (rows
    without one, such as custom forecasters, are not checked), before any fit runs."""
    needs = [(name, int(m)) for name, row in rows.items()
             if isinstance(m := getattr(row, "min_observations", None), (int, np.integer))
             and not isinstance(m, bool)]
    if not needs:
        return
    need, agent = neediest(needs)
    if window < need:
        raise InvalidParameter(
            f"a window of {window} returns (window={window} in Python, --window {window} on "
            f"the command line) is too short: {agent} needs at least {need} returns to fit; "
            f"give a window of at least {need}")


class _Recorder:
    """Preallocated daily series of one row."""

    def __init__(self, alphas: tuple[float, ...], days: int) -> None:
        self.cols = {a: np.full((6, days), np.nan) for a in alphas}
        self.interval_mass = 0.90
        self.t_params = np.full((3, days), np.nan)
        self.logscore = np.full(days, np.nan)
        self.fit = self.update = self.forecast = 0.0
        self.fits = 0
        self.notes: tuple[str, ...] = ()
        self.weights: dict[float, np.ndarray] = {}  # a consensus row's agent weights (T, n)

    def store(self, i: int, fc: Forecast) -> None:
        self.interval_mass = fc.interval_mass
        for alpha, col in self.cols.items():
            m = fc.at(alpha)
            col[:, i] = (m.var, m.es, *m.var_interval, *m.es_interval)

    def forecast_of(self, name: str, i: int, horizon: int) -> Forecast:
        """Day ``i``'s forecast as the row made it (every field of it is stored)."""
        return Forecast(name, horizon, tuple(
            RiskMeasure(a, c[0, i], c[1, i], (c[2, i], c[3, i]), (c[4, i], c[5, i]))
            for a, c in self.cols.items()
        ), self.interval_mass)

    def store_path(self, alpha: float, path: Any) -> None:
        """All days of one level at once, from a :class:`~swarmvar.consensus.ConsensusPath`."""
        self.cols[alpha][:] = np.vstack(
            [path.var, path.es, path.var_interval.T, path.es_interval.T]
        )
        self.weights[alpha] = np.asarray(path.weights, dtype=np.float64)

    def series(self, losses: np.ndarray) -> dict[float, LevelSeries]:
        return {
            a: LevelSeries(a, c[0], c[1], c[2], c[3], c[4], c[5], np.asarray(losses > c[0]))
            for a, c in self.cols.items()
        }

    def evaluate(
        self, losses: np.ndarray, *, seed: int, row: int, n_sim: int
    ) -> dict[float, RawLevel]:
        """This row's tests and scores (row number ``row`` keys its simulations)."""
        t_params = None if np.isnan(self.t_params).any() else self.t_params
        return evaluate_row(losses, self.series(losses), t_params, seed=seed, row=row,
                            n_sim=n_sim)


def _losses(r: np.ndarray, window: int, horizon: int, days: int) -> np.ndarray:
    """Realized loss of each forecast day: ``-(r_t + ... + r_{t+h-1})`` ``(days,)``."""
    cum = np.convolve(r, np.ones(horizon), mode="valid")  # cum[t] = r[t] + ... + r[t+h-1]
    result: np.ndarray = -cum[window : window + days]
    return result


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


def _fit_if_due(
    row: Forecaster, rr: _Recorder, i: int, r: np.ndarray, t: int, window: int,
    refit_every: int, key: tuple[int, int],
) -> None:
    """(Re)fit on ``r[t-window:t]`` on the first day and every ``refit_every`` days after."""
    if i % refit_every == 0:
        begin = time.perf_counter()
        fit = row.fit if i == 0 else row.refit
        fit(r[t - window : t], seed=np.random.default_rng([*key, t, 0]))
        rr.fit += time.perf_counter() - begin
        rr.fits += 1


def _day(
    row: Forecaster,
    rr: _Recorder,
    i: int,
    r: np.ndarray,
    t: int,
    window: int,
    refit_every: int,
    levels: tuple[float, ...],
    horizon: int,
    key: tuple[int, int],
    predictive_t: Callable[[int], tuple[float, float, float]] | None = None,
    record: int | None = -1,
) -> None:
    """One row on day ``t``: (re)fit on ``r[t-window:t]`` if due, forecast, absorb ``r[t]``.

    ``predictive_t`` is the row's :class:`StudentTPredictive` method, if it has one.
    The forecast goes to record ``record`` (default: ``i``); with ``None`` the day
    is not forecast, only fitted and absorbed (a strided run's days between).
    """
    _fit_if_due(row, rr, i, r, t, window, refit_every, key)
    k = i if record == -1 else record
    if k is not None:
        begin = time.perf_counter()
        fc = row.forecast(levels, horizon, seed=np.random.default_rng([*key, t, 1]))
        if predictive_t is not None:
            rr.t_params[:, k] = predictive_t(horizon)
        rr.forecast += time.perf_counter() - begin
        rr.store(k, fc)
    begin = time.perf_counter()
    logpdf = row.update(float(r[t]))
    rr.update += time.perf_counter() - begin
    if k is not None and horizon == 1:
        rr.logscore[k] = logpdf


class _DaySeeds(Sequence[np.random.Generator]):
    """Day ``t + j``'s forecast seed, made when asked for (the parametric agents' horizon-1
    forecasts never ask)."""

    def __init__(self, key: tuple[int, int], t: int, n: int) -> None:
        self._key, self._t, self._n = key, t, n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, j: int) -> np.random.Generator: ...

    @overload
    def __getitem__(self, j: slice) -> Sequence[np.random.Generator]: ...

    def __getitem__(self, j: int | slice) -> Any:
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(self._n))]
        if not -self._n <= j < self._n:
            raise IndexError(j)
        return np.random.default_rng([*self._key, self._t + j % self._n, 1])


def _block(
    row: Any, name: str, rr: _Recorder, i: int, n: int, r: np.ndarray, t: int,
    levels: tuple[float, ...], horizon: int, key: tuple[int, int],
) -> None:
    """Days ``i .. i+n-1`` (returns ``t .. t+n-1``) of a row by its ``forecast_block``.

    The same forecasts as :func:`_day` would make one day at a time (the
    agent's contract, tested per agent); the block's time is recorded as
    forecast time (it includes the updates).
    """
    begin = time.perf_counter()
    forecasts, dens = row.forecast_block(r[t : t + n], levels, horizon,
                                         seeds=_DaySeeds(key, t, n))
    rr.forecast += time.perf_counter() - begin
    if len(forecasts) != n or np.shape(dens) != (n,):
        raise InvalidParameter(f"{name}.forecast_block returned {len(forecasts)} forecasts and "
                               f"densities of shape {np.shape(dens)} for {n} returns")
    for j, fc in enumerate(forecasts):
        rr.store(i + j, fc)
    if horizon == 1:
        rr.logscore[i : i + n] = dens


#: Row-days between progress reports from a worker process.
_REPORT_EVERY = 25
_queue: Any = None  # a worker's progress queue (set by _init_worker)


def _init_worker(queue: Any) -> None:
    global _queue
    _queue = queue


def _run_row(
    row: Forecaster,
    r: np.ndarray,
    window: int,
    refit_every: int,
    levels: tuple[float, ...],
    horizon: int,
    days: int,
    key: tuple[int, int],
    n_sim: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[_Recorder, dict[float, RawLevel]]:
    """Every forecast day of one row, then its tests; ``on_step(n)`` reports ``n`` more days done.

    The tests run here, where the row ran, so that worker processes evaluate
    their rows in parallel (the numbers do not depend on where: they are
    keyed by ``key = (seed, row number)``).
    """
    rr = _Recorder(levels, days)
    # the protocol checks once per row, not once per day
    predictive = row.predictive_t if isinstance(row, StudentTPredictive) else None
    blocks = predictive is None and callable(getattr(row, "forecast_block", None))
    report = on_step if on_step is not None else (_queue.put if _queue is not None else None)
    if blocks:  # a refit period at a time
        name = getattr(row, "name", type(row).__name__)
        for i in range(0, days, refit_every):
            n = min(refit_every, days - i)
            _fit_if_due(row, rr, i, r, window + i, window, refit_every, key)
            _block(row, name, rr, i, n, r, window + i, levels, horizon, key)
            if report is not None:
                report(n)
    else:
        pending = 0
        for i in range(days):
            _day(row, rr, i, r, window + i, window, refit_every, levels, horizon, key,
                 predictive)
            pending += 1
            if report is not None and (on_step is not None or pending == _REPORT_EVERY
                                       or i == days - 1):
                report(pending)
                pending = 0
    return _finish(row, rr, _losses(r, window, horizon, days), key, n_sim)


def _finish(row: Forecaster, rr: _Recorder, losses: np.ndarray, key: tuple[int, int],
            n_sim: int) -> tuple[_Recorder, dict[float, RawLevel]]:
    """A row's notes (e.g. the baseline's refits that did not converge) and its tests."""
    notes = getattr(row, "notes", ())
    if isinstance(notes, (list, tuple)):
        rr.notes = tuple(str(n) for n in notes)
    return rr, rr.evaluate(losses, seed=key[0], row=key[1], n_sim=n_sim)


def _run_row_strided(
    row: Forecaster,
    r: np.ndarray,
    window: int,
    refit_every: int,
    levels: tuple[float, ...],
    horizon: int,
    days: int,
    key: tuple[int, int],
    n_sim: int,
    step: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[_Recorder, dict[float, RawLevel]]:
    """:func:`_run_row` forecasting every ``step``-th day only (``days`` forecast days).

    Calendar day ``i`` (return ``t = window + i``) refits when
    ``i % refit_every == 0`` and absorbs ``r[t]`` as every day does; it
    forecasts, with the seed the every-day run gives day ``t``, when
    ``i % step == 0`` (record ``i // step``). A forecast day's numbers are
    therefore those of the every-day run on that day, for a row whose
    ``forecast`` draws only from its seed (every swarmvar agent but the
    bootstrap with ``seed=None``, which the driver never passes).
    """
    rr = _Recorder(levels, days)
    predictive = row.predictive_t if isinstance(row, StudentTPredictive) else None
    report = on_step if on_step is not None else (_queue.put if _queue is not None else None)
    last = (days - 1) * step  # the last forecast day (the driver's days stop there)
    for i in range(last + 1):
        scored = i % step == 0
        _day(row, rr, i, r, window + i, window, refit_every, levels, horizon, key, predictive,
             record=i // step if scored else None)
        if scored and report is not None:  # a forecast day is a step's worth of days' work
            report(1)
    return _finish(row, rr, _losses(r, window, horizon, last + 1)[::step], key, n_sim)


def _run_any_row(
    row: Forecaster, r: np.ndarray, window: int, refit_every: int, levels: tuple[float, ...],
    horizon: int, days: int, step: int, key: tuple[int, int], n_sim: int,
    on_step: Callable[[int], None] | None = None,
) -> tuple[_Recorder, dict[float, RawLevel]]:
    """:func:`_run_row` (every day) or :func:`_run_row_strided` (every ``step``-th day)."""
    if step == 1:
        return _run_row(row, r, window, refit_every, levels, horizon, days, key, n_sim, on_step)
    return _run_row_strided(row, r, window, refit_every, levels, horizon, days, key, n_sim,
                            step, on_step)


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


def backtest(
    returns: ArrayLike | pd.Series,
    agents: Mapping[str, Forecaster] | Sequence[Forecaster],
    *,
    window: int = 1000,
    refit_every: int = 20,
    alphas: Sequence[float] = (0.99, 0.975),
    horizon: int = 1,
    baseline: Baseline | str | Sequence[Baseline | str] | None = Baseline.ARCH,
    consensus: Mapping[str, Policy | Combiner] | None = None,
    seed: int = 0,
    progress: bool = True,
    n_sim: int = 1000,
    on_day: Callable[[int, int], None] | None = None,
    workers: int = 1,
    step: int = 1,
) -> BacktestResult:
    """Backtest agents (and a baseline) on a return series, strictly out of sample.

    Parameters
    ----------
    returns : array or pandas.Series ``(n,)``
        Daily log returns (fractions), oldest first; a Series' index labels the days.
    agents : sequence of agents, or mapping name -> agent
        Unfitted agents; the driver works on copies.
    window : int
        Trailing observations each (re)fit uses.
    refit_every : int
        Days between refits; ``update`` absorbs each return in between.
    alphas : sequence of float
        Confidence levels.
    horizon : int
        Forecast horizon in days (losses are of the cumulative return).
    baseline : Baseline, "arch", "arch-gjr", a list of them, or None
        Add arch's GARCH(1,1)-t (and/or GJR-GARCH(1,1)-t) MLE rows; the first
        is the Diebold-Mariano reference.
    consensus : mapping name -> Policy or callable, optional
        Consensus rows over the agents (not the baseline): a ``Policy`` runs
        the swarm's robust consensus with its weighting; a callable gets the
        agents' same-day forecasts and returns one.
    seed : int
        Root seed of the agents' randomness and of the tests' simulations.
    progress : bool
        Show a progress bar (days done, time left).
    n_sim : int
        Monte Carlo paths (Z2) and bootstrap resamples (McNeil-Frey).
    on_day : callable, optional
        Called as ``on_day(done, total)`` as row-days complete (``total`` =
        days x rows), for callers with their own progress display.
    workers : int
        Processes to spread the rows over (each row is one sequential task;
        1 runs everything here). The numbers do not depend on it: each row's
        randomness is keyed by ``(seed, row, day)``.
    step : int
        Forecast every ``step``-th day (the rows still refit and absorb every
        day); ``step = horizon`` scores non-overlapping ``h``-day windows,
        whose losses are independent. A forecast day's numbers are those of
        ``step = 1`` on that day. A consensus row's weights on a forecast day
        use the forecast days whose loss is realized by then (``ceil(horizon /
        step)`` forecast days back) within the policy's ``window`` calendar
        days (``ceil(window / step)`` forecast days).

    Returns
    -------
    BacktestResult
    """
    r = as_array(returns, who="the backtest")
    dates = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(r.size)
    window = _whole("window", window, 2)
    refit_every = _whole("refit_every", refit_every, 1)
    horizon = _whole("horizon", horizon, 1)
    levels = check_alphas(alphas)
    step = _whole("step", step, 1)
    span = r.size - window - horizon + 1  # calendar days with a realized h-day loss
    days = -(-span // step)  # forecast days: 0, step, 2 step, ... < span
    if span < 1:
        raise InvalidReturns(
            f"{r.size} returns leave no forecast day after a window of {window} and a horizon "
            f"of {horizon}; give at least {window + horizon} returns or shrink the window"
        )
    rows = _named(agents)
    _check_window(window, rows)
    base_names: list[str] = []
    for base in _baselines(baseline):
        forecaster = base.forecaster()
        base_names.append(forecaster.name)
        rows[forecaster.name] = forecaster
    base_name = base_names[0] if base_names else None
    combiners = dict(consensus or {})
    clash = set(combiners) & set(rows)
    if clash:
        raise InvalidParameter(f"consensus names {sorted(clash)} clash with agent names")
    agent_names = [n for n in rows if n not in base_names]
    policies = {n: c for n, c in combiners.items() if isinstance(c, Policy)}
    callables = {n: c for n, c in combiners.items() if not isinstance(c, Policy)}
    for name, policy in policies.items():
        if len(agent_names) < policy.aggregator.min_agents(policy.f):
            raise InvalidParameter(
                f"consensus {name!r} ({policy.method}) needs at least "
                f"{policy.aggregator.min_agents(policy.f)} agents, got {len(agent_names)}"
            )
    rec = {name: _Recorder(levels, days) for name in [*rows, *combiners]}
    losses = _losses(r, window, horizon, span)[::step]
    realized = -losses

    workers = _whole("workers", workers, 1)
    total = days * len(rows)

    @contextlib.contextmanager
    def shown() -> Iterator[Callable[[int], None]]:
        with _progress_bar(enabled=progress) as bar:
            task = bar.add_task("backtest", total=total)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                bar.advance(task, n)
                if on_day is not None:
                    on_day(done, total)

            yield advance

    ran = _run_rows(rows, (r, window, refit_every, levels, horizon, days, step), seed, n_sim,
                    workers, shown)
    rec.update({name: rr for name, (rr, _) in ran.items()})
    raw = {name: tests for name, (_, tests) in ran.items()}
    for name, combine in callables.items():
        begin = time.perf_counter()
        for i in range(days):
            rec[name].store(i, combine({n: rec[n].forecast_of(n, i, horizon)
                                        for n in agent_names}))
        rec[name].forecast += time.perf_counter() - begin

    for name, policy in policies.items():
        begin = time.perf_counter()
        log_scores = (np.column_stack([rec[n].logscore for n in agent_names])
                      if horizon == 1 and policy.weighting is Weighting.BMA else None)
        forecasts = {}
        for alpha in levels:
            c = np.stack([rec[n].cols[alpha] for n in agent_names], axis=-1)  # (6, T, n)
            forecasts[alpha] = LevelForecasts(c[0], c[1], np.stack([c[2], c[3]], axis=-1),
                                              np.stack([c[4], c[5]], axis=-1))
        rule, lag = policy, horizon
        if step > 1:  # in forecast days: the loss of a day is known ceil(h / step) days on
            lag = -(-horizon // step)
            if policy.window is not None:
                rule = dataclasses.replace(policy, window=-(-policy.window // step))
        for alpha, path in consensus_levels(realized, forecasts, rule, log_scores=log_scores,
                                            horizon=lag).items():
            rec[name].store_path(alpha, path)
        rec[name].forecast += time.perf_counter() - begin

    for k, name in enumerate(rec):  # the consensus rows, after the agents and baseline
        if name not in raw:
            raw[name] = rec[name].evaluate(losses, seed=seed, row=k, n_sim=n_sim)
    series = {name: rr.series(losses) for name, rr in rec.items()}
    evaluation = finish_rows({n: raw[n] for n in rec}, baseline=base_name)
    order = [*agent_names, *combiners, *base_names]
    return BacktestResult(
        dates=dates[window : window + span : step],
        returns=realized,
        alphas=levels,
        horizon=horizon,
        window=window,
        refit_every=refit_every,
        baseline=base_name,
        series={n: series[n] for n in order},
        logscore={n: rec[n].logscore for n in order if horizon == 1 and n not in combiners},
        evaluation={n: evaluation[n] for n in order},
        timings={n: Timing(rec[n].fit, rec[n].update, rec[n].forecast, rec[n].fits) for n in order},
        baselines=tuple(base_names),
        agents=tuple(agent_names),
        consensus_weights={n: rec[n].weights for n in policies},
        notes={n: rec[n].notes for n in order if rec[n].notes},
        step=step,
    )
