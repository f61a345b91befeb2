"""The typed config object and store locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmvar.evolution import (
    BreakerConfig,
    CanaryConfig,
    Database,
    EvolutionConfig,
    InvalidConfig,
    StateConfig,
    UnsupportedStore,
)
from swarmvar.evolution.db import resolve

MB = 1 << 20


def test_spec_defaults() -> None:
    c = EvolutionConfig()
    assert (c.state.cache_bytes, c.state.chunk_bytes, c.state.compression) == (256 * MB, MB, True)
    assert (c.max_variants, c.metrics_interval_s, c.metrics_retention_s) == (100, 60.0, 30 * 86400)
    assert (c.breaker.failure_threshold, c.breaker.reset_timeout_s,
            c.breaker.max_reset_attempts) == (5, 30.0, 3)
    assert (c.canary.initial_fraction, c.canary.ramp_steps,
            c.canary.health_check_interval_s) == (0.1, 5, 300.0)
    assert (c.rollback.max_points, c.rollback.retention_s) == (100, 30 * 86400)


@pytest.mark.parametrize("make", [
    lambda: BreakerConfig(failure_threshold=0),
    lambda: BreakerConfig(reset_timeout_s=-1),
    lambda: CanaryConfig(initial_fraction=1.0),
    lambda: CanaryConfig(ramp_steps=0),
    lambda: StateConfig(chunk_bytes=0),
    lambda: StateConfig(compression_level=12),
    lambda: EvolutionConfig(max_variants=0),
])
def test_bad_values_are_refused(make) -> None:
    with pytest.raises(InvalidConfig):
        make()


def test_locations(tmp_path: Path) -> None:
    assert resolve(tmp_path) == str(tmp_path / "evolution.sqlite")
    assert resolve(tmp_path / "x.db") == str(tmp_path / "x.db")
    assert resolve(f"sqlite:///{tmp_path}/y.sqlite") == f"{tmp_path}/y.sqlite"
    assert resolve("sqlite:///:memory:") == ":memory:"
    with pytest.raises(UnsupportedStore, match="postgresql"):
        resolve("postgresql://db/risk")
    with Database(":memory:") as db:
        assert db.home is None
