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

Where the parts are: this module holds :func:`backtest` (checks, the rows,
the consensus rows after the agents, the tests' summary into a
:class:`~.result.BacktestResult`); :mod:`._backtest_rows` what a row is
(:class:`Forecaster`, :class:`StudentTPredictive`, :data:`Combiner`,
:class:`Baseline`) and the argument checks; :mod:`._backtest_recorder` a
row's daily record (``_Recorder``) and the realized losses;
:mod:`._backtest_days` the rows' runners (one row's days and tests, the task
a worker runs); :mod:`._backtest_pool` the worker pool, its start method
(``_pool_context``) and the progress display. The public names, and the
private ones other modules import (``_pool_context``, ``_longest_first``),
are still importable from here; patch constants and functions where they
are defined (``_backtest_days._REPORT_EVERY``, ``_backtest_pool._jax_started``),
since the code reads each through its defining module (``_jax_started`` is
not re-exported here, so a stale patch of this module fails loudly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..consensus import LevelForecasts, Policy, Weighting, consensus_levels
from ..consensus.series import bma_horizon_words
from ..data import as_array
from ..errors import InvalidParameter, InvalidReturns
from ..models.risk import check_alphas
from ._backtest_pool import Progress as Progress
from ._backtest_pool import _longest_first as _longest_first
from ._backtest_pool import _pool_context as _pool_context
from ._backtest_pool import _progress_bar, _run_rows
from ._backtest_recorder import _losses, _Recorder
from ._backtest_rows import Baseline as Baseline
from ._backtest_rows import Combiner as Combiner
from ._backtest_rows import Forecaster as Forecaster
from ._backtest_rows import StudentTPredictive as StudentTPredictive
from ._backtest_rows import _baselines, _check_window, _named, _whole
from .evaluate import finish_rows
from .result import BacktestResult, Timing


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
    judge_prices: bool = True,
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
        the swarm's robust consensus with its weighting (BMA weights at
        ``horizon`` 1 only: the agents' log scores are of one day); a callable
        gets the agents' same-day forecasts and returns one.
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
    judge_prices : bool
        Whether ``returns`` are judged for looking like prices or rates
        (:func:`swarmvar.data.moves_like_prices`). False for returns judged
        already or computed from prices (:func:`swarmvar.var`'s track record
        hands on its array); a Series marked by
        :func:`swarmvar.data.mark_from_prices` is not judged either way.

    Returns
    -------
    BacktestResult

    Raises
    ------
    InvalidParameter
        An argument out of its bounds (named), a consensus name that clashes with an
        agent's, a consensus ``Policy`` needing more agents than given, or one with BMA
        weights at ``horizon`` above 1; all before any row runs.
    InvalidReturns
        Too few returns for one forecast day after the window and horizon.
    """
    r = as_array(returns, who="the backtest", judge_prices=judge_prices)
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
        if policy.weighting is Weighting.BMA and horizon > 1:  # before any row runs
            raise InvalidParameter(f"consensus {name!r}: "
                                   + bma_horizon_words(horizon, equal="Weighting.EQUAL"))
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
