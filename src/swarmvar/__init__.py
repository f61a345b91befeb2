"""swarmvar: Bayesian Value-at-Risk from a swarm of model agents."""

__version__ = "0.1.0"
