"""Simulated beat histories for the arbiter's tests (no agents are run)."""

from __future__ import annotations

import pytest

from swarmvar.arbiter import BeatHistory
from swarmvar.arbiter.history import simulated_history


def synthetic_history(days: int = 200, seed: int = 0, mend_at: int | None = None
                      ) -> BeatHistory:
    """Agent A forecasts 0.6 x the true volatility (until ``mend_at``), B-E 1.0-1.3 x."""
    return simulated_history(days, seed, mend_at=mend_at)


@pytest.fixture(scope="session")
def history() -> BeatHistory:
    return synthetic_history()
