"""Emergence, measured: does the swarm's consensus beat its best agent, and when do regimes change.

* :mod:`.regimes` — Bayesian online change-point detection (Adams & MacKay
  2007) over standardized returns: the run-length posterior and a regime flag
  for the consensus weighting, the runtime's scouts and the arbiter.

See ``docs/emergence.md``.
"""

from .regimes import (
    ChangePointStep,
    OnlineChangePoint,
    RunLengthPosterior,
    run_length_posterior,
    standardize,
)

__all__ = [
    "ChangePointStep",
    "OnlineChangePoint",
    "RunLengthPosterior",
    "run_length_posterior",
    "standardize",
]
