"""Shared pieces of the runtime tests: real data, cheap agent sets, a swarm factory."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.data import load
from swarmvar.swarm import RoleConfig, Swarm

#: Three agents (the trimmed mean with f=1 needs three), fitted in ~0.2 s.
CHEAP = ("NormalInverseGamma", "BayesianBootstrap", "StudentT")
#: Two agents without JAX (subprocess batteries start fast); f=0 for two agents.
TINY = ("NormalInverseGamma", "BayesianBootstrap")
TINY_POLICY = dataclasses.replace(DEFAULT_POLICY, f=0)


@pytest.fixture(scope="session")
def sp500() -> pd.Series:
    return load("sp500")


def make_swarm(home: Path, portfolios: Any = ("sp500",), **kw: Any) -> Swarm:
    """A swarm on cheap agents with a short window (tests override what they need)."""
    args: dict[str, Any] = {"agents": CHEAP, "window": 250, "fsync": False,
                            "roles": RoleConfig.quiet()}
    args.update(kw)
    return Swarm(portfolios, home=home, **args)
