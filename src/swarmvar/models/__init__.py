"""Bayesian risk agents (layer 2): returns in, posterior predictive VaR/ES out."""

from .base import Agent
from .risk import EmpiricalFamily, StudentTFamily, risk_measures, weighted_quantile

__all__ = ["Agent", "EmpiricalFamily", "StudentTFamily", "risk_measures", "weighted_quantile"]
