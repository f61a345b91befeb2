"""What a backtest returns: forecast series per row and level, tests, scores, timings."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .coverage import TestResult, TrafficLight

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .report import Provenance

FloatArray = NDArray[np.float64]


class Test(enum.Enum):
    """The backtests reported for each row and confidence level."""

    __test__ = False  # not a pytest class

    KUPIEC = "kupiec"
    CHRISTOFFERSEN = "christoffersen"
    CONDITIONAL_COVERAGE = "conditional_coverage"
    Z2 = "acerbi_szekely_z2"
    MCNEIL_FREY = "mcneil_frey"


@dataclass(frozen=True)
class LevelSeries:
    """One row's daily forecasts at one confidence level, arrays ``(T,)`` in return units."""

    alpha: float
    var: FloatArray
    es: FloatArray
    var_lo: FloatArray
    var_hi: FloatArray
    es_lo: FloatArray
    es_hi: FloatArray
    hits: NDArray[np.bool_]


@dataclass(frozen=True)
class Timing:
    """Wall seconds a row spent fitting (incl. refits), updating and forecasting.

    For rows that forecast a refit period at a time (``forecast_block``),
    ``forecast`` includes the updates and ``update`` is 0.
    """

    fit: float
    update: float
    forecast: float
    fits: int

    @property
    def total(self) -> float:
        return self.fit + self.update + self.forecast


@dataclass(frozen=True)
class Evaluation:
    """Tests and scores of one row at one confidence level."""

    tests: Mapping[Test, TestResult]
    traffic_light: TrafficLight | None
    pinball: float
    fz0: float
    dm_vs_baseline: TestResult | None


@dataclass(frozen=True)
class BacktestResult:
    """Out-of-sample forecasts of every row (agents, consensus, baseline) and their tests.

    Attributes
    ----------
    dates : pandas.Index ``(T,)``
        Forecast days (the day whose loss is forecast; its first day for ``horizon > 1``).
    returns : array ``(T,)``
        Realized (cumulative, over ``horizon``) log returns on those days.
    alphas : tuple of float
    horizon : int
    baseline : str or None
        Name of the baseline row.
    series : mapping row -> alpha -> LevelSeries
    logscore : mapping row -> array ``(T,)``
        Log predictive density of the realized one-day return (``horizon == 1``),
        else empty.
    evaluation : mapping row -> alpha -> Evaluation
    timings : mapping row -> Timing
    baselines : tuple of str
        Every baseline row (``baseline`` is the first, the DM reference).
    notes : mapping row -> tuple of str
        What a row reported about its own run (e.g. a baseline refit that did
        not converge and kept the previous fit); rows with nothing to say are absent.
    agents : tuple of str
        The agent rows (the consensus rows combine these, in this order).
    consensus_weights : mapping consensus row -> alpha -> array ``(T, len(agents))``
        Each agent's weight in a :class:`~swarmvar.consensus.Policy` row's VaR
        on each day (0 when trimmed or missing).
    step : int
        Days between forecast days (``horizon``: non-overlapping ``h``-day windows).
    """

    dates: pd.Index
    returns: FloatArray
    alphas: tuple[float, ...]
    horizon: int
    window: int
    refit_every: int
    baseline: str | None
    series: Mapping[str, Mapping[float, LevelSeries]]
    logscore: Mapping[str, FloatArray]
    evaluation: Mapping[str, Mapping[float, Evaluation]]
    timings: Mapping[str, Timing]
    baselines: tuple[str, ...] = ()
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    agents: tuple[str, ...] = ()
    consensus_weights: Mapping[str, Mapping[float, FloatArray]] = field(default_factory=dict)
    step: int = 1

    @property
    def rows(self) -> tuple[str, ...]:
        return tuple(self.series)

    @property
    def losses(self) -> FloatArray:
        return np.asarray(-self.returns)

    def passed(self, row: str, alpha: float, test: Test, level: float = 0.05) -> bool | None:
        """Whether ``row`` passes ``test`` at ``alpha`` (``None`` if the test is undefined)."""
        from ..errors import InvalidParameter

        if not isinstance(row, str) or row not in self.evaluation:
            raise InvalidParameter(f"no evaluated row {row!r}; rows are {tuple(self.evaluation)}")
        levels = self.evaluation[row]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha not in levels:
            raise InvalidParameter(f"no alpha {alpha!r} in the backtest; levels are "
                                   f"{tuple(levels)}")
        tests = levels[alpha].tests
        if not isinstance(test, Test) or test not in tests:
            raise InvalidParameter(f"test must be one of {[t.name for t in tests]} (a Test), "
                                   f"not {test!r}")
        return tests[test].passed(level)

    def to_frame(self) -> pd.DataFrame:
        """Tidy forecasts: one line per (date, row, alpha) with VaR/ES, intervals, loss, hit."""
        parts = []
        for row, levels in self.series.items():
            for alpha, s in levels.items():
                parts.append(pd.DataFrame({
                    "date": self.dates, "model": row, "alpha": alpha,
                    "var": s.var, "es": s.es, "var_lo": s.var_lo, "var_hi": s.var_hi,
                    "es_lo": s.es_lo, "es_hi": s.es_hi, "loss": self.losses, "hit": s.hits,
                }))
        return pd.concat(parts, ignore_index=True)

    def test_table(self, level: float = 0.05) -> pd.DataFrame:
        """Tidy tests: one line per (row, alpha, test) with statistic, p-value, df, pass."""
        lines = []
        for row, levels in self.evaluation.items():
            for alpha, ev in levels.items():
                for test, res in ev.tests.items():
                    lines.append({
                        "model": row, "alpha": alpha, "test": test.value,
                        "statistic": res.statistic, "pvalue": res.pvalue, "df": res.df,
                        "passed": res.passed(level),
                    })
        return pd.DataFrame(lines)

    def summary(self) -> pd.DataFrame:
        """One line per (row, alpha): hits, rate, p-values, Basel zone of the last 250 days
        (``zone_last_250d``; every window: :meth:`traffic_light_shares`), losses, time."""
        lines = []
        for row, levels in self.evaluation.items():
            for alpha, ev in levels.items():
                s = self.series[row][alpha]
                tl = ev.traffic_light
                line: dict[str, object] = {
                    "model": row, "alpha": alpha, "days": int(s.hits.size),
                    "hits": int(s.hits.sum()), "hit_rate": float(s.hits.mean()),
                    "expected_rate": 1.0 - alpha,
                }
                for test, res in ev.tests.items():
                    line[f"p_{test.value}"] = res.pvalue
                line["zone_last_250d"] = tl.zone.value if tl is not None else None
                line["multiplier"] = tl.multiplier if tl is not None else None
                line["pinball"] = ev.pinball
                line["fz0"] = ev.fz0
                dm = ev.dm_vs_baseline
                line["dm_stat"] = dm.statistic if dm is not None else math.nan
                line["dm_pvalue"] = dm.pvalue if dm is not None else math.nan
                line["seconds"] = self.timings[row].total
                lines.append(line)
        return pd.DataFrame(lines)

    def breaches(self) -> pd.DataFrame:
        """One line per (day, level) on which any row was breached.

        Columns: date, alpha, loss, breached (the rows whose VaR the loss
        exceeded, comma-separated), then ``<row> VaR`` and ``<row> ES`` for every
        row (losses, fractions of value).
        """
        lines = []
        losses = self.losses
        for alpha in self.alphas:
            hit = np.column_stack([self.series[r][alpha].hits for r in self.rows])
            for t in np.flatnonzero(hit.any(axis=1)):
                line: dict[str, object] = {
                    "date": self.dates[t], "alpha": alpha, "loss": float(losses[t]),
                    "breached": ", ".join(r for r, h in zip(self.rows, hit[t], strict=True)
                                          if h)}
                for r in self.rows:
                    line[f"{r} VaR"] = float(self.series[r][alpha].var[t])
                    line[f"{r} ES"] = float(self.series[r][alpha].es[t])
                lines.append(line)
        columns = ["date", "alpha", "loss", "breached",
                   *(f"{r} {m}" for r in self.rows for m in ("VaR", "ES"))]
        frame = pd.DataFrame(lines, columns=columns)
        return frame.sort_values(["date", "alpha"], kind="stable", ignore_index=True)

    def traffic_light_shares(self, days: int = 250) -> pd.DataFrame:
        """Basel zones over every rolling ``days``-day window, per row and level.

        Columns: model, alpha, windows, green, yellow, red (shares of the
        windows), worst (zone), last (zone of the last window); no lines when
        the backtest is shorter than ``days``.
        """
        from ..models.base import check_whole
        from .coverage import rolling_zones

        days = check_whole("days", days, 1)
        lines = []
        for row in self.rows:
            for alpha in self.alphas:
                hits = self.series[row][alpha].hits
                if hits.size < days:
                    continue
                zones = rolling_zones(hits, alpha, days=days)
                shares = [float(np.mean(zones == k)) for k in range(3)]
                lines.append({
                    "model": row, "alpha": alpha, "windows": int(zones.size),
                    "green": shares[0], "yellow": shares[1], "red": shares[2],
                    "worst": ("green", "yellow", "red")[int(zones.max())],
                    "last": ("green", "yellow", "red")[int(zones[-1])],
                })
        return pd.DataFrame(lines, columns=["model", "alpha", "windows", "green", "yellow",
                                            "red", "worst", "last"])

    def plot(
        self, alpha: float | None = None, *, level: float | None = None,
        models: Sequence[str] | None = None,
    ) -> Figure:
        """Small multiples: one panel per model and level with the credible band of VaR,
        realized losses and breaches marked (greys and markers: readable printed in grey).

        ``level`` (or ``alpha``) picks one level (default: all); ``models`` a subset of rows.
        """
        from .report import plot_result

        return plot_result(self, level if level is not None else alpha, models=models)

    def to_html(self, path: str | Path, *, provenance: Provenance | None = None) -> Path:
        """Write the self-contained HTML report (see :mod:`swarmvar.validation.report`)."""
        from .report import write_html

        return write_html(self, path, provenance=provenance)
