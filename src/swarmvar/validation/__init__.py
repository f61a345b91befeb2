"""Validation of risk forecasts: backtests, ES tests, scores, MCMC diagnostics, calibration.

The public surface:

* coverage tests on hit sequences - :func:`kupiec`, :func:`christoffersen`,
  :func:`conditional_coverage`, :func:`traffic_light`;
* ES backtests - :func:`acerbi_szekely_z2`, :func:`mcneil_frey`, with the Student-t
  predictives Z2 simulates (:func:`student_t_sampler`, censored at the VaR a
  :class:`CensoredStudentT`; :func:`matched_student_t`);
* scoring - :func:`pinball_loss`, :func:`fz0_loss`, :func:`diebold_mariano`;
* MCMC diagnostics - :func:`rhat`, :func:`ess_bulk`, :func:`ess_tail`;
* calibration - :func:`sbc` (simulation-based calibration),
  :func:`interval_coverage`;
* the driver - :func:`backtest` -> :class:`BacktestResult` (``to_frame``,
  ``plot``, ``to_html``), with arch's GARCH(1,1)-t as baseline.
"""

from .backtest import Baseline, Combiner, Forecaster, backtest
from .baseline import GarchTBaseline
from .coverage import (
    TestResult,
    TrafficLight,
    Zone,
    christoffersen,
    conditional_coverage,
    kupiec,
    traffic_light,
    transition_counts,
)
from .diagnostics import ess_bulk, ess_tail, rhat
from .es_tests import (
    CensoredStudentT,
    acerbi_szekely_z2,
    matched_student_t,
    mcneil_frey,
    student_t_sampler,
)
from .intervals import IntervalCoverage, interval_coverage
from .result import BacktestResult, Evaluation, LevelSeries, Test, Timing
from .sbc import SBCResult, sbc
from .scoring import diebold_mariano, fz0_loss, long_run_variance, newey_west_lags, pinball_loss

__all__ = [
    "BacktestResult", "Baseline", "CensoredStudentT", "Combiner", "Evaluation", "Forecaster",
    "GarchTBaseline", "IntervalCoverage", "LevelSeries", "SBCResult", "Test", "TestResult",
    "Timing", "TrafficLight", "Zone", "acerbi_szekely_z2", "backtest", "christoffersen",
    "conditional_coverage", "diebold_mariano", "ess_bulk", "ess_tail", "fz0_loss",
    "interval_coverage", "kupiec", "long_run_variance", "matched_student_t", "mcneil_frey",
    "newey_west_lags", "pinball_loss", "rhat", "sbc", "student_t_sampler", "traffic_light",
    "transition_counts",
]
