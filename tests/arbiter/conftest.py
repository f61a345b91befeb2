"""Synthetic beat histories for the arbiter's tests (no agents are run)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from swarmvar.arbiter import BeatHistory
from swarmvar.consensus import LevelForecasts, consensus_levels
from swarmvar.swarm.consensus import SWARM_POLICY

AGENTS = ("A", "B", "C", "D", "E")
ALPHAS = (0.99, 0.975)


def synthetic_history(days: int = 200, seed: int = 0, scales: tuple[float, ...] = (
        0.6, 1.0, 1.0, 1.1, 1.3), mend_at: int | None = None) -> BeatHistory:
    """Returns from a log-random-walk volatility path; each agent forecasts Gaussian
    VaR/ES with its own scale of the true volatility (agent A too low: it breaches
    often). From day ``mend_at`` on, agent A forecasts with the true volatility."""
    rng = np.random.default_rng(seed)
    scale = np.tile(np.array(scales), (days, 1))
    if mend_at is not None:
        scale[mend_at:, 0] = 1.0
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, days)) * 0.5)
    returns = vol * rng.standard_normal(days)
    cols = np.empty((len(ALPHAS), 6, days, len(AGENTS)))
    for k, a in enumerate(ALPHAS):
        z = norm.ppf(a)
        for j in range(len(AGENTS)):
            var = scale[:, j] * vol * z
            es = scale[:, j] * vol * norm.pdf(z) / (1 - a)
            cols[k, :, :, j] = np.stack([var, es, 0.95 * var, 1.05 * var, 0.95 * es, 1.05 * es])
    levels = {a: LevelForecasts(cols[k, 0], cols[k, 1], np.stack([cols[k, 2], cols[k, 3]], -1),
                                np.stack([cols[k, 4], cols[k, 5]], -1))
              for k, a in enumerate(ALPHAS)}
    paths = consensus_levels(returns, levels, SWARM_POLICY)
    cons = np.stack([np.stack([paths[a].var, paths[a].es, paths[a].var_interval[:, 0],
                               paths[a].var_interval[:, 1], paths[a].es_interval[:, 0],
                               paths[a].es_interval[:, 1]]) for a in ALPHAS])
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + days)
    logscore = norm.logpdf(returns[:, None], scale=scale * vol[:, None])
    return BeatHistory("synthetic", dates, returns, ALPHAS, AGENTS, cols, cons, logscore)


@pytest.fixture(scope="session")
def history() -> BeatHistory:
    return synthetic_history()
