"""One backtest row's record: its daily forecasts, densities, timings and notes.

:class:`_Recorder` holds a row's preallocated daily series — every level's
``(VaR, ES, VaR lo, VaR hi, ES lo, ES hi)`` ``(6, days)``, the Student-t
predictive parameters, the log scores, the fit/update/forecast seconds and
fits, notes, and a consensus row's agent weights. The row runners
(:mod:`._backtest_days`) write one per row, in this process or in a worker
(which pickles it back); :func:`~.backtest.backtest` writes the consensus rows'
and reads them all into the :class:`~.result.BacktestResult`. ``evaluate``
runs the row's tests (:func:`~.evaluate.evaluate_row`) against the realized
losses of :func:`_losses`.

Its state is its own arrays; nothing global.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import Forecast, RiskMeasure
from .evaluate import RawLevel, evaluate_row
from .result import LevelSeries


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
