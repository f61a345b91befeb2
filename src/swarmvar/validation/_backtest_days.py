"""The rows' runners: every forecast day of one backtest row, then its tests.

:func:`_run_any_row` is the task :func:`~._backtest_pool._run_rows` runs per
row (here, or pickled by module path to a worker process, forked or spawned):
:func:`_run_row` every day — a refit period at a time through the row's
``forecast_block`` (:func:`_block`, seeds from :class:`_DaySeeds`) or day by day
(:func:`_day`: :func:`_fit_if_due`, forecast, ``update``) — or
:func:`_run_row_strided` every ``step``-th day; :func:`_finish` then runs the
row's tests where the row ran. Seeds are keyed by ``(seed, row, day)``.

State: each runner writes the row (its fits and updates: the driver's deep
copy) and the row's :class:`~._backtest_recorder._Recorder`. Progress goes to
``on_step`` or, in a worker, to the queue :func:`_init_worker` (the pool's
initializer) puts in this module's ``_queue``, every ``_REPORT_EVERY``
row-days (patch them here, where they are read).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from ..data import judged_inputs
from ..errors import InvalidParameter, InvalidReturns
from ..models._arch_refits import ArchRefits
from ._backtest_recorder import _losses, _Recorder
from ._backtest_rows import Forecaster, StudentTPredictive
from .coverage import TestResult
from .evaluate import RawLevel
from .result import Test


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
    """:func:`_run_row` (every day) or :func:`_run_row_strided` (every ``step``-th day).

    An arch baseline whose first fit is refused (a non-finite parameter,
    :class:`~swarmvar.models._arch_refits.ArchRefits`) has no forecasts: its
    row is kept with NaN forecasts and tests and the refusal as its note,
    and every other row runs on (was: the whole backtest stopped).

    The row's fits run inside :func:`~swarmvar.data.judged_inputs`: the
    backtest judged ``r`` where it entered (a book's rows, their assets), and
    in a worker process the mark of :func:`~swarmvar.data.mark_judged` does
    not travel, so the agents' ``fit`` does not judge the windows again.
    """
    try:
        with judged_inputs():
            if step == 1:
                return _run_row(row, r, window, refit_every, levels, horizon, days, key, n_sim,
                                on_step)
            return _run_row_strided(row, r, window, refit_every, levels, horizon, days, key,
                                    n_sim, step, on_step)
    except InvalidReturns as exc:
        # only a refused *first* fit (no parameters kept yet): a later refusal is the data's
        # and stops the backtest as before, rather than throwing away the days already run
        if not isinstance(row, ArchRefits) or row._params is not None:
            raise
        rr = _Recorder(levels, days)  # NaN forecasts
        rr.notes = (*(str(n) for n in row.notes), f"no forecasts: {exc}")
        report = on_step if on_step is not None else (
            _queue.put if _queue is not None else None)
        if report is not None:
            report(days)  # the row's share of the progress, done
        nan = float("nan")
        empty: RawLevel = ({t: TestResult(t.value, nan, nan) for t in Test}, None, nan, None)
        return rr, dict.fromkeys(levels, empty)
