"""Shared fixtures for the variant lifecycle tests."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmvar.evolution import (
    Database,
    MemoryVariantStore,
    SqliteVariantStore,
    VariantStore,
)
from swarmvar.evolution.db import open_database
from swarmvar.models.nig import NormalInverseGamma


def garch_like(omega: float = 1e-6, alpha: float = 0.05, beta: float = 0.9, nu: float = 8.0,
               ) -> None:
    """A plain function standing in for a second agent constructor."""


@pytest.fixture
def constructors() -> dict[str, tuple[str, ...]]:
    """What the runtime passes: ``{cls.name: cls.parameter_names()}``."""
    return {
        NormalInverseGamma.name: NormalInverseGamma.parameter_names(),
        "GarchLike": tuple(inspect.signature(garch_like).parameters),
    }


class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VariantStore]:
    """The same suite runs against every variant store."""
    if request.param == "memory":
        yield MemoryVariantStore(max_variants=5)
    else:
        db = Database(tmp_path) if request.param == "sqlite" else open_database(
            request.getfixturevalue("postgres_url"))
        yield SqliteVariantStore(db, max_variants=5)
        db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The lifecycle database on each backend (the shared store suite runs on both)."""
    if request.param == "sqlite":
        database = Database(tmp_path / "evolution.sqlite")
    else:
        database = open_database(request.getfixturevalue("postgres_url"))
    yield database
    database.close()


