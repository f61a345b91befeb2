"""Bayesian risk agents (layer 2): returns in, posterior predictive VaR/ES out.

``NormalInverseGamma`` and ``BayesianBootstrap`` import eagerly; the MCMC and
SMC agents (``StudentT``, ``GarchT``, ``GarchEVT``, ``BetaSkewTEgarch``, ``HarArch``,
``MarkovSwitching``, ``MarkovSwitchingGarch``) load
JAX or their particle code, so they are imported on first access:
``from swarmvar.models import GarchT`` works, and costs the JAX import only then.
"""

from typing import Any

from .base import Agent
from .bootstrap import BayesianBootstrap
from .nig import NormalInverseGamma
from .registry import (  # joint agents of books
    DEFAULT_AGENTS,
    DEFAULT_BOOK_AGENTS,
    agent_class,
    book_agent_class,
    canonical_name,
)
from .risk import EmpiricalFamily, StudentTFamily, risk_measures, weighted_quantile

_LAZY = ("StudentT", "GarchT", "GarchEVT", "BetaSkewTEgarch", "HarArch", "MarkovSwitching",
         "MarkovSwitchingGarch")
_LAZY_BOOK = ("NormalInverseWishart", "FilteredHistorical", "CopulaGarchEVT", "RiskMetrics")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return agent_class(name)
    if name in _LAZY_BOOK:  # joint agents of books
        return book_agent_class(name)
    raise AttributeError(f"module 'swarmvar.models' has no attribute {name!r}")


__all__ = [
    "DEFAULT_AGENTS",
    "DEFAULT_BOOK_AGENTS",
    "book_agent_class",
    "Agent",
    "BayesianBootstrap",
    "BetaSkewTEgarch",
    "EmpiricalFamily",
    "GarchEVT",
    "GarchT",
    "HarArch",
    "MarkovSwitching",
    "MarkovSwitchingGarch",
    "NormalInverseGamma",
    "StudentT",
    "StudentTFamily",
    "agent_class",
    "canonical_name",
    "risk_measures",
    "weighted_quantile",
]
