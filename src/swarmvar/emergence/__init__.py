"""Emergence, measured: does the swarm's consensus beat its best agent, and when do regimes change.

* :mod:`.regimes` — Bayesian online change-point detection (Adams & MacKay
  2007) over standardized returns: the run-length posterior and a regime flag
  for the consensus weighting, the runtime's scouts and the arbiter.
* :mod:`.metrics` — :func:`summarize` a backtest: ensemble gain per level with
  Diebold-Mariano p-values, Model Confidence Set p-values of every row,
  diversity, weights and the effective number of agents over time.
* :func:`plot_weights` — the weights-over-time figure with regime changes.
* :mod:`.simulate` — series with a known conditional VaR (GJR-GARCH-t, a
  volatility regime switch, iid t(4)) and simulated volatility breaks.

See ``docs/emergence.md``.
"""

from .metrics import (
    EmergenceSummary,
    LevelGain,
    error_correlation,
    level_gain,
    mcs_pvalues,
    summarize,
)
from .plot import plot_weights
from .regimes import (
    ChangePointStep,
    OnlineChangePoint,
    RunLengthPosterior,
    run_length_posterior,
    standardize,
)
from .simulate import (
    BreakStudy,
    Design,
    SimulatedSeries,
    normal_mixture_var_es,
    regime_filter,
    simulate,
    volatility_breaks,
)

__all__ = [
    "BreakStudy",
    "Design",
    "SimulatedSeries",
    "normal_mixture_var_es",
    "regime_filter",
    "simulate",
    "volatility_breaks",
    "ChangePointStep",
    "EmergenceSummary",
    "LevelGain",
    "OnlineChangePoint",
    "RunLengthPosterior",
    "error_correlation",
    "level_gain",
    "mcs_pvalues",
    "plot_weights",
    "run_length_posterior",
    "standardize",
    "summarize",
]
