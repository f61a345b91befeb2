"""The local executor: seeds, isolation of failures, and results."""

import numpy as np

from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.swarm import run_agents


def test_runs_are_reproducible_and_independent_of_other_agents():
    x = np.random.default_rng(0).normal(0, 0.01, size=600)
    a = run_agents(x, ["bootstrap", "nig"], alphas=(0.99,), seed=7)
    b = run_agents(x, ["bootstrap", "nig"], alphas=(0.99,), seed=7)
    assert [r.forecast for r in a] == [r.forecast for r in b]
    assert all(r.ok and r.fit_seconds >= 0 for r in a)


def test_a_failing_agent_is_reported_not_raised():
    x = np.random.default_rng(1).normal(0, 0.01, size=30)  # too short for the bootstrap
    runs = run_agents(x, [NormalInverseGamma(), BayesianBootstrap()], alphas=(0.99,))
    assert runs[0].ok
    assert not runs[1].ok and "at least 50" in (runs[1].error or "")
